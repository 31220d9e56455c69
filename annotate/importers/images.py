"""Image files: resolve a record's reference, hash it, check it is a real image, store it once.

Storage is content-addressed (images/ab/cd/<sha256>.<ext>) so the same picture used by many
posts, or imported twice, is one file. Files are written to a temporary name and renamed, so a
crash never leaves a half-written image where a complete one is expected.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

# Formats we accept and the MIME type and extension we store them under.
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}


class ImageError(ValueError):
    pass


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    ext: str
    width: int
    height: int


def resolve(ref: str, images_dir: Path) -> Path:
    """Absolute references are taken as they are (our own snapshots write them); relative ones
    must stay inside images_dir."""
    path = Path(ref)
    if path.is_absolute():
        return path
    base = images_dir.resolve()
    candidate = (base / path).resolve()
    if not candidate.is_relative_to(base):
        raise ImageError(f"image path {ref!r} points outside the images folder")
    return candidate


def read(path: Path, *, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path.name}") from None
    except OSError as exc:
        raise ImageError(f"image file cannot be read: {exc.strerror}") from None
    if not path.is_file():
        raise ImageError(f"image path is not a file: {path.name}")
    if size == 0:
        raise ImageError(f"image file is empty: {path.name}")
    if size > max_bytes:
        raise ImageError(f"image file is {size:,} bytes (limit {max_bytes:,})")
    with open(path, "rb") as fh:
        return fh.read()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inspect(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Decode the whole image once: catches non-images, truncation and decompression bombs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as img:
                fmt = img.format
                width, height = img.size
                if fmt not in FORMATS:
                    raise ImageError(f"unsupported image format {fmt}")
                # Checked before decoding: a bomb must be refused without allocating it.
                if width * height > max_pixels:
                    raise ImageError(
                        f"image is {width}×{height} pixels, over the limit of {max_pixels:,} "
                        "(possible decompression bomb)"
                    )
                img.load()  # verify() alone misses truncated JPEG/PNG data
    except ImageError:
        raise
    except (UnidentifiedImageError, PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise ImageError("file is not a readable image (or is a decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"image data is damaged or truncated ({exc})") from None
    mime, ext = FORMATS[fmt]
    return ImageInfo(mime=mime, ext=ext, width=width, height=height)


def storage_name(digest: str, ext: str) -> str:
    return f"images/{digest[:2]}/{digest[2:4]}/{digest}.{ext}"


def store(media_root: Path, name: str, data: bytes) -> bool:
    """Write the file if absent; return True when this call created it."""
    target = media_root / name
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
