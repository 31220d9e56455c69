"""Streaming readers: each yields (position, record dict) or (position, ReadError) per record.

Files are never read whole: JSON arrays are decoded one element at a time, JSON Lines and CSV
one line at a time, so memory stays flat however large the input. Bytes that are not UTF-8 are
kept as lone surrogates (surrogateescape) and rejected per record by the caller, so one bad byte
costs one record, not the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_RECORD_BYTES = 8 * 1024 * 1024
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ReadError:
    reason: str
    fatal: bool = False  # the rest of the file cannot be read


Position = int  # 1-based record number within the file
Item = tuple[Position, dict | ReadError]


class UnsupportedFile(ValueError):
    pass


def detect_format(path: Path) -> str:
    """Return "json", "jsonl" or "csv"; raise UnsupportedFile for anything else."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    first = head.lstrip()[:1]
    suffix = path.suffix.lower()
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    if suffix == ".csv" and b"\x00" not in head:
        return "csv"
    raise UnsupportedFile(
        f"{path.name}: not a JSON array, JSON Lines or CSV file (it starts with {head[:8]!r})"
    )


TOO_DEEP = "record nests JSON too deeply to read"
_TOKEN = re.compile(r'\\.|"|[\[\]{}]', re.S)


def _value_end(buf: str, pos: int) -> int | None:
    """Index just past the JSON value starting at buf[pos] ([ or {), or None if buf ends first."""
    depth, in_string = 0, False
    for match in _TOKEN.finditer(buf, pos):
        token = match.group()
        if token == '"':
            in_string = not in_string
        elif in_string or len(token) == 2:
            continue
        elif token in "[{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.end()
    return None


def read_records(path: Path) -> Iterator[Item]:
    fmt = detect_format(path)
    return {"json": _read_json_array, "jsonl": _read_json_lines, "csv": _read_csv}[fmt](path)


def _text_chunks(path: Path) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)


def _read_json_array(path: Path) -> Iterator[Item]:
    decoder = json.JSONDecoder()
    chunks = _text_chunks(path)
    buf, pos, eof = "", 0, False

    def fill() -> bool:
        nonlocal buf, pos, eof
        for chunk in chunks:
            if chunk:
                buf = buf[pos:] + chunk
                pos = 0
                return True
        eof = True
        return False

    def skip_ws() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or not fill():
                return buf[pos] if pos < len(buf) else ""

    if skip_ws() != "[":
        yield 1, ReadError("file does not start with a JSON array", fatal=True)
        return
    pos += 1
    number = 0
    if skip_ws() == "]":
        return
    while True:
        number += 1
        skip_ws()
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                break
            except RecursionError:
                # Nested past Python's recursion limit: reject this record, skip to its end
                # with a flat scan, and read on.
                end = _value_end(buf, pos)
                if end is None and len(buf) - pos <= MAX_RECORD_BYTES and not eof and fill():
                    continue
                if end is None:
                    yield number, ReadError(TOO_DEEP, fatal=True)
                    return
                value = ReadError(TOO_DEEP)
                break
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(buf) - 1 or exc.msg.startswith("Unterminated")
                if not incomplete:
                    yield number, ReadError(f"malformed JSON: {exc.msg}", fatal=True)
                    return
                if len(buf) - pos > MAX_RECORD_BYTES:
                    yield number, ReadError("record is larger than 8 MiB", fatal=True)
                    return
                if eof or not fill():
                    yield number, ReadError(f"malformed JSON: {exc.msg}", fatal=True)
                    return
        pos = end
        if not isinstance(value, dict | ReadError):
            value = ReadError("record is not an object")
        yield number, value
        sep = skip_ws()
        if sep == ",":
            pos += 1
            continue
        if sep == "]":
            return
        yield (
            number + 1,
            ReadError("malformed JSON: expected ',' or ']' after a record", fatal=True),
        )
        return


def _read_lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """Yield (line number, bytes) for non-blank lines; None marks an over-long line."""
    with open(path, "rb") as fh:
        number = 0
        while True:
            line = fh.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                while (rest := fh.readline(_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield number, None
                continue
            if number == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8) :]
            if line.strip():
                yield number, line


def _read_json_lines(path: Path) -> Iterator[Item]:
    for number, line in _read_lines(path):
        if line is None:
            yield number, ReadError("record is larger than 8 MiB")
            continue
        try:
            value = json.loads(line.decode("utf-8", errors="surrogateescape"))
        except json.JSONDecodeError as exc:
            yield number, ReadError(f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield number, ReadError(TOO_DEEP)
            continue
        yield number, value if isinstance(value, dict) else ReadError("record is not an object")


def _read_csv(path: Path) -> Iterator[Item]:
    # Parse line by line through csv so a quoted newline inside a field still works, while the
    # reader's own field-size limit keeps a runaway field from eating memory.
    raw = open(path, "rb")  # noqa: SIM115 - closed in finally; the generator owns it
    try:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader)
        except (StopIteration, csv.Error) as exc:
            yield 1, ReadError(f"CSV has no header row ({exc})", fatal=True)
            return
        header = [h.strip() for h in header]
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, ReadError(f"malformed CSV: {exc}")
                continue
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield (
                    reader.line_num,
                    ReadError(f"row has {len(row)} fields, the header has {len(header)}"),
                )
                continue
            yield reader.line_num, dict(zip(header, row, strict=True))
    finally:
        raw.close()
