"""Turn one raw record (any supported shape) into a validated ImportRecord, or say why not."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from annotate.models import Platform, Split
from core.prompts import PromptError, context_from_question

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_PLATFORMS = frozenset(Platform.values)  # enum .values builds a list per call: hot path
_SPLITS = frozenset(Split.values)
_DS_PLATFORM = {"twitter_data": Platform.TWITTER, "pinterest_data": Platform.PINTEREST}


class RecordError(ValueError):
    pass


@dataclass
class ImportRecord:
    image_ref: str
    context: str
    platform: str
    split: str
    external_id: str = ""
    alt_text: str | None = None  # user-written
    chosen: str | None = None
    rejected: str | None = None
    reference: str | None = None  # test-split ground truth
    provenance: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    max_context_chars: int
    max_alt_text_chars: int


def _text(raw: dict, key: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and value.strip() == "" and not required):
        if required:
            raise RecordError(f'missing required field "{key}"')
        return None
    if not isinstance(value, str):
        raise RecordError(f'field "{key}" must be a string, got {type(value).__name__}')
    if required and not value.strip():
        raise RecordError(f'field "{key}" is empty')
    return value


def _check_text(name: str, value: str | None, limit: int) -> None:
    if value is None:
        return
    if _LONE_SURROGATE.search(value):
        raise RecordError(f'field "{name}" is not valid UTF-8 text')
    if "\x00" in value:
        raise RecordError(f'field "{name}" contains a NUL character')
    if len(value) > limit:
        raise RecordError(f'field "{name}" is {len(value):,} characters long (limit {limit:,})')


def _record_id(raw: dict, key: str) -> str:
    """The record's id as text ("" when absent): a string or an integer, nothing else."""
    value = raw.get(key)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(
            f'field "{key}" must be a string or an integer, got {type(value).__name__}'
        )
    value = str(value)
    _check_text(key, value, 255)
    return value


def _choice(raw: dict, key: str) -> str | None:
    """platform/split from the record: a string or absent (a list or object is refused)."""
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f'field "{key}" must be a string, got {type(value).__name__}')
    return value


_PROVENANCE = ("ds_name", "origin_dataset", "origin_split", "idx")


def _provenance(raw: dict) -> dict:
    """The MCM-DPO source fields kept with the post; text in them must be storable as well."""
    kept = {}
    for key in _PROVENANCE:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue  # absent or not a plain value: not kept (it is provenance, not content)
        if isinstance(value, str):
            _check_text(key, value, 1024)
        kept[key] = value
    return kept


def _ds_platform(raw: dict, guessed: str) -> str:
    name = raw.get("ds_name")
    return _DS_PLATFORM.get(name, guessed) if isinstance(name, str) else guessed


def _mcmdpo_fields(raw: dict) -> dict:
    """question/chosen/rejected from the `text` JSON string and/or the top-level copies."""
    inner: dict = {}
    if "text" in raw and raw["text"] is not None:
        if not isinstance(raw["text"], str):
            raise RecordError('field "text" must be a JSON string')
        try:
            inner = json.loads(raw["text"])
        except json.JSONDecodeError as exc:
            raise RecordError(f'field "text" is not valid JSON: {exc.msg}') from None
        except RecursionError:
            raise RecordError('field "text" nests JSON too deeply') from None
        if not isinstance(inner, dict):
            raise RecordError('field "text" must encode a JSON object')
    merged = {}
    for key in ("question", "chosen", "rejected"):
        top, nested = raw.get(key), inner.get(key)
        # Pinterest duplicates the fields at the top level; if the copies disagree we cannot
        # know which one the dataset meant, so refuse rather than guess.
        if top is not None and nested is not None and top != nested:
            raise RecordError(f'"{key}" differs between the top level and the "text" field')
        merged[key] = nested if nested is not None else top
    return merged


def _image_ref(raw: dict) -> str:
    image = raw.get("image")
    if isinstance(image, dict):
        image = image.get("path")
    ref = image or raw.get("image_path")
    if not isinstance(ref, str) or not ref.strip():
        raise RecordError('missing required field "image" (or "image_path")')
    return ref.strip()


def parse_record(
    raw: dict, *, platform: str | None, split: str, limits: Limits, guessed_platform: str = "other"
) -> ImportRecord:
    """Normalise a record.

    Platform precedence: the record's own `platform` field, then the caller's `platform`, then
    the dataset name in the record (`ds_name`), then `guessed_platform` (from the file name).
    """
    is_mcmdpo = "question" in raw or "text" in raw
    if is_mcmdpo:
        fields = _mcmdpo_fields(raw)
        question = _text(fields, "question", required=True)
        _check_text("question", question, limits.max_context_chars + 200)
        try:
            context = context_from_question(question)
        except PromptError as exc:
            raise RecordError(str(exc)) from None
        chosen = _text(fields, "chosen", required=True)
        rejected = _text(fields, "rejected")
        record = ImportRecord(
            image_ref=_image_ref(raw),
            context=context,
            platform=platform or _ds_platform(raw, guessed_platform),
            split=split,
            external_id=_record_id(raw, "idx"),
            chosen=chosen if rejected is not None else None,
            rejected=rejected,
            reference=chosen if rejected is None else None,
            provenance=_provenance(raw),
        )
    else:
        context = _text(raw, "context")
        if context is None:
            if "context" not in raw:
                raise RecordError('missing required field "context"')
            context = ""
        record = ImportRecord(
            image_ref=_image_ref(raw),
            context=context,
            platform=_choice(raw, "platform") or platform or guessed_platform,
            split=_choice(raw, "split") or split,
            external_id=_record_id(raw, "id") or _record_id(raw, "external_id"),
            alt_text=_text(raw, "alt_text"),
            chosen=_text(raw, "chosen"),
            rejected=_text(raw, "rejected"),
        )
        if (record.chosen is None) != (record.rejected is None):
            # A lone "chosen" is a reference alt-text, as in the test files.
            if record.rejected is not None:
                raise RecordError('"rejected" given without "chosen"')
            record.reference, record.chosen = record.chosen, None
        if record.alt_text is None and record.chosen is None and record.reference is None:
            raise RecordError('record has no alt-text: give "alt_text" or "chosen" and "rejected"')
    if record.platform not in _PLATFORMS:
        raise RecordError(f'unknown platform "{record.platform}"')
    if record.split not in _SPLITS:
        raise RecordError(f'unknown split "{record.split}"')
    if record.chosen is not None and record.chosen == record.rejected:
        raise RecordError('"chosen" and "rejected" are the same text')
    if len(record.external_id) > 255:
        raise RecordError("record id is longer than 255 characters")
    _check_text("id", record.external_id, 255)
    _check_text("image", record.image_ref, 1024)
    _check_text("context", record.context, limits.max_context_chars)
    for name in ("alt_text", "chosen", "rejected", "reference"):
        _check_text(name, getattr(record, name), limits.max_alt_text_chars)
        value = getattr(record, name)
        if value is not None and not value.strip():
            raise RecordError(f'field "{name}" is empty')
    return record
