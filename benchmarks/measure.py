"""Helpers for the benchmarks: wall time and peak resident memory of a phase, the machine reference
loop."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


@contextmanager
def measure(interval: float = 0.02):
    """Time a block and sample this process's RSS while it runs (peak, in MiB)."""
    proc = psutil.Process()
    result = Measurement()
    peak = proc.memory_info().rss
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.wait(interval):
            peak = max(peak, proc.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
        stop.set()
        thread.join()
        result.peak_rss_mb = max(peak, proc.memory_info().rss) / 2**20


REFERENCE_LOOP_STEPS = 10**7


def reference_loop_seconds() -> float:
    """Wall time of a fixed pure-Python loop (REFERENCE_LOOP_STEPS steps) on one core: how fast
    this machine runs Python at the moment. On the shared development machines it has moved
    between 0.4 and 2.5 s from one hour to the next, with no steal time showing in /proc/stat,
    and CPU per request moved with it; benchmark reports print it so that their numbers can be
    compared across runs."""
    start = time.perf_counter()
    total = 0
    for i in range(REFERENCE_LOOP_STEPS):
        total += i * i
    return time.perf_counter() - start


def tiny_png(n: int) -> bytes:
    """A valid 4×4 RGB PNG whose pixels encode n, so every image is distinct (fast, no PIL)."""
    r, g, b = n & 0xFF, (n >> 8) & 0xFF, (n >> 16) & 0xFF
    raw = b"".join(b"\x00" + bytes((r, g, b)) * 4 for _ in range(4))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
