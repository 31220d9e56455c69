"""Read preference records in the MCM-DPO reference format and the trl jsonl/parquet format.

Pure standard library (pyarrow only when a parquet file is read), no Django and no torch. The
question is split by `core.prompts`, the one parser the Django importer uses too (a question
without a "Context:" line is refused, the context is kept exactly; see there why).

Reference format (``*_train.json``): a JSON array of objects whose ``text`` field is itself a JSON
string ``{"question", "chosen", "rejected"}``; some exports also carry these as top-level fields.
The image is ``image.path`` (or ``image_path``), absolute or relative to the snapshot folder, the
file's folder, or an ``image/<split>`` folder beside it. Test files are JSON lines without
``rejected``.

trl format (``*.jsonl`` / ``*.parquet``): columns ``images`` (list of paths, or of
``{"bytes", "path"}`` structs in Parquet), ``prompt``, ``chosen``, ``rejected``; the prompt is the
question (an image placeholder in it is dropped). SFT rows (TAlt) carry ``completion`` in place
of ``chosen``.

A snapshot folder is read from one data file per dataset (`record_files` says which), so a
snapshot exported in several formats is not read several times.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.prompts import DEFAULT_HEADER, PromptError, question_split

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
    """Return the post context from an MCM-DPO question prompt (an image placeholder in a trl
    prompt is dropped first); PromptError without a "Context:" line."""
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
    return question_split(question)


def read_records(
    path: str | Path, *, require_rejected: bool = True, image_cache: str | Path | None = None
) -> list[PreferenceRecord]:
    """Read the records of one snapshot (a folder) or one file, each record exactly once.

    A snapshot may carry the same records in several formats (an AltPref export writes
    ``palt.json``, ``palt.jsonl`` and ``palt.parquet`` side by side), so a folder is read from
    the files `record_files` chooses, never from all of them. Parquet rows whose image path
    does not resolve are read from the image bytes embedded in the file, written once to
    `image_cache` (see `_embedded_image`).
    """
    path = Path(path)
    files = [path] if path.is_file() else record_files(path)
    records: list[PreferenceRecord] = []
    for file in files:
        for row in _read_rows(file):
            record = _row_to_record(row, file, index=len(records), image_cache=image_cache)
            if record.rejected is None and require_rejected:
                continue
            records.append(record)
    if not records:
        raise FormatError(f"no preference records (with chosen and rejected) in {path}")
    return records


def record_files(folder: str | Path) -> list[Path]:
    """The data files a snapshot folder's records are read from, in a stable order.

    1. A folder with an AltPref ``manifest.json`` (``altpref_snapshot`` key): the manifest's
       files for the snapshot's kind (``palt.*``, ``talt.*`` or ``test.*``), and of those the one
       in the first format of `FORMAT_PREFERENCE`. Exactly one file.
    2. Otherwise every .json/.jsonl/.parquet file under the folder (recursively, so the
       reference layout ``twitter/twitter_train.json`` + ``pinterest/pinterest_train.json``
       reads both platforms), after two rules: files that differ only in their suffix
       (``train.json`` and ``train.parquet``) are one dataset in several formats, so only the
       preferred format of each is kept; and if what is left still mixes formats
       (``a.json`` + ``b.parquet``), nothing says whether they are two datasets or one twice,
       so the folder is refused with a FormatError naming the files.

    The JSON reference format comes first because it is what the paper's trainer reads and
    what the sample data uses; JSONL carries the same paths; Parquet (images embedded) is the
    fallback for a snapshot that travelled without its image files.
    """
    folder = Path(folder)
    manifest = _altpref_manifest(folder)
    if manifest is not None:
        return [_manifest_choice(folder, manifest)]
    found = [
        p
        for p in sorted(folder.rglob("*"))
        if p.suffix in FORMAT_PREFERENCE
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.name not in NOT_RECORD_FILES
        # LLaVA conversation files are SFT input for LLaVA's own trainer, not records.
        and not p.name.endswith("_llava.json")
    ]
    if not found:
        raise FormatError(f"no .json, .jsonl or .parquet record file under {folder}")
    by_dataset: dict[Path, list[Path]] = {}
    for file in found:
        by_dataset.setdefault(file.with_suffix(""), []).append(file)
    chosen = [
        min(files, key=lambda f: FORMAT_PREFERENCE.index(f.suffix)) for files in by_dataset.values()
    ]
    suffixes = sorted({f.suffix for f in chosen}, key=FORMAT_PREFERENCE.index)
    if len(suffixes) > 1:
        names = ", ".join(str(f.relative_to(folder)) for f in chosen)
        raise FormatError(
            f"{folder} holds record files in several formats ({names}) and no manifest says "
            "which to read; pass one file, or keep one format in the folder"
        )
    return sorted(chosen)


# Which format of a dataset is read when a folder holds several (see `record_files`).
FORMAT_PREFERENCE = (".json", ".jsonl", ".parquet")
# Files with a record-file suffix that hold no records.
NOT_RECORD_FILES = ("manifest.json", "snapshot.json", "ref_logps.json", "altpref_training.json")


def _altpref_manifest(folder: Path) -> dict | None:
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not JSON: {exc}") from exc
    return manifest if isinstance(manifest, dict) and "altpref_snapshot" in manifest else None


def _manifest_choice(folder: Path, manifest: dict) -> Path:
    kind = manifest.get("kind")
    listed = [Path(name) for name in manifest.get("files", {})]
    candidates = [p for p in listed if p.stem == kind and p.suffix in FORMAT_PREFERENCE]
    if not candidates:
        raise FormatError(
            f"{folder}/manifest.json lists no {kind} record file "
            f"({', '.join(FORMAT_PREFERENCE)}): {sorted(map(str, listed))}"
        )
    best = min(candidates, key=lambda p: FORMAT_PREFERENCE.index(p.suffix))
    if not (folder / best).is_file():
        raise FormatError(f"{folder}: {best} is in the manifest but missing from the folder")
    return folder / best


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


def _row_to_record(
    row: dict, file: Path, *, index: int, image_cache: str | Path | None = None
) -> PreferenceRecord:
    fields = dict(row)
    if isinstance(fields.get("text"), str):
        try:
            fields.update(json.loads(fields["text"]))
        except json.JSONDecodeError as exc:
            raise FormatError(f"{file}: record {index}: `text` is not a JSON object") from exc
    question = fields.get("question") or fields.get("prompt")
    if isinstance(question, list):  # conversational trl prompt: take the user text
        question = " ".join(_message_text(m) for m in question)
    if "chosen" not in fields and "completion" in fields:
        fields["chosen"] = fields["completion"]  # trl's prompt-completion (SFT) rows: TAlt
    if not question or "chosen" not in fields:
        raise FormatError(f"{file}: record {index} has no question/prompt or no chosen")
    try:
        header, context = _split_question(question)
    except PromptError as exc:
        raise FormatError(f"{file}: record {index}: {exc}") from None
    return PreferenceRecord(
        index=index,
        image_path=str(_resolve_image(fields, file, image_cache)),
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


def _resolve_image(fields: dict, file: Path, image_cache: str | Path | None = None) -> Path:
    image = fields.get("image")
    raw = None
    embedded = None
    if isinstance(image, dict):
        raw = image.get("path")
    elif isinstance(image, str):
        raw = image
    raw = raw or fields.get("image_path")
    if raw is None and fields.get("images"):
        first = fields["images"][0]
        if isinstance(first, dict):
            raw, embedded = first.get("path"), first.get("bytes")
        else:
            raw = first
    if not raw and not embedded:
        raise FormatError(f"{file}: a record has no image path")
    split = file.stem  # twitter_train.json -> image/twitter_train/
    if raw:
        candidate = Path(raw)
        if candidate.is_absolute() and candidate.exists():
            return candidate
        if not candidate.is_absolute():
            for base in (
                file.parent,
                file.parent / "image" / split,
                file.parent / "images",
                file.parent / "image",
            ):
                if (base / candidate).exists():
                    return base / candidate
    if embedded:
        return _embedded_image(embedded, raw or "", image_cache)
    if Path(raw).is_absolute():
        return Path(raw)  # as before: an absolute path is taken as given; opening it will say
    raise FormatError(f"{file}: image {raw} not found beside the file or in image/{split}/")


def default_image_cache() -> Path:
    """Where embedded Parquet images are written: $ALTPREF_IMAGE_CACHE, else the user cache."""
    configured = os.environ.get("ALTPREF_IMAGE_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "altpref" / "images"


def _embedded_image(data: bytes, name: str, image_cache: str | Path | None) -> Path:
    """A file holding an image embedded in a Parquet row (an AltPref Parquet export stores the
    bytes with only the file's base name, so the path alone finds nothing on another machine).

    The training pipeline opens images by path, so the bytes are written once to a
    content-addressed file: the same image always lands at the same name, and the snapshot
    folder itself is never written to (its manifest lists every file it may hold).
    """
    digest = hashlib.sha256(data).hexdigest()
    suffix = Path(name).suffix.lower()
    folder = Path(image_cache) if image_cache is not None else default_image_cache()
    target = folder / f"{digest}{suffix if suffix in IMAGE_SUFFIXES else ''}"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        # Several processes (DDP ranks) may read the same file at once: write then rename.
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return target
