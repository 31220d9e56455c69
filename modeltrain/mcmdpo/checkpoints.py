"""Atomic, verifiable checkpoints: staged in a temporary folder, sealed by a marker, then renamed.

A checkpoint folder counts as complete only if its marker file (written last, after every other
file was flushed) exists and lists every file with its size and SHA-256; a folder that lost a file
or has a truncated one never satisfies that, so `newest_complete_checkpoint` skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

MARKER = "COMPLETE.json"
STAGING_PREFIX = ".staging-"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def seal(folder: str | Path, extra: dict | None = None) -> None:
    """Flush every file in `folder` and write the marker listing them (the marker goes last)."""
    folder = Path(folder)
    manifest = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER):
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
        manifest[str(path.relative_to(folder))] = {
            "size": path.stat().st_size,
            "sha256": file_digest(path),
        }
    marker = folder / MARKER
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"files": manifest, **(extra or {})}, indent=1))
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, marker)


def is_complete(folder: str | Path) -> bool:
    """True when the marker exists and every listed file is present with its recorded size and hash."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    for name, meta in manifest.items():
        path = folder / name
        if (
            not path.is_file()
            or path.stat().st_size != meta["size"]
            or file_digest(path) != meta["sha256"]
        ):
            return False
    return True


def publish(staging: str | Path, final: str | Path, extra: dict | None = None) -> Path:
    """Seal `staging` and rename it to `final` (replacing an older folder of that name)."""
    staging, final = Path(staging), Path(final)
    seal(staging, extra)
    if final.exists():
        # Never leave `final` half-replaced: move the old one aside first, delete it after.
        old = final.with_name(f"{STAGING_PREFIX}old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, final)
    _fsync_dir(final.parent)
    return final


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint-N folder, oldest first, complete or not."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for child in output_dir.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def newest_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The highest-step checkpoint that passes `is_complete`, else None."""
    for _, folder in reversed(checkpoints(output_dir)):
        if is_complete(folder):
            return folder
    return None


def clean_staging(output_dir: str | Path) -> None:
    """Remove leftovers of an interrupted save (they were never published, so never loaded)."""
    output_dir = Path(output_dir)
    if output_dir.is_dir():
        for child in output_dir.iterdir():
            if child.name.startswith(STAGING_PREFIX):
                shutil.rmtree(child, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
