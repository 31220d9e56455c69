"""Response schemas sent to the LLM, and the checks an answer must pass to become a label.

An answer that is not JSON, misses a facet, uses an unknown verdict or (for corrections) adds
content raises AnswerInvalid: the call is recorded as failed and nothing is stored as a label.
"""

from __future__ import annotations

import json
import re
from typing import Any

VERDICTS = ["A", "B", "tie", "both-bad"]
MAX_RATIONALE_CHARS = 1_000


class AnswerInvalid(Exception):
    pass


def correction_schema() -> dict[str, Any]:
    return {
        "type": "OBJECT",
        "properties": {"corrected": {"type": "STRING"}, "changed": {"type": "BOOLEAN"}},
        "required": ["corrected", "changed"],
    }


def judgement_schema(facet_keys: list[str]) -> dict[str, Any]:
    entry = {
        "type": "OBJECT",
        "properties": {
            "facet": {"type": "STRING", "enum": list(facet_keys)},
            "verdict": {"type": "STRING", "enum": VERDICTS},
            "rationale": {"type": "STRING"},
        },
        "required": ["facet", "verdict", "rationale"],
    }
    return {
        "type": "OBJECT",
        "properties": {"facets": {"type": "ARRAY", "items": entry}},
        "required": ["facets"],
    }


def _load_object(text: str) -> dict:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise AnswerInvalid(f"The answer is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AnswerInvalid("The answer is not a JSON object.")
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
