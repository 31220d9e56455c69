"""The progress log of a training run: one JSON object per line in ``<output>/progress.jsonl``.

The `train` CLI writes it (main process only, appended and flushed line by line, so a reader never
sees half a line once it is read up to the last newline); a Celery round, or a person watching a
cluster run, reads it. Events:

- ``start``: world_size, method, resumed_from (path or null), pid
- ``log``: step, total, loss, margins {dimension: value}, accuracies {dimension: value}, logs {...}
- ``checkpoint``: step, path (a sealed checkpoint was published)
- ``end``: status ("done" or "stopped"), final_dir, global_step, max_steps, resumed_from,
  reference_cache, reference_cache_hit
- ``error``: message (the run failed; the process exits non-zero)

Every event also carries ``event`` and ``time`` (UNIX seconds). A resumed run appends to the
same file, so a reader keeps the last entry per step.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

FILENAME = "progress.jsonl"


def log_path(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / FILENAME


class ProgressWriter:
    """Appends events to an output folder's progress log; a no-op on processes other than the main one."""

    def __init__(self, output_dir: str | os.PathLike, *, enabled: bool = True):
        self.path = log_path(output_dir)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields) -> None:
        if not self.enabled:
            return
        line = json.dumps({"event": event, "time": time.time(), **fields}, default=str)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()


class ProgressReader:
    """Reads the events appended since the last call (a tail -f over a growing file)."""

    def __init__(self, output_dir: str | os.PathLike):
        self.path = log_path(output_dir)
        self.offset = 0

    def new_events(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1  # a line still being written waits for the next call
        self.offset += complete
        events = []
        for line in data[:complete].splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a crash mid-write: skip it, the next run appends fresh
        return events
