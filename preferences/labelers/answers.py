"""Response schemas sent to the LLM, and the checks an answer must pass to become a label.

The schemas are plain JSON Schema (provider-neutral); a provider's client translates them to
its dialect. The checks below apply to every provider's answer text alike.

An answer that is not JSON, misses a facet, uses an unknown verdict or (for corrections) adds
content raises AnswerInvalid: the call is recorded as failed and nothing is stored as a label.
So does a hostile one: longer than MAX_ANSWER_CHARS, nested deeper than MAX_DEPTH (checked
before json.loads, which would raise RecursionError), or carrying a NUL or a lone surrogate in
any string (PostgreSQL text/jsonb refuse NUL, and UTF-8 cannot encode a lone surrogate).
storable() makes any text safe to keep as evidence (raw answers, error messages).
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.validation import json_depth

VERDICTS = ["A", "B", "tie", "both-bad"]
MAX_RATIONALE_CHARS = 1_000
# Our answers are a few hundred characters; anything this long is runaway output, not a label.
MAX_ANSWER_CHARS = 64_000
# The deepest schema is {"facets": [{...}]}: depth 3. Room to spare, far from the stack limit.
MAX_DEPTH = 32
# Stored raw answers keep this much as evidence.
MAX_STORED_CHARS = 8_000

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class AnswerInvalid(Exception):
    pass


def correction_schema() -> dict[str, Any]:
    """The answer schema in plain JSON Schema; each provider translates it to its dialect."""
    return {
        "type": "object",
        "properties": {"corrected": {"type": "string"}, "changed": {"type": "boolean"}},
        "required": ["corrected", "changed"],
        "additionalProperties": False,
    }


def judgement_schema(facet_keys: list[str]) -> dict[str, Any]:
    entry = {
        "type": "object",
        "properties": {
            "facet": {"type": "string", "enum": list(facet_keys)},
            "verdict": {"type": "string", "enum": VERDICTS},
            "rationale": {"type": "string"},
        },
        "required": ["facet", "verdict", "rationale"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"facets": {"type": "array", "items": entry}},
        "required": ["facets"],
        "additionalProperties": False,
    }


def storable(text: str, *, limit: int = MAX_STORED_CHARS) -> str:
    """`text` cut to `limit` characters, NULs and lone surrogates replaced by U+FFFD."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + f"… [cut: {len(text):,} characters in all]"
    return _UNSTORABLE.sub("\ufffd", text)


def _check_strings(value: Any) -> None:
    """Refuse NUL and lone surrogates anywhere in the parsed answer (depth is bounded)."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise AnswerInvalid("The answer contains a NUL byte or an unpaired surrogate.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def _load_object(text: str) -> dict:
    if not isinstance(text, str):
        raise AnswerInvalid("The answer is not text.")
    if len(text) > MAX_ANSWER_CHARS:
        raise AnswerInvalid(
            f"The answer is {len(text):,} characters long; the limit is {MAX_ANSWER_CHARS:,}."
        )
    if json_depth(text) > MAX_DEPTH:
        raise AnswerInvalid(f"The answer nests JSON deeper than {MAX_DEPTH} levels.")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise AnswerInvalid(storable(f"The answer is not valid JSON: {exc}", limit=300)) from exc
    if not isinstance(data, dict):
        raise AnswerInvalid("The answer is not a JSON object.")
    _check_strings(data)
    return data


_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def correction_parse(text: str, *, original: str) -> dict:
    """{"corrected": str, "changed": bool}; refuses answers that add content.

    A grammar fix keeps the word count close to the original; growing it by more than a few
    words, or by a quarter, means the model described the image instead of fixing grammar.
    """
    data = _load_object(text)
    corrected, changed = data.get("corrected"), data.get("changed")
    if not isinstance(corrected, str) or not isinstance(changed, bool):
        raise AnswerInvalid('The answer needs a string "corrected" and a boolean "changed".')
    corrected = corrected.strip()
    if not corrected:
        raise AnswerInvalid("The corrected alt-text is empty.")
    before, after = len(_words(original)), len(_words(corrected))
    if after - before > max(3, before // 4):
        raise AnswerInvalid(
            f"The correction adds content ({before} words became {after}); only grammar may change."
        )
    return {"corrected": corrected, "changed": changed and corrected != original.strip()}


def judgement_parse(text: str, *, facet_keys: list[str]) -> dict[str, dict]:
    """facet key -> {"verdict": shown-order verdict, "rationale": str}, one per requested facet."""
    data = _load_object(text)
    entries = data.get("facets")
    if not isinstance(entries, list):
        raise AnswerInvalid('The answer needs a "facets" list.')
    result: dict[str, dict] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise AnswerInvalid("Each facet entry must be an object.")
        key, verdict, rationale = entry.get("facet"), entry.get("verdict"), entry.get("rationale")
        if key not in facet_keys:
            raise AnswerInvalid(f"Unknown facet {key!r} in the answer.")
        if key in result:
            raise AnswerInvalid(f"Facet {key!r} is answered twice.")
        if verdict not in VERDICTS:
            raise AnswerInvalid(f"Unknown verdict {verdict!r} for facet {key!r}.")
        if not isinstance(rationale, str):
            raise AnswerInvalid(f"The rationale for facet {key!r} must be a string.")
        result[key] = {"verdict": verdict, "rationale": rationale[:MAX_RATIONALE_CHARS]}
    missing = [k for k in facet_keys if k not in result]
    if missing:
        raise AnswerInvalid(f"The answer misses facets: {', '.join(missing)}.")
    return result
