"""The quality gate a round's outputs pass before raters see them (pure functions, no Django).

A small model often writes text no rater should spend time on: a loop ("an off - white an off -
white an off - white …"), nothing, a wall of text, the alt-text the post already has, or the post
itself copied back. Such an output is held back with a reason instead of becoming a pair; the
round's page counts the reasons. Each rule is deliberately plain so an admin can predict it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

EMPTY = "empty"
TOO_LONG = "too-long"
REPETITION = "repetition"
COPIES_POST = "copies-post"
DUPLICATE = "duplicate"
NO_OPPONENT = "no-opponent"  # not about the text: the post has no alt-text to compare it with

REASONS = {
    EMPTY: "Empty (no letters or digits)",
    TOO_LONG: "Over-long",
    REPETITION: "Repetition loop",
    COPIES_POST: "Copy of the post text",
    DUPLICATE: "Same as an alt-text the post already has",
    NO_OPPONENT: "Post has no alt-text to compare with",
}

# Longer than any alt-text guideline asks for (125-250 characters is the usual advice); a
# model that runs to its token limit usually lands far beyond it.
DEFAULT_MAX_CHARS = 400
# A unit of 1-8 words said this many times back to back is a loop, not a description.
MIN_REPEATS = 3
MAX_UNIT_WORDS = 8
# Word trigrams: when fewer than this share are distinct, the text keeps saying the same thing
# even if the loop is not exactly back to back.
MIN_DISTINCT_TRIGRAMS = 0.5
MIN_WORDS_FOR_TRIGRAMS = 12
# A copy of the post: this share of the output's word trigrams appear in the post, in a text
# long enough for trigrams to mean something.
COPY_TRIGRAM_SHARE = 0.8
MIN_WORDS_FOR_COPY = 5

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    """Case, width, punctuation and spacing folded away: what a rater would call "the same"."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(folded))


def words(text: str) -> list[str]:
    return normalise(text).split()


def _tokens(text: str) -> list[str]:
    # Punctuation counts here: "an off - white" loops on its hyphen too.
    return unicodedata.normalize("NFKC", text).casefold().split()


def has_loop(tokens: list[str], *, min_repeats: int = MIN_REPEATS) -> bool:
    """Some unit of 1..MAX_UNIT_WORDS tokens appears min_repeats times back to back."""
    n = len(tokens)
    for size in range(1, MAX_UNIT_WORDS + 1):
        if size * min_repeats > n:
            break
        for start in range(n - size * min_repeats + 1):
            unit = tokens[start : start + size]
            if all(
                tokens[start + k * size : start + (k + 1) * size] == unit
                for k in range(1, min_repeats)
            ):
                return True
    return False


def _trigrams(tokens: list[str]) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]


def is_repetitive(text: str) -> bool:
    tokens = _tokens(text)
    if has_loop(tokens):
        return True
    if len(tokens) >= MIN_WORDS_FOR_TRIGRAMS:
        grams = _trigrams(tokens)
        return len(set(grams)) / len(grams) < MIN_DISTINCT_TRIGRAMS
    return False


def copies_post(text: str, post_text: str) -> bool:
    """The output is the post's text (or a stretch of it) rather than a description."""
    mine, post = words(text), words(post_text)
    if not mine or not post:
        return False
    if mine == post:
        return True
    if len(mine) < MIN_WORDS_FOR_COPY:
        return False
    grams = _trigrams(mine)
    in_post = set(_trigrams(post))
    return sum(g in in_post for g in grams) / len(grams) >= COPY_TRIGRAM_SHARE


@dataclass(frozen=True)
class Verdict:
    reason: str  # "" when the output may go to raters

    @property
    def ok(self) -> bool:
        return not self.reason

    @property
    def label(self) -> str:
        return REASONS.get(self.reason, "")


def check(
    text: str,
    *,
    post_text: str = "",
    existing: Iterable[str] = (),
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Verdict:
    """Why `text` must not reach raters ("" when it may). `existing`: the post's alt-texts."""
    if not words(text):
        return Verdict(EMPTY)
    if len(text.strip()) > max_chars:
        return Verdict(TOO_LONG)
    if is_repetitive(text):
        return Verdict(REPETITION)
    if copies_post(text, post_text):
        return Verdict(COPIES_POST)
    mine = normalise(text)
    if any(normalise(other) == mine for other in existing):
        return Verdict(DUPLICATE)
    return Verdict("")
