"""Read preference records in the MCM-DPO reference format and the trl jsonl/parquet format.

Pure standard library (pyarrow only when a parquet file is read), so the Django importer can
reuse `parse_question` and the readers without pulling in torch.

Reference format (``*_train.json``): a JSON array of objects whose ``text`` field is itself a JSON
string ``{"question", "chosen", "rejected"}``; some exports also carry these as top-level fields.
The image is ``image.path`` (or ``image_path``), absolute or relative to the snapshot folder, the
file's folder, or an ``image/<split>`` folder beside it. Test files are JSON lines without
``rejected``.

trl format (``*.jsonl`` / ``*.parquet``): columns ``images`` (list of paths), ``prompt``,
``chosen``, ``rejected``; the prompt is the question (an image placeholder in it is dropped).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HEADER = "Given an image and context, generate alt-text for the image.\nContext:\n"

# "...for the image.Context:\n" (Twitter train), "...image.\nContext:\n", pinterest lower-case.
_CONTEXT_MARKER = re.compile(r"(?:^|(?<=[.\s]))context:\s*\n?", re.IGNORECASE)
_IMAGE_PLACEHOLDERS = ("<image>", "<|image|>", "<|image_pad|>")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


class FormatError(ValueError):
    """A snapshot file that cannot be read as preference records."""


@dataclass(frozen=True)
class PreferenceRecord:
    """One (image, context, chosen, rejected) record; `rejected` is None in test splits."""

    index: int
    image_path: str
    context: str
    chosen: str
    rejected: str | None
    header: str = DEFAULT_HEADER
    source_id: str | None = None

    @property
    def question(self) -> str:
        return format_question(self.context, self.header)


def parse_question(question: str) -> str:
    """Return the post context from an MCM-DPO question prompt.

    Accepts the Twitter form without a newline before ``Context:``, the form with one, and the
    lower-case Pinterest form. A question with no ``Context:`` marker is returned stripped, as
    if it were all context.
    """
    return _split_question(question)[1]


def question_header(question: str) -> str:
    """Return everything before the context (instruction + marker), so a swapped context keeps it."""
    return _split_question(question)[0]


def format_question(context: str, header: str = DEFAULT_HEADER) -> str:
    """Inverse of `parse_question` for a given header."""
    return f"{header}{context}"


def _split_question(question: str) -> tuple[str, str]:
    for placeholder in _IMAGE_PLACEHOLDERS:
        question = question.replace(placeholder, "")
    match = _CONTEXT_MARKER.search(question)
    if match is None:
        return DEFAULT_HEADER, question.strip()
    return question[: match.end()], question[match.end() :].strip()


def read_records(path: str | Path, *, require_rejected: bool = True) -> list[PreferenceRecord]:
    """Read every record file under a snapshot folder (or one file), in a stable order."""
    path = Path(path)
    files = [path] if path.is_file() else _record_files(path)
    if not files:
        raise FormatError(f"no .json, .jsonl or .parquet record file under {path}")
    records: list[PreferenceRecord] = []
    for file in files:
        for row in _read_rows(file):
            record = _row_to_record(row, file, index=len(records))
            if record.rejected is None and require_rejected:
                continue
            records.append(record)
    if not records:
        raise FormatError(f"no preference records (with chosen and rejected) in {path}")
    return records


def _record_files(folder: Path) -> list[Path]:
    found = [
        p
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".json", ".jsonl", ".parquet")
        and p.is_file()
        and not p.name.startswith(".")
    ]
    # A snapshot may carry a manifest next to the data; only files with records count.
    return [p for p in found if p.name not in ("manifest.json", "snapshot.json", "ref_logps.json")]


def _read_rows(file: Path) -> Iterable[dict]:
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq  # only needed for parquet snapshots

        yield from pq.read_table(file).to_pylist()
        return
    text = file.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from json.loads(text)
        return
    for line_no, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise FormatError(f"{file}:{line_no}: not JSON: {exc}") from exc


def _row_to_record(row: dict, file: Path, *, index: int) -> PreferenceRecord:
    fields = dict(row)
    if isinstance(fields.get("text"), str):
        try:
            fields.update(json.loads(fields["text"]))
        except json.JSONDecodeError as exc:
            raise FormatError(f"{file}: record {index}: `text` is not a JSON object") from exc
    question = fields.get("question") or fields.get("prompt")
    if isinstance(question, list):  # conversational trl prompt: take the user text
        question = " ".join(_message_text(m) for m in question)
    if not question or "chosen" not in fields:
        raise FormatError(f"{file}: record {index} has no question/prompt or no chosen")
    header, context = _split_question(question)
    return PreferenceRecord(
        index=index,
        image_path=str(_resolve_image(fields, file)),
        context=context,
        chosen=_as_text(fields["chosen"]),
        rejected=_as_text(fields["rejected"]) if fields.get("rejected") is not None else None,
        header=header,
        source_id=str(fields["idx"]) if "idx" in fields else None,
    )


def _message_text(message) -> str:
    content = message.get("content", "") if isinstance(message, dict) else message
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _as_text(value) -> str:
    if isinstance(value, list):  # conversational completion
        return " ".join(_message_text(m) for m in value).strip()
    return str(value)


def _resolve_image(fields: dict, file: Path) -> Path:
    image = fields.get("image")
    raw = None
    if isinstance(image, dict):
        raw = image.get("path")
    elif isinstance(image, str):
        raw = image
    raw = raw or fields.get("image_path")
    if raw is None and fields.get("images"):
        first = fields["images"][0]
        raw = first.get("path") if isinstance(first, dict) else first
    if not raw:
        raise FormatError(f"{file}: a record has no image path")
    candidate = Path(raw)
    if candidate.is_absolute():
        return candidate
    split = file.stem  # twitter_train.json -> image/twitter_train/
    for base in (
        file.parent,
        file.parent / "image" / split,
        file.parent / "images",
        file.parent / "image",
    ):
        if (base / candidate).exists():
            return base / candidate
    raise FormatError(f"{file}: image {raw} not found beside the file or in image/{split}/")
