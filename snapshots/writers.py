"""Export writers: the MCM-DPO reference JSON array, JSON Lines, LLaVA conversations and Parquet.

Every writer appends one record at a time (nothing is collected in memory) and writes only what
the records hold, in the order given, so the same selection always gives the same bytes. Each
writer hashes what it writes, so the manifest needs no second read of the files.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
