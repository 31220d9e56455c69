"""The import service: stream records from files into Posts, Images, AltTexts, and hand the
records that carry a preference (chosen over rejected) to a PairSink: pairs belong to
preferences, which imports through `preferences.imports.altdata_import`.

Records are handled in chunks: files are hashed first, the database is asked once per chunk what
already exists, new rows go in with bulk inserts, and each record is counted as imported (it
added something), duplicate (everything it carries was already stored) or rejected (with its
position and the reason). Without `strict` each chunk commits on its own, so good records are
kept whatever else the file holds; with `strict` the whole import is one transaction that is
rolled back if anything was rejected.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from annotate.models import (
    IMPORTED_ORIGINS,
    AltText,
    AltTextOrigin,
    Image,
    Platform,
    Post,
    Project,
    Split,
)

from . import images
from .readers import ReadError, UnsupportedFile, read_records
from .records import ImportRecord, Limits, RecordError, parse_record

log = logging.getLogger(__name__)

_IMAGE_CACHE_LIMIT = 500_000
IO_THREADS = 4


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)
    # Records merged into a post that another id already names (same image and context).
    notes: list[dict] = field(default_factory=list)
    rolled_back: bool = False

    def reject(self, file: str, record: int | None, reason: str) -> None:
        self.rejected += 1
        self.errors.append({"file": file, "record": record, "reason": reason})

    def as_dict(self) -> dict:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
            "notes": self.notes,
        }


@dataclass
class _Pending:
    file: str
    position: int
    record: ImportRecord
    images_dir: str = ""
    sha: str = ""
    data: bytes | None = None  # only kept until the image is stored
    new: bool = False
    post_id: int | None = None


class _StrictRollback(Exception):
    pass


@dataclass(frozen=True)
class PairSink:
    """Where the importer's preference records go, inside each chunk's transaction.

    store({(chosen alt id, rejected alt id): post id}) stores what is new and returns the
    (chosen, rejected) keys it created (a record that created one counts as imported); `table`
    is analyzed with the importer's own tables as an import grows it.
    """

    store: Callable[[dict[tuple[int, int], int]], set[tuple[int, int]]]
    table: str


def split_from_filename(path: Path) -> str:
    name = path.stem.lower()
    if "test" in name:
        return Split.TEST
    if "dev" in name or "val" in name:
        return Split.DEV
    return Split.TRAIN


def platform_from_filename(path: Path) -> str:
    name = path.name.lower()
    for platform in (Platform.TWITTER, Platform.PINTEREST):
        if platform in name:
            return platform
    return Platform.OTHER


def content_key(image_sha: str, context: str) -> str:
    return hashlib.sha256(f"{image_sha}\n{context}".encode("utf-8", "surrogatepass")).hexdigest()


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record_alts(record: ImportRecord) -> list[tuple[str, str]]:
    alts = []
    if record.alt_text is not None:
        alts.append((AltTextOrigin.USER_WRITTEN, record.alt_text))
    if record.chosen is not None:
        alts.append((AltTextOrigin.IMPORTED_CHOSEN, record.chosen))
        alts.append((AltTextOrigin.IMPORTED_REJECTED, record.rejected))
    if record.reference is not None:
        alts.append((AltTextOrigin.REFERENCE, record.reference))
    return alts


class _Importer:
    def __init__(
        self,
        *,
        project: Project,
        images_dir: Path | None,
        strict: bool,
        limits: Limits,
        pairs: PairSink | None,
        confine_images: bool = False,
        on_chunk: Callable[[ImportReport], None] | None = None,
    ):
        conf = settings.ALTPREF
        self.pairs = pairs
        self.confine_images = confine_images
        self.on_chunk = on_chunk
        self.project = project
        self.images_dir = images_dir
        self.strict = strict
        self.limits = limits
        self.max_bytes = conf["MAX_IMAGE_BYTES"]
        self.max_pixels = conf["MAX_IMAGE_PIXELS"]
        self.store = images.Store(str(settings.MEDIA_ROOT))
        self.report = ImportReport()
        self.image_ids: dict[str, int] = {}
        self.written_files: list[str] = []
        self._last_error = ""
        self.pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="import-io")

    # -- per-record work that needs no database ------------------------------------------
    def _read_one(self, item: _Pending) -> tuple[bytes, str] | str:
        """(bytes, sha256) of the record's image, or the reason it cannot be had."""
        if self.confine_images and os.path.isabs(item.record.image_ref):
            # Uploads from the browser: an absolute path would read a file of the server's.
            return "absolute image paths are not accepted here; name an uploaded image"
        try:
            path = images.resolve(item.record.image_ref, item.images_dir)
            data = images.read(path, max_bytes=self.max_bytes)
        except images.ImageError as exc:
            return str(exc)
        return data, images.sha256(data)

    def _start_reads(self, chunk: list[_Pending]) -> list[Future]:
        """Start reading and hashing the chunk's image files on the I/O threads.

        File opens cost more than the hashing on this kind of disk and release the GIL, so the
        reads of one chunk run while the previous chunk is written to the database.
        """
        return [self.pool.submit(self._read_one, item) for item in chunk]

    def _load_images(self, chunk: list[_Pending], reads: list[Future]) -> list[_Pending]:
        """The chunk's records whose image could be read; the others are rejected."""
        kept = []
        for item, read in zip(chunk, reads, strict=True):
            result = read.result()
            if isinstance(result, str):
                self.report.reject(item.file, item.position, result)
                continue
            item.data, item.sha = result
            kept.append(item)
        return kept

    def _inspect_and_store(self, sha: str, data: bytes) -> images.ImageInfo | str:
        """Decode-check one new image and write it to storage (on an I/O thread)."""
        try:
            info = images.inspect(data, max_pixels=self.max_pixels)
        except images.ImageError as exc:
            return str(exc)
        if written := self.store.put(images.storage_name(sha, info.ext), data):
            self.written_files.append(written)  # list.append is atomic under the GIL
        return info

    def _store_new_images(self, chunk: list[_Pending]) -> list[_Pending]:
        """Inspect and store images not yet in the database; drop records whose image is bad."""
        unknown = {p.sha for p in chunk if p.sha not in self.image_ids}
        if unknown:
            for sha, pk in Image.objects.filter(sha256__any_of=unknown).values_list("sha256", "id"):
                self.image_ids[sha] = pk
        new_data = {p.sha: p.data for p in chunk if p.sha not in self.image_ids}
        verdicts = dict(
            zip(
                new_data,
                self.pool.map(self._inspect_and_store, new_data, new_data.values()),
                strict=True,
            )
        )
        new_rows = [
            Image(
                sha256=sha,
                file=images.storage_name(sha, info.ext),
                mime=info.mime,
                width=info.width,
                height=info.height,
                size_bytes=len(new_data[sha]),
            )
            for sha, info in verdicts.items()
            if not isinstance(info, str)
        ]
        kept = []
        for item in chunk:
            verdict = verdicts.get(item.sha)
            item.data = None
            if isinstance(verdict, str):
                self.report.reject(item.file, item.position, verdict)
            else:
                kept.append(item)
        if new_rows:
            Image.objects.bulk_create(new_rows, ignore_conflicts=True)
            shas = [row.sha256 for row in new_rows]
            for sha, pk in Image.objects.filter(sha256__any_of=shas).values_list("sha256", "id"):
                self.image_ids[sha] = pk
        return kept

    # -- database writes for one chunk ---------------------------------------------------
    def _check_ids(self, chunk: list[_Pending], known: dict[str, tuple[int, str, dict]]) -> list:
        """Apply the duplicate-id rules (README, "Importing data"); returns the records kept.

        - An id already naming a post with a different image or context (same project,
          platform and split) is a rejection: one id, one post.
        - A record with the same image and context as a post under another id is merged into
          that post (a post is its content); its id is kept in the post's provenance
          ("also_ids") and the report says so in "notes".
        """
        ids = {p.record.external_id for p in chunk if p.record.external_id}
        owner: dict[tuple, str] = {}  # (id, platform, split) -> content key
        if ids:
            for ext, platform, split, key in Post.objects.filter(
                project=self.project, external_id__in=ids
            ).values_list("external_id", "platform", "split", "content_key"):
                owner.setdefault((ext, platform, split), key)
        kept = []
        for item in chunk:
            rec, key = item.record, content_key(item.sha, item.record.context)
            if rec.external_id:
                name = (rec.external_id, rec.platform, rec.split)
                if owner.setdefault(name, key) != key:
                    self.report.reject(
                        item.file,
                        item.position,
                        f"id {rec.external_id!r} already names another post (a different image "
                        f"or context) in {rec.platform}/{rec.split}; ids must be unique",
                    )
                    continue
                post = known.get(key)
                if post is not None and rec.external_id != post[1]:
                    also = post[2].setdefault("also_ids", [])
                    if rec.external_id not in also:
                        also.append(rec.external_id)
                        Post.objects.filter(pk=post[0]).update(provenance=post[2])
                        self.report.notes.append(
                            {
                                "file": item.file,
                                "record": item.position,
                                "note": f"same image and context as post {post[0]} "
                                f"(id {post[1]!r}): merged, id {rec.external_id!r} kept in "
                                "its provenance",
                            }
                        )
            kept.append(item)
        return kept

    def _write_rows(self, chunk: list[_Pending]) -> None:
        project = self.project
        keys = {content_key(p.sha, p.record.context) for p in chunk}
        known = {
            key: (pk, ext, prov or {})
            for key, pk, ext, prov in Post.objects.filter(
                project=project, content_key__any_of=keys
            ).values_list("content_key", "id", "external_id", "provenance")
        }
        chunk = self._check_ids(chunk, known)
        post_ids = {key: value[0] for key, value in known.items()}
        new_posts: dict[str, Post] = {}
        for item in chunk:
            key = content_key(item.sha, item.record.context)
            if key in new_posts and item.record.external_id != new_posts[key].external_id:
                also = new_posts[key].provenance.setdefault("also_ids", [])
                if item.record.external_id and item.record.external_id not in also:
                    also.append(item.record.external_id)
                    self.report.notes.append(
                        {
                            "file": item.file,
                            "record": item.position,
                            "note": f"same image and context as record "
                            f"{new_posts[key].provenance.get('record')} (id "
                            f"{new_posts[key].external_id!r}): merged, id "
                            f"{item.record.external_id!r} kept in its provenance",
                        }
                    )
            if key not in post_ids and key not in new_posts:
                rec = item.record
                new_posts[key] = Post(
                    project=project,
                    platform=rec.platform,
                    external_id=rec.external_id,
                    content_key=key,
                    context=rec.context,
                    split=rec.split,
                    image_id=self.image_ids[item.sha],
                    provenance={**rec.provenance, "file": item.file, "record": item.position},
                )
                item.new = True
        if new_posts:
            Post.objects.bulk_create(new_posts.values(), ignore_conflicts=True)
            post_ids.update(
                Post.objects.filter(
                    project=project, content_key__any_of=list(new_posts)
                ).values_list("content_key", "id")
            )

        # Alt-texts, keyed by (post, origin, text hash) like their unique constraint.
        by_item = []
        for item in chunk:
            post_id = post_ids[content_key(item.sha, item.record.context)]
            by_item.append(
                (item, post_id, [(o, t, _text_sha(t)) for o, t in _record_alts(item.record)])
            )
        all_post_ids = {post_id for _, post_id, _ in by_item}
        alt_ids = {
            (post_id, origin, sha): pk
            for pk, post_id, origin, sha in AltText.objects.filter(
                post_id__any_of=all_post_ids, origin__in=IMPORTED_ORIGINS
            ).values_list("id", "post_id", "origin", "text_sha256")
        }
        new_alts: dict[tuple, AltText] = {}
        for item, post_id, alts in by_item:
            for origin, text, sha in alts:
                key = (post_id, origin, sha)
                if key not in alt_ids and key not in new_alts:
                    new_alts[key] = AltText(
                        post_id=post_id, text=text, text_sha256=sha, origin=origin
                    )
                    item.new = True
        if new_alts:
            AltText.objects.bulk_create(new_alts.values(), ignore_conflicts=True)
            alt_ids.update(
                {
                    (post_id, origin, sha): pk
                    for pk, post_id, origin, sha in AltText.objects.filter(
                        post_id__any_of={k[0] for k in new_alts}, origin__in=IMPORTED_ORIGINS
                    ).values_list("id", "post_id", "origin", "text_sha256")
                }
            )

        # Preferences: chosen over rejected, for the sink to turn into pairs.
        wanted: dict[tuple[int, int], _Pending] = {}
        for item, post_id, _alts in by_item:
            if item.record.chosen is None or self.pairs is None:
                continue
            a = alt_ids[(post_id, AltTextOrigin.IMPORTED_CHOSEN, _text_sha(item.record.chosen))]
            b = alt_ids[(post_id, AltTextOrigin.IMPORTED_REJECTED, _text_sha(item.record.rejected))]
            if (a, b) not in wanted:
                wanted[(a, b)] = item
                item.post_id = post_id
        if wanted:
            created = self.pairs.store({key: item.post_id for key, item in wanted.items()})
            for key in created:
                wanted[key].new = True

        for item in chunk:
            if item.new:
                self.report.imported += 1
            else:
                self.report.duplicates += 1

    def _flush(self, chunk: list[_Pending], reads: list[Future]) -> None:
        self._flush_chunk(chunk, reads)
        if self.on_chunk is not None and chunk:
            self.on_chunk(self.report)

    def _flush_chunk(self, chunk: list[_Pending], reads: list[Future]) -> None:
        chunk = self._load_images(chunk, reads)
        if not chunk:
            return
        if self.strict:
            self._write_rows(self._store_new_images(chunk))
            return
        data = [item.data for item in chunk]
        if not self._write_chunk(chunk) and len(chunk) > 1:
            # One record the checks let through broke the chunk: retry record by record, so
            # the good ones are kept and only the bad one is rejected.
            for item, item_data in zip(chunk, data, strict=True):
                item.data, item.new = item_data, False
                if not self._write_chunk([item]):
                    self.report.reject(item.file, item.position, self._last_error)
        elif len(chunk) == 1 and self._last_error:
            self.report.reject(chunk[0].file, chunk[0].position, self._last_error)
        if len(self.image_ids) > _IMAGE_CACHE_LIMIT:
            self.image_ids.clear()
        self._maybe_analyze()

    def _write_chunk(self, chunk: list[_Pending]) -> bool:
        """Store the chunk in one transaction; on failure undo it, files included.

        Returns False (with the reason in _last_error, without SQL) when the database refused
        it: the image files this chunk created are removed (their rows were rolled back, so
        they would be orphans) and the image-id cache, which may hold rolled-back ids, is reset.
        """
        self._last_error = ""
        written_before = len(self.written_files)
        counts = (
            self.report.imported,
            self.report.duplicates,
            len(self.report.errors),
            len(self.report.notes),
        )
        try:
            with transaction.atomic():
                self._write_rows(self._store_new_images(chunk))
            return True
        except (DatabaseError, UnicodeError) as exc:
            log.exception("import chunk failed")
            for written in self.written_files[written_before:]:
                Path(written).unlink(missing_ok=True)
            del self.written_files[written_before:]
            self.image_ids.clear()
            self.report.imported, self.report.duplicates = counts[0], counts[1]
            del self.report.errors[counts[2] :]
            del self.report.notes[counts[3] :]
            self.report.rejected = len(self.report.errors)
            self._last_error = f"the database refused this record ({type(exc).__name__})"
            return False

    def _maybe_analyze(self) -> None:
        """Refresh PostgreSQL's statistics of the tables an import grows, as autovacuum would.

        The lookups join 1,000-key lists against these tables; with statistics from when they
        were small the planner picks plans that get slower with every chunk (seen: 36 ms per
        lookup at 150k rows, 1 ms after ANALYZE). Autovacuum may be off or lag behind a bulk
        load, so a table is analyzed once a fifth of it changed since its last analysis, the
        same rule autovacuum applies (its default is a tenth).
        """
        if connection.vendor != "postgresql" or self.strict:
            return
        tables = [m._meta.db_table for m in (Image, Post, AltText)]
        if self.pairs is not None:
            tables.append(self.pairs.table)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) "
                "AND n_mod_since_analyze > 1000 + 0.2 * n_live_tup",
                [tables],
            )
            for (table,) in cursor.fetchall():
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")

    # -- driver --------------------------------------------------------------------------
    def _pending(
        self, path: Path, *, platform: str | None, split: str | None
    ) -> Iterator[_Pending]:
        file = path.name
        guessed = platform_from_filename(path)
        # Resolved once (symlinks too): every image must resolve to a file inside it.
        images_dir = os.path.realpath(self.images_dir or path.parent)
        split = split or split_from_filename(path)
        try:
            items = read_records(path)
            for position, raw in items:
                if isinstance(raw, ReadError):
                    self.report.reject(file, position, raw.reason)
                    if raw.fatal:
                        return
                    continue
                try:
                    record = parse_record(
                        raw,
                        platform=platform,
                        split=split,
                        limits=self.limits,
                        guessed_platform=guessed,
                    )
                except RecordError as exc:
                    self.report.reject(file, position, str(exc))
                    continue
                except (TypeError, ValueError, AttributeError, RecursionError) as exc:
                    # A shape no check above foresaw: one rejected record, never a traceback.
                    log.warning("import: unexpected record shape at %s:%s", file, position)
                    self.report.reject(
                        file, position, f"record has an unexpected shape ({type(exc).__name__})"
                    )
                    continue
                yield _Pending(file=file, position=position, record=record, images_dir=images_dir)
        except UnsupportedFile as exc:
            self.report.reject(file, None, str(exc))
        except OSError as exc:
            self.report.reject(file, None, f"cannot read file: {exc.strerror or exc}")

    def run(
        self, paths: Sequence[Path], *, platform: str | None, split: str | None, batch: int
    ) -> None:
        self._maybe_analyze()
        for path in paths:
            chunk: list[_Pending] = []
            previous = None  # (chunk, reads) whose files are being read while we parse on
            for item in self._pending(path, platform=platform, split=split):
                chunk.append(item)
                if len(chunk) >= batch:
                    reads = self._start_reads(chunk)
                    if previous:
                        self._flush(*previous)
                    previous, chunk = (chunk, reads), []
            if previous:
                self._flush(*previous)
            self._flush(chunk, self._start_reads(chunk))


def records_import(
    *,
    paths: Iterable[Path | str],
    project: Project,
    pairs: PairSink | None,
    images_dir: Path | str | None = None,
    platform: str | None = None,
    split: str | None = None,
    strict: bool = False,
    batch_size: int | None = None,
    confine_images: bool = False,
    on_chunk: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import alt-text records from files. See the module docstring for the guarantees.

    pairs: where records with a preference go (None: only their alt-texts are stored).
    confine_images: refuse absolute image paths (files sent from the browser may only name
    images inside `images_dir`). on_chunk: called with the report so far after each chunk.
    """
    conf = settings.ALTPREF
    importer = _Importer(
        project=project,
        images_dir=Path(images_dir) if images_dir else None,
        strict=strict,
        limits=Limits(conf["MAX_CONTEXT_CHARS"], conf["MAX_ALT_TEXT_CHARS"]),
        pairs=pairs,
        confine_images=confine_images,
        on_chunk=on_chunk,
    )
    batch = batch_size or conf["IMPORT_BATCH_SIZE"]
    paths = [Path(p) for p in paths]
    with importer.pool:
        return _run(importer, paths, platform=platform, split=split, batch=batch, strict=strict)


def _run(importer: _Importer, paths, *, platform, split, batch: int, strict: bool) -> ImportReport:
    if not strict:
        importer.run(paths, platform=platform, split=split, batch=batch)
        return importer.report
    try:
        with transaction.atomic():
            importer.run(paths, platform=platform, split=split, batch=batch)
            if importer.report.rejected:
                raise _StrictRollback
    except (_StrictRollback, DatabaseError) as exc:
        if isinstance(exc, DatabaseError):
            importer.report.reject(
                "", None, f"the database refused the import ({type(exc).__name__})"
            )
        for written in importer.written_files:
            Path(written).unlink(missing_ok=True)
        importer.report.imported = importer.report.duplicates = 0
        importer.report.rolled_back = True
    return importer.report
