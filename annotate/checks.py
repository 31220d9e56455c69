"""Alt-text checks shown live on the correction screen: cheap, explainable warnings.

Each check returns a Finding a rater can act on; none blocks saving. Screen-reader time is an
estimate at a typical listening speed, so raters can see when an alt-text gets long to hear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Screen readers at default settings speak about 150-180 words a minute; 2.7 words/s is the
# conservative middle, so the estimate errs on "longer".
WORDS_PER_SECOND = 2.7
LONG_CHARS = 250
VERY_LONG_CHARS = 1000

_OPENER = re.compile(
    r"^\s*(an?\s+)?(image|picture|photo|photograph|graphic|screenshot)\s+(of|showing|shows)\b",
    re.IGNORECASE,
)
_FILENAME = re.compile(
    r"\b[\w-]+\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|svg)\b|\b(?:IMG|DSC|PXL)_\d+", re.IGNORECASE
)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w&])#\w+")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Finding:
    key: str
    level: str  # "info" or "warning"; the template prints the level as a word, not a colour
    message: str


def _normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def alt_text_checks(*, text: str, context: str = "") -> list[Finding]:
    """Run every check on `text`, written for a post whose text is `context`."""
    findings: list[Finding] = []
    stripped = text.strip()
    words = _WORD.findall(stripped)
    seconds = len(words) / WORDS_PER_SECOND
    length = Finding(
        "length",
        "warning" if len(stripped) > LONG_CHARS else "info",
        f"{len(stripped)} characters, {len(words)} words, about {seconds:.0f} s to hear"
        + (" — long; keep what matters for this post" if len(stripped) > LONG_CHARS else ""),
    )
    findings.append(length)
    if not stripped:
        findings.append(Finding("empty", "warning", "The alt-text is empty."))
        return findings
    if _OPENER.search(stripped):
        findings.append(
            Finding(
                "opener",
                "warning",
                'Starts with "image of" or similar: screen readers already say "image".',
            )
        )
    if _FILENAME.search(stripped):
        findings.append(Finding("filename", "warning", "Contains a file name."))
    if _URL.search(stripped):
        findings.append(Finding("url", "warning", "Contains a URL."))
    if _HASHTAG.search(stripped):
        findings.append(Finding("hashtag", "warning", "Contains a hashtag."))
    norm_text, norm_context = _normalise(stripped), _normalise(context)
    if len(norm_text) >= 12 and norm_context and norm_text in norm_context:
        findings.append(
            Finding("copy", "warning", "Copies the post text; describe the image instead.")
        )
    letters = [c for c in stripped if c.isalpha()]
    if len(letters) >= 8 and all(c.isupper() for c in letters):
        findings.append(
            Finding("caps", "warning", "All capitals: many screen readers spell these out.")
        )
    return findings


def word_diff(*, before: str, after: str) -> list[tuple[str, str]]:
    """Word-level diff as (op, text) runs, op in "same", "del", "ins"."""
    import difflib

    a, b = before.split(), after.split()
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("same", " ".join(a[i1:i2])))
        else:
            if i2 > i1:
                runs.append(("del", " ".join(a[i1:i2])))
            if j2 > j1:
                runs.append(("ins", " ".join(b[j1:j2])))
    return runs
