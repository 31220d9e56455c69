"""The MCM-DPO question prompt: the post text (context) embedded in a fixed instruction.

The one parser for both sides: the importer (annotate) takes a record's context from its
question, and the training package (modeltrain.mcmdpo) splits questions to swap contexts
between records. Pure standard library and no Django, so modeltrain.mcmdpo may import it on a
GPU box without Django; `core` itself imports nothing on import.

One behaviour, chosen for the reference data (../shared/datasets/mcmdpo-sample):
- The context is everything after the "Context:" line, exactly as it stands (not stripped):
  one Pinterest test context ends in a space, and header + context must give back the very
  question the reference code trains and evaluates on.
- A question without a "Context:" line is refused (PromptError): every sample question has
  one, and without it there is no context to store or to swap for the context negatives;
  treating the whole question as context would train on a prompt the data never contained.
"""

import re

INSTRUCTION = "Given an image and context, generate alt-text for the image."
DEFAULT_HEADER = f"{INSTRUCTION}\nContext:\n"

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


def question_split(question: str) -> tuple[str, str]:
    """(header, context): the instruction up to and with the "Context:" line, and the post
    text exactly as it stands after it; header + context == question."""
    match = _KNOWN.match(question) or _FALLBACK.search(question)
    if match is None:
        raise PromptError('question has no "Context:" line to take the post text from')
    return question[: match.end()], question[match.end() :]


def context_from_question(question: str) -> str:
    """The post text embedded in a question, exactly as it stands after "Context:\\n"."""
    return question_split(question)[1]


def question_for_context(context: str, *, platform: str) -> str:
    """Build the question the reference training code expects for this platform."""
    return (DEFAULT_HEADER.lower() if platform == "pinterest" else DEFAULT_HEADER) + context
