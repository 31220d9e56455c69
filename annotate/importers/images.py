"""Image files: resolve a record's reference, hash it, check it is a real image, store it once.

Storage is content-addressed (images/ab/<sha256>.<ext>) so the same picture used by many
posts, or imported twice, is one file. A file is complete before its database row is written,
and a file cut short by a crash is recognised by its size and written again (see Store.put).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass

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


def resolve(ref: str, images_dir: str) -> str:
    """The real path of `ref` (relative to images_dir, or absolute), which must lie inside
    images_dir (given already resolved with os.path.realpath).

    Resolved with realpath, symlinks included, before anything is opened: "../", absolute
    paths and links that lead out of the folder are refused, whatever the file is.
    """
    candidate = os.path.realpath(os.path.join(images_dir, ref))
    if not candidate.startswith(images_dir.rstrip(os.sep) + os.sep):
        raise ImageError(f"image path {ref!r} points outside the images folder")
    return candidate


def read(path: str, *, max_bytes: int) -> bytes:
    """The bytes of a regular file. A FIFO, device or socket is refused before it is opened
    (opening a FIFO blocks until a writer comes), and opened without following a last-moment
    symlink and without blocking, so a file swapped in after the check cannot hang us either."""
    name = os.path.basename(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {name}") from None
    except OSError as exc:
        raise ImageError(f"image file cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"image path is not a regular file: {name}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise ImageError(f"image file not found: {name}") from None
    except OSError as exc:
        raise ImageError(f"image file cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"image path is not a regular file: {name}")
        if info.st_size == 0:
            raise ImageError(f"image file is empty: {name}")
        if info.st_size > max_bytes:
            raise ImageError(f"image file is {info.st_size:,} bytes (limit {max_bytes:,})")
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
    except (
        UnidentifiedImageError,
        PILImage.DecompressionBombError,
        PILImage.DecompressionBombWarning,
    ):
        raise ImageError("file is not a readable image (or is a decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"image data is damaged or truncated ({exc})") from None
    mime, ext = FORMATS[fmt]
    return ImageInfo(mime=mime, ext=ext, width=width, height=height)


def storage_name(digest: str, ext: str) -> str:
    # One level of 256 folders: a second level makes a folder per image or two at this scale,
    # and creating folders costs more than anything else the import does on disk.
    return f"images/{digest[:2]}/{digest}.{ext}"


class Store:
    """Writes files under media_root if absent, remembering folders it has already made."""

    def __init__(self, media_root: str):
        self.media_root = media_root
        self._dirs: set[str] = set()

    def put(self, name: str, data: bytes) -> str | None:
        """Write the file if absent; return its path when this call created it, else None.

        Written in place, not to a temporary name and renamed: the rename costs ten times the
        write on this disk. That is safe because a file is written before its database row
        exists, and a crash mid-write leaves a file shorter than its content, which the size
        check below finds and rewrites on the next import.
        """
        target = os.path.join(self.media_root, name)
        try:
            if os.stat(target).st_size == len(data):
                return None
            os.unlink(target)  # a short file left by an interrupted write
        except FileNotFoundError:
            pass
        folder = os.path.dirname(target)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        try:
            fh = open(target, "xb")  # noqa: SIM115 - closed below
        except FileExistsError:
            return None  # another writer got there first; same content by its name
        try:
            with fh:
                fh.write(data)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            raise
        return target
