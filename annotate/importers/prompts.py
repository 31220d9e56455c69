"""The MCM-DPO prompt: the context is embedded in a fixed question, with per-platform casing."""

import re

INSTRUCTION = "Given an image and context, generate alt-text for the image."

# The samples spell it three ways: Twitter train has no newline before "Context:", Twitter
# test has one, Pinterest is lower-case throughout.
_KNOWN = re.compile(
    r"\A\s*given an image and context, generate alt-text for the image\.\s*context:[ \t]*\r?\n",
    re.IGNORECASE,
)
# Any other prompt that still labels its context the same way.
_FALLBACK = re.compile(r"(?:\A|\n|\.)\s*context:[ \t]*\r?\n", re.IGNORECASE)


class PromptError(ValueError):
    pass


def context_from_question(question: str) -> str:
    """Return the post text embedded in a question, exactly as it stands after "Context:\\n"."""
    match = _KNOWN.match(question) or _FALLBACK.search(question)
    if match is None:
        raise PromptError('question has no "Context:" line to take the post text from')
    return question[match.end() :]


def question_for_context(context: str, *, platform: str) -> str:
    """Build the question the reference training code expects for this platform."""
    prefix = f"{INSTRUCTION}\nContext:\n"
    if platform == "pinterest":
        prefix = prefix.lower()
    return prefix + context
