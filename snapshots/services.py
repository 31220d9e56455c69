"""Writes for snapshots: validate a request, export TAlt/PAlt/test folders, run and freeze rows.

`snapshot_export` writes one folder (data files + manifest.json) from a selection; it is what
the Celery task, the management command and the benchmark all call. `snapshot_create` records a
Snapshot row and enqueues `snapshots.tasks.snapshot_run_task` after commit; `snapshot_run` (the
task body) exports into MEDIA_ROOT/snapshots/<id>/ and then freezes the row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotate.models import Platform, Project, Role, Split
from annotate.selectors import project_get_for_user
from core import jobs
from core.errors import ApplicationError, NotFound
from core.prompts import question_for_context
from preferences.consensus.services import consensus_refresh
from preferences.models import Facet

from . import selectors
from .jobs import SNAPSHOT_JOB
from .models import Snapshot, SnapshotKind, SnapshotStatus
from .selectors import SnapshotFilters
from .writers import EXPORT_FORMATS, ExportItem, export_formats_open, missing_image_message

log = logging.getLogger(__name__)

# The registered export formats, in the order their files are listed and written.
FORMATS = tuple(EXPORT_FORMATS)
IMAGE_PATH_MODES = ("absolute", "relative")
DEFAULT_SPLITS = {
    SnapshotKind.PALT: [Split.TRAIN],
    SnapshotKind.TALT: [Split.TRAIN],
    SnapshotKind.TEST: [Split.TEST],
}
MANIFEST = "manifest.json"
# What decides a pair, as preferences.consensus computes it (the labels the dashboard shows).
CONSENSUS_METHOD = (
    "blended consensus per facet: the latest reviewer adjudication wins; otherwise the "
    "project's policy, a weighted vote (adjudication, human and LLM weights; raters scaled by "
    "gold accuracy; position-flipped LLM verdicts at half weight) or Dawid-Skene; confidence "
    "is the posterior probability of the label (1 for an adjudication); items only the LLM "
    "judged on request"
)
ProgressFn = Callable[[int, int], None]


@cache
def code_version() -> str:
    """`git describe` of the checkout when there is one, else the installed package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--tags", "--always", "--dirty"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            return "git:" + out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return "altpref " + version("altpref")
    except PackageNotFoundError:
        return "altpref (unknown version)"


# --- input validation (shared by the command, the API and the pages) --------------------------


def snapshot_filters_build(
    *,
    kind: str,
    project: Project | None = None,
    platforms: list[str] | None = None,
    splits: list[str] | None = None,
    min_confidence: float = 0.0,
    facets: list[str] | None = None,
    include_llm_only: bool = False,
    include_imported: bool = True,
    include_corrections: bool = True,
    image_paths: str = "absolute",
) -> SnapshotFilters:
    """Check a selection and return it as filters; every bad value gets its own message."""
    if kind not in SnapshotKind.values:
        raise ApplicationError(f'Unknown snapshot kind "{kind}"; use one of talt, palt, test.')
    for value in platforms or []:
        if value not in Platform.values:
            raise ApplicationError(
                f'Unknown platform "{value}"; use one of {", ".join(Platform.values)}.'
            )
    for value in splits or []:
        if value not in Split.values:
            raise ApplicationError(
                f'Unknown split "{value}"; use one of {", ".join(Split.values)}.'
            )
    try:
        min_confidence = float(min_confidence)
    except (TypeError, ValueError):
        raise ApplicationError("min_confidence must be a number between 0 and 1.") from None
    if not (0.0 <= min_confidence <= 1.0):
        raise ApplicationError("min_confidence must be a number between 0 and 1.")
    if image_paths not in IMAGE_PATH_MODES:
        raise ApplicationError('image_paths must be "absolute" or "relative".')
    facets = list(dict.fromkeys(facets or [])) or selectors.overall_facet_keys(
        project_id=project.pk if project else None
    )
    if not facets:
        raise ApplicationError(
            "No facet has the overall role to decide pairs by; name the facets to export by, "
            "or give one facet that role in the project's settings."
        )
    known = Facet.objects.filter(key__in=facets)
    if project is not None:
        known = known.filter(project=project)
    missing = sorted(set(facets) - set(known.values_list("key", flat=True)))
    if missing:
        raise ApplicationError(
            f"Unknown facet(s): {', '.join(missing)}.", extra={"facets": missing}
        )
    return SnapshotFilters(
        project_id=project.pk if project else None,
        platforms=sorted(set(platforms or [])),
        splits=sorted(set(splits or DEFAULT_SPLITS[SnapshotKind(kind)])),
        min_confidence=min_confidence,
        facets=facets,
        include_llm_only=bool(include_llm_only),
        include_imported=bool(include_imported),
        include_corrections=bool(include_corrections),
        image_paths=image_paths,
    )


def snapshot_formats_parse(value: str | list[str] | None) -> list[str]:
    known = list(EXPORT_FORMATS)  # the live registry: a format registered later is known too
    values = [value] if isinstance(value, str) else list(value or ["mcmdpo"])
    if "all" in values:
        return known
    bad = [v for v in values if v not in known]
    if bad or not values:
        raise ApplicationError(
            f'Unknown format "{bad[0] if bad else ""}"; use {", ".join(known)} or all.'
        )
    return [f for f in known if f in values]


# --- the export ------------------------------------------------------------------------------


class _Images:
    """Where records point for their image, and (relative mode) the copies in the folder."""

    def __init__(self, out_dir: Path, mode: str):
        self.media_root = os.path.abspath(settings.MEDIA_ROOT)
        self.out_dir = out_dir
        self.relative = mode == "relative"
        self.copied: dict[str, str] = {}  # sha -> relative name
        if self.relative:
            (out_dir / "images").mkdir(exist_ok=True)

    def source(self, file: str) -> str:
        return os.path.join(self.media_root, file)

    def path_for(self, file: str, sha: str) -> str:
        if not self.relative:
            path = self.source(file)
            # The reference loader opens every path; a dataset naming a missing file would only
            # fail hours later, on the GPU box.
            if not os.path.isfile(path):
                raise ApplicationError(missing_image_message(path))
            return path
        name = self.copied.get(sha)
        if name is None:
            name = f"images/{sha}{Path(file).suffix}"
            target = self.out_dir / name
            if not target.exists():
                if not os.path.isfile(self.source(file)):
                    raise ApplicationError(missing_image_message(self.source(file)))
                try:
                    os.link(self.source(file), target)  # same filesystem: no copy needed
                except OSError:
                    shutil.copyfile(self.source(file), target)
            self.copied[sha] = name
        return name

    def manifest_entries(self) -> dict:
        # Images are stored under their content's sha256, so the name is the checksum.
        return {
            name: {"sha256": sha, "records": None}
            for sha, name in sorted(self.copied.items(), key=lambda kv: kv[1])
        }


def _facet_keys(filters: SnapshotFilters) -> list[str]:
    qs = Facet.objects.all()
    if filters.project_id is not None:
        qs = qs.filter(project_id=filters.project_id)
    return sorted(set(qs.values_list("key", flat=True)))


def _export_rows(*, kind, filters, formats, out_dir, images, progress, total) -> tuple[dict, dict]:
    """Walk the selected rows once and hand each to every chosen format (writers.EXPORT_FORMATS).

    PAlt walks pairs; TAlt (best alt-text per post) and the test split walk posts.
    """
    skipped: Counter = Counter()
    if kind == SnapshotKind.PALT:
        rows = selectors.palt_rows(filters=filters, skipped=skipped)
        by_fields, every = ("source", "platform", "decided_by"), 2000
    else:
        is_test = kind == SnapshotKind.TEST
        rows = selectors.talt_rows(filters=filters, use_reference=is_test, skipped=skipped)
        by_fields, every = ("tier", "platform"), 5000
    opened = export_formats_open(
        names=formats, kind=kind, out_dir=out_dir, facet_keys=_facet_keys(filters)
    )
    by: Counter = Counter()
    seen = 0
    for idx, row in enumerate(rows):
        item = ExportItem(
            idx=idx,
            row=row,
            question=question_for_context(row.context, platform=row.platform),
            image_path=images.path_for(row.image_file, row.image_sha256),
            image_file=images.source(row.image_file),
        )
        for field in by_fields:
            by[f"{field}:{getattr(row, field)}"] += 1
        for fmt in opened:
            fmt.add(item)
        seen = idx + 1
        if progress and seen % every == 0:
            progress(seen + sum(skipped.values()), total)
    files = {name: info for fmt in opened for name, info in fmt.close().items()}
    counts = {"records": seen, "skipped": dict(sorted(skipped.items())), **dict(sorted(by.items()))}
    return files, counts


def snapshot_export(
    *,
    kind: str,
    filters: SnapshotFilters,
    formats: list[str],
    out_dir: Path | str,
    progress: ProgressFn | None = None,
) -> dict:
    """Write a snapshot folder (data files, images when relative, manifest.json); return the
    manifest. Same selection and data → byte-identical folder: rows in id order, no timestamps."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise ApplicationError(f"The output folder {out_dir} is not empty.")
    images = _Images(out_dir, filters.image_paths)
    # The labels are the blended consensus: bring it up to date with the answers first.
    consensus_refresh(project_id=filters.project_id)
    count = selectors.palt_count if kind == SnapshotKind.PALT else selectors.talt_count
    total = count(filters=filters)
    files, counts = _export_rows(
        kind=kind,
        filters=filters,
        formats=formats,
        out_dir=out_dir,
        images=images,
        progress=progress,
        total=total,
    )
    agreement = selectors.agreement_by_facet(
        pair_ids_qs=selectors.pairs_for_filters(filters=filters).values("id")
    )
    files.update(images.manifest_entries())
    manifest = {
        "altpref_snapshot": 1,
        "kind": kind,
        "formats": formats,
        "filters": filters.as_dict(),
        "counts": counts,
        "agreement": agreement,
        "consensus_method": CONSENSUS_METHOD,
        "code_version": code_version(),
        "files": dict(sorted(files.items())),
    }
    (out_dir / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    if progress:
        progress(total, total)
    return manifest


def _sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
    return sha.hexdigest()


def snapshot_verify(*, folder: Path | str) -> list[str]:
    """Names of files whose sha256 no longer matches the manifest (or that are missing/extra)."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    bad = []
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file() or _sha256_file(path) != entry["sha256"]:
            bad.append(name)
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    bad += sorted(present - set(manifest["files"]) - {MANIFEST})
    return bad


# --- snapshot rows ---------------------------------------------------------------------------


def snapshot_create(
    *, user, project: Project, kind: str, filters: SnapshotFilters, formats: list[str]
) -> Snapshot:
    """Record a snapshot request (admins only) and send it to a worker after commit, through
    the job outbox: with the broker down the row stays pending (snapshot.queue_down) and the
    sweep sends it when the queue is back."""
    project_get_for_user(user=user, project_id=project.pk, min_role=Role.ADMIN)
    if filters.project_id != project.pk:
        raise ApplicationError("The filters belong to another project.")
    with transaction.atomic():
        snapshot = Snapshot.objects.create(
            project=project,
            kind=kind,
            formats=formats,
            filters=filters.as_dict(),
            created_by=user,
        )
        jobs.enqueue_on_commit(SNAPSHOT_JOB, snapshot)
    queue_down = snapshot.queue_down
    snapshot.refresh_from_db()
    snapshot.queue_down = queue_down
    return snapshot


def snapshot_cancel(*, user, snapshot_id: int) -> Snapshot:
    """Cancel a pending or running export (admins); the worker stops at its next record and
    removes the unfinished folder."""
    snapshot = _admin_snapshot(user, snapshot_id)
    if snapshot.status not in (SnapshotStatus.PENDING, SnapshotStatus.RUNNING):
        raise ApplicationError(
            f"Snapshot {snapshot.pk} is already {snapshot.get_status_display().lower()}.",
            status_code=409,
        )
    Snapshot.objects.filter(
        pk=snapshot.pk, status__in=[SnapshotStatus.PENDING, SnapshotStatus.RUNNING]
    ).update(status=SnapshotStatus.CANCELLED, message="Cancelled by an admin.", heartbeat_at=None)
    if snapshot.status == SnapshotStatus.PENDING:
        _clean(snapshot)  # no worker will: nothing was claimed
    snapshot.refresh_from_db()
    return snapshot


def snapshot_retry(*, user, snapshot_id: int) -> Snapshot:
    """Run a failed or cancelled export again from scratch (admins), through the outbox."""
    snapshot = _admin_snapshot(user, snapshot_id)
    if snapshot.status not in (SnapshotStatus.FAILED, SnapshotStatus.CANCELLED):
        raise ApplicationError(
            f"Only a failed or cancelled snapshot can be retried; snapshot {snapshot.pk} is "
            f"{snapshot.get_status_display().lower()}.",
            status_code=409,
        )
    with transaction.atomic():
        Snapshot.objects.filter(
            pk=snapshot.pk, status__in=[SnapshotStatus.FAILED, SnapshotStatus.CANCELLED]
        ).update(
            status=SnapshotStatus.PENDING, progress=0, message="", attempts=0, heartbeat_at=None
        )
        jobs.enqueue_on_commit(SNAPSHOT_JOB, snapshot)
    queue_down = snapshot.queue_down
    snapshot.refresh_from_db()
    snapshot.queue_down = queue_down
    return snapshot


def _admin_snapshot(user, snapshot_id: int) -> Snapshot:
    snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.project_id is None:
        raise NotFound(f"No snapshot {snapshot_id}.")
    project_get_for_user(user=user, project_id=snapshot.project_id, min_role=Role.ADMIN)
    return snapshot


def _folder(snapshot: Snapshot) -> Path:
    return Path(settings.MEDIA_ROOT) / snapshot.folder


def _clean(snapshot: Snapshot) -> None:
    """Remove an unfinished export's folders (a dead worker's `.partial` included)."""
    final = _folder(snapshot)
    for leftover in (final.with_name(final.name + ".partial"), final):
        shutil.rmtree(leftover, ignore_errors=True)


class _Stopped(Exception):
    """The row is no longer this worker's: cancelled, or taken over after a stall."""


def snapshot_run(*, snapshot_id: int, task_id: str = "") -> Snapshot | None:
    """Export a recorded snapshot and freeze it. Idempotent: a finished snapshot is left alone,
    a duplicate message for one a live worker exports is dropped (core.jobs.JobBusy), and one
    taken over from a dead worker starts again in a clean folder."""
    try:
        snapshot = jobs.claim(SNAPSHOT_JOB, snapshot_id, task_id=task_id)
    except jobs.JobBusy:
        log.info("snapshot %s is being exported by a live worker; duplicate dropped", snapshot_id)
        return Snapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None:
        stuck = Snapshot.objects.filter(pk=snapshot_id, status=SnapshotStatus.RUNNING).first()
        if stuck is not None:  # takeovers exhausted: the export kills its worker
            _clean(stuck)
            Snapshot.objects.filter(pk=snapshot_id, status=SnapshotStatus.RUNNING).update(
                status=SnapshotStatus.FAILED,
                message=(
                    f"The worker exporting this snapshot stopped {stuck.attempts} times without "
                    "finishing; giving up. Retry it, or narrow the filters if it runs out of "
                    "memory or disk."
                ),
            )
        return Snapshot.objects.filter(pk=snapshot_id).first()
    owned = Snapshot.objects.filter(
        pk=snapshot_id, status=SnapshotStatus.RUNNING, task_id=snapshot.task_id
    )
    owned.update(progress=0, message="")
    _clean(snapshot)  # a dead worker's half-written folder, when this is a takeover
    final = _folder(snapshot)
    partial = final.with_name(final.name + ".partial")
    f = snapshot.filters
    filters = SnapshotFilters(**{k: f[k] for k in SnapshotFilters.__dataclass_fields__ if k in f})

    def progress(done: int, total: int) -> None:
        if not owned.update(progress=min(99, int(100 * done / total)) if total else 99):
            raise _Stopped

    with jobs.Heartbeat(SNAPSHOT_JOB, snapshot_id, task_id=snapshot.task_id):
        try:
            manifest = snapshot_export(
                kind=snapshot.kind,
                filters=filters,
                formats=snapshot.formats,
                out_dir=partial,
                progress=progress,
            )
            if not owned.exists():
                raise _Stopped
            partial.rename(final)
        except _Stopped:
            if not Snapshot.objects.filter(pk=snapshot_id, status=SnapshotStatus.RUNNING).exists():
                _clean(snapshot)  # cancelled; a takeover's new worker cleans for itself
            log.info("snapshot %s stopped: cancelled or taken over", snapshot_id)
            return Snapshot.objects.get(pk=snapshot_id)
        except Exception as exc:
            shutil.rmtree(partial, ignore_errors=True)
            message = (
                exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
            )
            log.exception("snapshot %s failed", snapshot_id)
            # Recorded on the row for the page and the API; not re-raised, so an eager run
            # (make run) does not turn the admin's request into a server error.
            owned.update(status=SnapshotStatus.FAILED, message=message[:2000])
            return Snapshot.objects.get(pk=snapshot_id)
    checksum = _sha256_file(final / MANIFEST)
    for path in final.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # a nudge for people and tools; the manifest is the real guard
    owned.update(
        status=SnapshotStatus.DONE,
        progress=100,
        counts=manifest["counts"],
        agreement=manifest["agreement"],
        manifest=manifest,
        checksum=checksum,
        completed_at=timezone.now(),
        heartbeat_at=None,
    )
    return Snapshot.objects.get(pk=snapshot_id)


def snapshot_file_path(*, snapshot: Snapshot, name: str) -> Path:
    """The path of one file of a completed snapshot, refusing anything not in its manifest."""
    if not snapshot.is_done:
        raise ApplicationError("The snapshot is not finished yet.", status_code=409)
    if name not in snapshot.manifest.get("files", {}) and name != MANIFEST:
        raise ApplicationError(f'The snapshot has no file "{name}".', status_code=404)
    path = _folder(snapshot) / name
    if not path.is_file():
        raise ApplicationError(f'The file "{name}" is missing from storage.', status_code=410)
    return path
