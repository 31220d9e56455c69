"""Alt-text checks shown live on the correction screen: cheap, explainable warnings.

Each check returns a Finding a rater can act on; none blocks saving. Screen-reader time is an
estimate at a typical listening speed, so raters can see when an alt-text gets long to hear.

One counting rule for length everywhere: Unicode code points (Python's `len(str)`; in the
browser static/js/keys.js counts `Array.from(text).length`, never `text.length`, which counts
UTF-16 units and makes an emoji two). `char_count` is that rule on the server.

Hostile text is flagged, not silently cleaned: bidirectional control characters (which can make
"EXE.txt" look like "txt.EXE"), markup (read out as symbols) and far too much text.
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
# Tags (<b>, </script>, <img ...>) and character references (&amp; &#60;): in alt-text they are
# never markup, a screen reader reads them out.
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!][^<>]*>|&(?:[a-zA-Z]{2,8}|#\d{1,7}|#x[0-9a-fA-F]{1,6});")
# The characters that change display direction without being seen, with the short names the
# pages show in their place (templatetags/rating.py `shown_text`).
BIDI_CONTROLS = {
    "\u202a": "LRE",
    "\u202b": "RLE",
    "\u202c": "PDF",
    "\u202d": "LRO",
    "\u202e": "RLO",
    "\u2066": "LRI",
    "\u2067": "RLI",
    "\u2068": "FSI",
    "\u2069": "PDI",
    "\u200e": "LRM",
    "\u200f": "RLM",
    "\u061c": "ALM",
}
_BIDI = re.compile("[" + "".join(BIDI_CONTROLS) + "]")
# Beyond these an alt-text is far too long to listen to (900 words is about 5 minutes).
TOO_MANY_WORDS = 150


def char_count(text: str) -> int:
    """Length as AltPref counts it everywhere: code points (see the module docstring)."""
    return len(text)


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
        "warning" if char_count(stripped) > LONG_CHARS else "info",
        f"{char_count(stripped)} characters, {len(words)} words, about {seconds:.0f} s to hear"
        + (" — long; keep what matters for this post" if char_count(stripped) > LONG_CHARS else ""),
    )
    findings.append(length)
    findings.extend(hostile_text_findings(stripped))
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


def hostile_text_findings(text: str) -> list[Finding]:
    """The checks for text that displays or reads differently than it seems: direction
    controls, markup, and far too much of it. The judge screen shows these beside each text."""
    findings = []
    controls = sorted({BIDI_CONTROLS[c] for c in _BIDI.findall(text)})
    if controls:
        findings.append(
            Finding(
                "bidi",
                "warning",
                "Contains hidden text-direction controls (" + ", ".join(controls) + "): the text"
                " may look different from what it says; they are shown in brackets.",
            )
        )
    if _MARKUP.search(text):
        findings.append(
            Finding("markup", "warning", "Contains markup (tags or &-codes): read out as symbols.")
        )
    n, words = char_count(text), len(_WORD.findall(text))
    if n > VERY_LONG_CHARS or words > TOO_MANY_WORDS:
        findings.append(
            Finding(
                "too-long",
                "warning",
                f"Far too long for alt-text ({n} characters, {words} words, about"
                f" {words / WORDS_PER_SECOND / 60:.0f} min to hear).",
            )
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
