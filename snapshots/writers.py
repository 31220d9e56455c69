"""Export writers: the MCM-DPO reference JSON array, JSON Lines, LLaVA conversations and Parquet,
and the registry of export formats (format name -> the class that writes its files).

Every writer appends one record at a time (nothing is collected in memory) and writes only what
the records hold, in the order given, so the same selection always gives the same bytes. Each
writer hashes what it writes, so the manifest needs no second read of the files.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import ApplicationError

_s = json.encoder.encode_basestring  # JSON string literal, non-ASCII kept (ensure_ascii=False)


class _HashingFile:
    """Buffered text output that hashes the bytes it writes (one encode per block)."""

    BLOCK = 1 << 20

    def __init__(self, path: Path):
        self.path = path
        self.handle = path.open("wb")
        self.sha = hashlib.sha256()
        self.bytes = 0
        self.records = 0
        self.pending: list[str] = []
        self.pending_len = 0

    def write(self, text: str) -> None:
        self.pending.append(text)
        self.pending_len += len(text)
        if self.pending_len >= self.BLOCK:
            self._drain()

    def _drain(self) -> None:
        data = "".join(self.pending).encode("utf-8")
        self.pending, self.pending_len = [], 0
        self.sha.update(data)
        self.bytes += len(data)
        self.handle.write(data)

    def close(self) -> dict:
        self._drain()
        self.handle.close()
        return {"sha256": self.sha.hexdigest(), "bytes": self.bytes, "records": self.records}


class JsonLinesWriter(_HashingFile):
    def add(self, record: dict) -> None:
        self.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.records += 1


class JsonArrayWriter(_HashingFile):
    """Writes exactly what json.dumps(records, indent=2, ensure_ascii=False) would, one record at
    a time. The reference files are laid out like that; `encode` lets a caller supply a faster
    hand-made encoding of the same bytes for its fixed record shape."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.write("[")

    def add(self, record: dict | None = None, *, encoded: str | None = None) -> None:
        if encoded is None:
            encoded = json.dumps(record, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        self.write(("\n  " if self.records == 0 else ",\n  ") + encoded)
        self.records += 1

    def close(self) -> dict:
        self.write("\n]" if self.records else "]")
        return super().close()


def mcmdpo_encoded(
    *, ds_name: str, image_path: str, origin_dataset: str, idx: int, text: str
) -> str:
    """One reference record (Twitter train key order), indented as inside the array."""
    p = _s(image_path)
    return (
        "{\n"
        f'    "ds_name": {_s(ds_name)},\n'
        '    "image": {\n'
        f'      "path": {p}\n'
        "    },\n"
        f'    "origin_dataset": {_s(origin_dataset)},\n'
        '    "origin_split": "{}",\n'
        f'    "idx": {int(idx)},\n'
        f'    "image_path": {p},\n'
        f'    "text": {_s(text)}\n'
        "  }"
    )


def mcmdpo_text(question: str, chosen: str, rejected: str | None = None) -> str:
    """The `text` field: json.dumps({"question", "chosen"[, "rejected"]}, ensure_ascii=False)."""
    text = '{"question": ' + _s(question) + ', "chosen": ' + _s(chosen)
    if rejected is not None:
        text += ', "rejected": ' + _s(rejected)
    return text + "}"


def llava_encoded(*, idx: int, image_path: str, question: str, answer: str) -> str:
    """One LLaVA conversation record, compact, as json.dumps(..., ensure_ascii=False) writes it."""
    return (
        f'{{"id": "{int(idx)}", "image": {_s(image_path)}, "conversations": '
        f'[{{"from": "human", "value": {_s("<image>" + chr(10) + question)}}}, '
        f'{{"from": "gpt", "value": {_s(answer)}}}]}}'
    )


# --- Parquet ---------------------------------------------------------------------------------

_MESSAGE = pa.struct(
    [
        ("role", pa.string()),
        ("content", pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))),
    ]
)
_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _hf_feature(dtype: pa.DataType):
    """The Hugging Face `datasets` feature description of an Arrow type, so that load_dataset
    decodes the image column as images instead of raw structs."""
    if dtype == _IMAGE:
        return {"_type": "Image"}
    if pa.types.is_list(dtype):
        return {"feature": _hf_feature(dtype.value_type), "_type": "List"}
    if pa.types.is_struct(dtype):
        return {f.name: _hf_feature(f.type) for f in dtype}
    name = {
        pa.string(): "string",
        pa.int64(): "int64",
        pa.int32(): "int32",
        pa.float64(): "float64",
        pa.bool_(): "bool",
    }[dtype]
    return {"dtype": name, "_type": "Value"}


def missing_image_message(path: str) -> str:
    return (
        f"An image file is missing from storage: {path}. Restore it (or re-import the posts "
        "that use it) and export again; nothing was exported."
    )


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ApplicationError(missing_image_message(path)) from None


def conversation_prompt(question: str) -> list[dict]:
    """trl's conversational vision prompt: the image placeholder, then the question."""
    return [
        {
            "role": "user",
            "content": [{"type": "image", "text": None}, {"type": "text", "text": question}],
        }
    ]


def conversation_answer(text: str) -> list[dict]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


class ParquetRowsWriter:
    """Parquet with a fixed schema, written in row groups as records arrive."""

    MESSAGES = pa.list_(_MESSAGE)
    IMAGES = pa.list_(_IMAGE)

    def __init__(
        self, path: Path, fields: list[tuple[str, pa.DataType]], *, group_rows: int = 1000
    ):
        self.path = path
        features = {name: _hf_feature(dtype) for name, dtype in fields}
        self.schema = pa.schema(
            fields, metadata={"huggingface": json.dumps({"info": {"features": features}})}
        )
        self.writer = pq.ParquetWriter(
            str(path), self.schema, compression="zstd", write_statistics=False
        )
        self.group_rows = group_rows
        self.buffer: list[dict] = []
        self.image_files: list[str] = []
        self.records = 0
        # Reading many small image files is I/O-bound: a few threads overlap the waits.
        self.pool = ThreadPoolExecutor(max_workers=4)

    def add(self, record: dict, *, image_file: str | None = None) -> None:
        """Queue a record; with `image_file`, its `images` column gets that file's bytes."""
        self.buffer.append(record)
        if image_file is not None:
            self.image_files.append(image_file)
        self.records += 1
        if len(self.buffer) >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        if self.image_files:
            datas = self.pool.map(_read_bytes, self.image_files)
            for row, name, data in zip(self.buffer, self.image_files, datas, strict=True):
                row["images"] = [{"bytes": data, "path": os.path.basename(name)}]
            self.image_files = []
        # Column by column with pa.array: Table.from_pylist would import pandas (~100 MB, 1 s).
        if self.buffer:
            arrays = [
                pa.array([row.get(f.name) for row in self.buffer], type=f.type) for f in self.schema
            ]
            self.writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
            self.buffer = []

    def close(self) -> dict:
        self._flush()
        self.pool.shutdown()
        self.writer.close()
        sha = hashlib.sha256()
        size = 0
        with self.path.open("rb") as handle:
            while block := handle.read(1 << 20):
                sha.update(block)
                size += len(block)
        return {"sha256": sha.hexdigest(), "bytes": size, "records": self.records}


# --- Export formats: the registry ------------------------------------------------------------
#
# A format is one registered class: which files it writes for a snapshot kind, and how one row
# becomes a record in each. snapshot_export walks the rows once and hands every row to each
# chosen format; adding a format is one class with @export_format("name").


@dataclass(frozen=True)
class ExportItem:
    """One selected row and what every format derives from it the same way."""

    idx: int
    row: Any  # selectors.PaltRow for PAlt, selectors.TaltRow for TAlt and test
    question: str
    image_path: str  # as the records name it (absolute, or relative to the folder)
    image_file: str  # the stored file, for formats that embed the bytes


class ExportFormat:
    """Base of a registered format; `files` maps a snapshot kind to the files it writes."""

    name: str = ""
    files: dict[str, tuple[str, ...]] = {}

    def __init__(self, *, kind: str, out_dir: Path, facet_keys: list[str]):
        self.kind = kind
        self.out_dir = out_dir
        self.facet_keys = facet_keys
        self.writers: dict[str, Any] = {}

    def add(self, item: ExportItem) -> None:
        raise NotImplementedError

    def close(self) -> dict[str, dict]:
        return {name: writer.close() for name, writer in self.writers.items()}


EXPORT_FORMATS: dict[str, type[ExportFormat]] = {}


def export_format(name: str):
    def register(cls: type[ExportFormat]) -> type[ExportFormat]:
        cls.name = name
        EXPORT_FORMATS[name] = cls
        return cls

    return register


def export_formats_open(
    *, names: list[str], kind: str, out_dir: Path, facet_keys: list[str]
) -> list[ExportFormat]:
    """The chosen formats, opened. Two formats that write the same files for a kind (the test
    split's test.jsonl is both its reference and its JSONL file) write them once."""
    opened: list[ExportFormat] = []
    taken: set[str] = set()
    for name in names:
        cls = EXPORT_FORMATS[name]
        files = set(cls.files.get(kind, ()))
        if not files or files <= taken:
            continue
        taken |= files
        opened.append(cls(kind=kind, out_dir=out_dir, facet_keys=facet_keys))
    return opened


_PALT, _TALT, _TEST = "palt", "talt", "test"
# origin_dataset as the reference files spell it, for posts that did not bring their own.
ORIGIN_DATASET = {"twitter": "AltTextData", "pinterest": "pinterest"}


def _test_record(item: ExportItem) -> dict:
    return {
        "image_path": item.image_path,
        "question": item.question,
        "chosen": item.row.target,
        "idx": item.idx,
    }


@export_format("mcmdpo")
class McmdpoFormat(ExportFormat):
    """The MCM-DPO reference files: JSON arrays (plus LLaVA conversations for TAlt); the test
    split's reference file is JSON Lines."""

    files = {
        _PALT: ("palt.json",),
        _TALT: ("talt.json", "talt_llava.json"),
        _TEST: ("test.jsonl",),
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in self.files[self.kind]:
            cls = JsonLinesWriter if name.endswith(".jsonl") else JsonArrayWriter
            self.writers[name] = cls(self.out_dir / name)

    def add(self, item: ExportItem) -> None:
        row = item.row
        if self.kind == _TEST:
            self.writers["test.jsonl"].add(_test_record(item))
            return
        answer = (row.chosen, row.rejected) if self.kind == _PALT else (row.target,)
        encoded = mcmdpo_encoded(
            ds_name=f"{row.platform}_data",
            image_path=item.image_path,
            origin_dataset=row.origin_dataset or ORIGIN_DATASET.get(row.platform, "altpref"),
            idx=item.idx,
            text=mcmdpo_text(item.question, *answer),
        )
        self.writers[f"{self.kind}.json"].add(encoded=encoded)
        if self.kind == _TALT:
            self.writers["talt_llava.json"].add(
                encoded=llava_encoded(
                    idx=item.idx,
                    image_path=item.image_path,
                    question=item.question,
                    answer=row.target,
                )
            )


@export_format("jsonl")
class JsonLinesFormat(ExportFormat):
    """trl's conversational records, one JSON object per line."""

    files = {_PALT: ("palt.jsonl",), _TALT: ("talt.jsonl",), _TEST: ("test.jsonl",)}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        (name,) = self.files[self.kind]
        self.writer = self.writers[name] = JsonLinesWriter(self.out_dir / name)

    def add(self, item: ExportItem) -> None:
        row, question = item.row, item.question
        if self.kind == _TEST:
            self.writer.add(_test_record(item))
        elif self.kind == _TALT:
            self.writer.add(
                {
                    "idx": item.idx,
                    "post_id": row.post_id,
                    "platform": row.platform,
                    "tier": row.tier,
                    "images": [item.image_path],
                    "prompt": conversation_prompt(question),
                    "completion": conversation_answer(row.target),
                    "question": question,
                }
            )
        else:
            self.writer.add(
                {
                    "idx": item.idx,
                    "pair_id": row.pair_id,
                    "post_id": row.post_id,
                    "platform": row.platform,
                    "source": row.source,
                    "decided_by": row.decided_by,
                    "images": [item.image_path],
                    "prompt": conversation_prompt(question),
                    "chosen": conversation_answer(row.chosen),
                    "rejected": conversation_answer(row.rejected),
                    "question": question,
                    "labels": {
                        k: {
                            "label": v.label,
                            "confidence": v.confidence,
                            "votes": v.votes,
                            "method": v.method,
                        }
                        for k, v in sorted(row.labels.items())
                    },
                }
            )


@export_format("parquet")
class ParquetFormat(ExportFormat):
    """trl's conversational columns with the image bytes embedded (Hugging Face `datasets`)."""

    files = {_PALT: ("palt.parquet",), _TALT: ("talt.parquet",), _TEST: ("test.parquet",)}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        M = ParquetRowsWriter.MESSAGES
        if self.kind == _PALT:
            columns = [
                ("images", ParquetRowsWriter.IMAGES),
                ("prompt", M),
                ("chosen", M),
                ("rejected", M),
                ("idx", pa.int64()),
                ("pair_id", pa.int64()),
                ("post_id", pa.int64()),
                ("platform", pa.string()),
                ("source", pa.string()),
                ("decided_by", pa.string()),
                ("question", pa.string()),
            ]
            for key in self.facet_keys:
                columns += [(f"{key}_label", pa.string()), (f"{key}_confidence", pa.float64())]
        else:
            answer = ("chosen", pa.string()) if self.kind == _TEST else ("completion", M)
            columns = [
                ("images", ParquetRowsWriter.IMAGES),
                ("prompt", M),
                answer,
                ("idx", pa.int64()),
                ("post_id", pa.int64()),
                ("platform", pa.string()),
                ("tier", pa.string()),
                ("question", pa.string()),
            ]
        (name,) = self.files[self.kind]
        self.writer = self.writers[name] = ParquetRowsWriter(self.out_dir / name, columns)

    def add(self, item: ExportItem) -> None:
        row = item.row
        record = {"prompt": conversation_prompt(item.question)}
        if self.kind == _PALT:
            record |= {
                "chosen": conversation_answer(row.chosen),
                "rejected": conversation_answer(row.rejected),
                "idx": item.idx,
                "pair_id": row.pair_id,
                "post_id": row.post_id,
                "platform": row.platform,
                "source": row.source,
                "decided_by": row.decided_by,
                "question": item.question,
            }
            for key in self.facet_keys:
                label = row.labels.get(key)
                record[f"{key}_label"] = label.label if label else None
                record[f"{key}_confidence"] = label.confidence if label else None
        else:
            record |= {
                "idx": item.idx,
                "post_id": row.post_id,
                "platform": row.platform,
                "tier": row.tier,
                "question": item.question,
            }
            if self.kind == _TEST:
                record["chosen"] = row.target
            else:
                record["completion"] = conversation_answer(row.target)
        self.writer.add(record, image_file=item.image_file)
