"""Writes for running a project from the browser: the project and its facets, members and
roles, and upload imports (files stored under MEDIA_ROOT, imported by a Celery task)."""

from __future__ import annotations

import logging
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotate.models import Membership, Platform, Project, Role, Split
from annotate.services import membership_set
from core.errors import ApplicationError, PermissionDenied
from preferences.imports import altdata_import
from preferences.models import Facet, FacetRole
from preferences.projects import project_create

from .models import ImportJob, ImportStatus

log = logging.getLogger(__name__)
User = get_user_model()

DATA_SUFFIXES = (".json", ".jsonl", ".csv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024  # one upload, all files together
MAX_UPLOAD_FILES = 20_000
_FACET_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


# --- Projects ------------------------------------------------------------------------


def _platforms(values: list[str]) -> list[str]:
    bad = [v for v in values if v not in Platform.values]
    if bad:
        raise ApplicationError(f"Unknown platform: {', '.join(bad)}.")
    return [p for p in Platform.values if p in values]


def _overlap(value) -> int:
    try:
        overlap = int(value)
    except (TypeError, ValueError):
        raise ApplicationError("Overlap must be a whole number.") from None
    if not 1 <= overlap <= 50:
        raise ApplicationError("Overlap must be between 1 and 50 raters per pair.")
    return overlap


@transaction.atomic
def console_project_create(
    *, user, name: str, guidelines: str, platforms: list[str], overlap
) -> Project:
    """A new project with the default facets; its creator becomes its admin."""
    project = project_create(
        name=name,
        guidelines=guidelines,
        platforms=_platforms(platforms),
        overlap=_overlap(overlap),
    )
    membership_set(project=project, user=user, role=Role.ADMIN)
    return project


@transaction.atomic
def console_project_update(
    *, project: Project, name: str, guidelines: str, platforms: list[str], overlap
) -> Project:
    name = name.strip()
    if not name:
        raise ApplicationError("A project needs a name.")
    if Project.objects.filter(name=name).exclude(pk=project.pk).exists():
        raise ApplicationError(f'A project named "{name}" already exists.')
    project.name = name
    project.guidelines = guidelines
    project.platforms = _platforms(platforms)
    project.overlap = _overlap(overlap)
    project.save(update_fields=["name", "guidelines", "platforms", "overlap"])
    return project


def _role(value: str | None) -> str:
    role = (value or FacetRole.OTHER).strip()
    if role not in FacetRole.values:
        raise ApplicationError(f'Unknown facet role "{role}".')
    return role


@transaction.atomic
def facets_update(*, project: Project, rows: list[dict]) -> None:
    """rows: [{"id", "label", "question", "is_active", "required", "role"}] for the project's
    facets ("required" and "role" optional: unchanged when absent)."""
    facets = {f.pk: f for f in Facet.objects.filter(project=project)}
    roles = {pk: f.role for pk, f in facets.items()}
    for row in rows:
        facet = facets.get(row["id"])
        if facet is None:
            raise ApplicationError("That facet is not in this project.")
        label, question = row["label"].strip(), row["question"].strip()
        if not label or not question:
            raise ApplicationError(f'Facet "{facet.key}" needs a label and a question.')
        facet.label, facet.question, facet.is_active = label[:80], question[:300], row["is_active"]
        facet.required = row.get("required", facet.required)
        roles[facet.pk] = _role(row.get("role", facet.role))
        facet.save(update_fields=["label", "question", "is_active", "required"])
    _roles_set(facets=facets, roles=roles)
    active = Facet.objects.filter(project=project, is_active=True)
    if not active.exists():
        raise ApplicationError("Keep at least one facet active.")
    if not active.filter(required=True).exists():
        # With nothing required a rater could submit an empty answer sheet.
        raise ApplicationError("Keep at least one active facet required.")


def _roles_set(*, facets: dict[int, Facet], roles: dict[int, str]) -> None:
    """One facet per role but "other" (exports, rounds and gold items ask for it by role).
    A role may move from one facet to another in one save: the moved ones are cleared first, so
    the unique constraint never sees two holders."""
    holders: dict[str, str] = {}
    for pk, role in roles.items():
        if role != FacetRole.OTHER and role in holders:
            raise ApplicationError(
                f'Facets "{holders[role]}" and "{facets[pk].key}" both have the role '
                f'"{FacetRole(role).label}"; give it to one facet only.'
            )
        holders[role] = facets[pk].key
    moved = [pk for pk, role in roles.items() if facets[pk].role != role]
    Facet.objects.filter(pk__in=moved).update(role=FacetRole.OTHER)
    for pk in moved:
        facets[pk].role = roles[pk]
        facets[pk].save(update_fields=["role"])


def facet_add(
    *, project: Project, key: str, label: str, question: str, role: str = FacetRole.OTHER
) -> Facet:
    key, label, question, role = key.strip().lower(), label.strip(), question.strip(), _role(role)
    if not _FACET_KEY.match(key):
        raise ApplicationError(
            "A facet key is 1–32 lower-case letters, digits, - or _, starting with a letter."
        )
    if not label or not question:
        raise ApplicationError("A new facet needs a label and a question.")
    if Facet.objects.filter(project=project, key=key).exists():
        raise ApplicationError(f'The project already has a facet "{key}".')
    holder = Facet.objects.filter(project=project, role=role).exclude(role=FacetRole.OTHER).first()
    if holder is not None:
        raise ApplicationError(
            f'Facet "{holder.key}" already has the role "{FacetRole(role).label}"; '
            "give it to one facet only."
        )
    last = Facet.objects.filter(project=project).order_by("-position").first()
    return Facet.objects.create(
        project=project,
        key=key,
        label=label[:80],
        question=question[:300],
        role=role,
        position=(last.position + 1) if last else 0,
    )


# --- Members -------------------------------------------------------------------------


def _admins_left(project: Project, *, without: Membership) -> int:
    return (
        Membership.objects.filter(project=project, role=Role.ADMIN).exclude(pk=without.pk).count()
    )


@transaction.atomic
def member_add(*, project: Project, username: str, role: str) -> Membership:
    user = User.objects.filter(username=username.strip()).first()
    if user is None:
        raise ApplicationError(f'No user is called "{username.strip()}".')
    if role not in Role.values:
        raise ApplicationError(f'Unknown role "{role}".')
    current = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if current and current.role == Role.ADMIN and role != Role.ADMIN:
        _keep_an_admin(project, current)
    return membership_set(project=project, user=user, role=role)


def _keep_an_admin(project: Project, membership: Membership) -> None:
    if not _admins_left(project, without=membership):
        raise PermissionDenied("A project keeps at least one admin: make someone else admin first.")


@transaction.atomic
def member_remove(*, project: Project, membership_id: int) -> None:
    membership = (
        Membership.objects.select_for_update().filter(project=project, pk=membership_id).first()
    )
    if membership is None:
        raise ApplicationError("That person is not a member of this project.")
    if membership.role == Role.ADMIN:
        _keep_an_admin(project, membership)
    membership.delete()


# --- Upload imports ------------------------------------------------------------------


def _safe_name(name: str) -> str:
    # Django already keeps only the base name of an upload; refuse what is still odd.
    base = Path(name).name
    if not base or base.startswith(".") or "\x00" in base or base != name.split("/")[-1]:
        raise ApplicationError(f"Refused a file with an unusable name: {name!r}.")
    return base


def _save(upload, folder: Path) -> str:
    name = _safe_name(upload.name)
    target = folder / name
    if target.exists():
        raise ApplicationError(f"Two uploaded files are both called {name}.")
    with target.open("wb") as out:
        for block in upload.chunks():
            out.write(block)
    return name


def _unzip_images(upload, folder: Path) -> int:
    """Extract the images of an uploaded .zip into `folder`, keeping their relative paths (so
    records that name "sub/x.jpg" find them). Refuses paths that would escape the folder and
    archives that unpack to more than the upload limit; skips what is not an image."""
    try:
        archive = zipfile.ZipFile(upload)
    except zipfile.BadZipFile:
        raise ApplicationError(f"{upload.name} is not a readable .zip archive.") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > MAX_UPLOAD_BYTES:
            raise ApplicationError(
                f"{upload.name} unpacks to more than {MAX_UPLOAD_BYTES // 2**20:,} MiB."
            )
        count = 0
        for member in members:
            rel = PurePosixPath(member.filename.replace("\\", "/"))
            if rel.is_absolute() or ".." in rel.parts or member.filename.startswith("/"):
                raise ApplicationError(f"{upload.name}: refused the path {member.filename!r}.")
            if not rel.name.lower().endswith(IMAGE_SUFFIXES) or rel.name.startswith("."):
                continue
            target = folder.joinpath(*rel.parts)
            if target.exists():
                raise ApplicationError(f"Two uploaded images are both called {rel}.")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, target.open("wb") as out:
                # The declared size can lie; stop at the limit whatever the header says.
                written = 0
                while block := src.read(1 << 20):
                    written += len(block)
                    if written > MAX_UPLOAD_BYTES:
                        raise ApplicationError(f"{upload.name} unpacks to too much data.")
                    out.write(block)
            count += 1
    return count


def import_job_create(
    *,
    project: Project,
    user,
    data_files: list,
    images: list,
    platform: str,
    split: str,
    strict: bool,
) -> ImportJob:
    """Store the upload under MEDIA_ROOT/uploads/<job id>/ and queue its import (after commit)."""
    if not data_files:
        raise ApplicationError("Choose at least one data file (.json, .jsonl or .csv).")
    wrong = [f.name for f in data_files if not f.name.lower().endswith(DATA_SUFFIXES)]
    if wrong:
        raise ApplicationError(f"Data files must be .json, .jsonl or .csv: {', '.join(wrong[:5])}.")
    odd = [f.name for f in images if not f.name.lower().endswith((*IMAGE_SUFFIXES, ".zip"))]
    if odd:
        raise ApplicationError(
            f"Images must be JPEG, PNG, GIF, WebP or BMP files, or .zip archives of them: "
            f"{', '.join(odd[:5])}."
        )
    if len(data_files) + len(images) > MAX_UPLOAD_FILES:
        raise ApplicationError(f"At most {MAX_UPLOAD_FILES:,} files per upload.")
    if sum(f.size for f in [*data_files, *images]) > MAX_UPLOAD_BYTES:
        raise ApplicationError(f"One upload is limited to {MAX_UPLOAD_BYTES // 2**20:,} MiB.")
    if platform and platform not in Platform.values:
        raise ApplicationError(f'Unknown platform "{platform}".')
    if split and split not in Split.values:
        raise ApplicationError(f'Unknown split "{split}".')
    job = ImportJob.objects.create(
        project=project, created_by=user, platform=platform, split=split, strict=strict
    )
    job.folder = f"uploads/{job.pk}"
    root = Path(settings.MEDIA_ROOT) / job.folder
    try:
        (root / "data").mkdir(parents=True)
        (root / "images").mkdir()
        job.data_files = [_save(f, root / "data") for f in data_files]
        image_count = 0
        for f in images:
            if f.name.lower().endswith(".zip"):
                image_count += _unzip_images(f, root / "images")
            else:
                _save(f, root / "images")
                image_count += 1
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        job.delete()
        raise
    job.image_count = image_count
    job.save(update_fields=["folder", "data_files", "image_count"])

    from .tasks import import_job_run_task

    transaction.on_commit(lambda: import_job_run_task.delay(job.pk))
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run one upload's import. Idempotent: a finished job is left alone; a redelivered one
    runs again, and the importer adds nothing that is already stored."""
    job = ImportJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return job
    live = ImportJob.objects.filter(pk=job_id)
    live.update(status=ImportStatus.RUNNING, files_done=0, records_done=0)
    root = Path(settings.MEDIA_ROOT) / job.folder
    paths = [root / "data" / name for name in job.data_files]
    totals = {"imported": 0, "duplicates": 0, "rejected": 0, "errors": []}

    def merge(report: dict) -> None:
        for key in ("imported", "duplicates", "rejected"):
            totals[key] += report[key]
        totals["errors"].extend(report["errors"])

    def on_chunk(report) -> None:
        done = totals["imported"] + totals["duplicates"] + totals["rejected"]
        live.update(records_done=done + report.imported + report.duplicates + report.rejected)

    try:
        # Strict imports are one transaction over all files; the others go file by file so
        # the page can show how many files are done.
        batches = [paths] if job.strict else [[p] for p in paths]
        for i, batch in enumerate(batches, start=1):
            report = altdata_import(
                paths=batch,
                project=job.project,
                images_dir=root / "images",
                platform=job.platform or None,
                split=job.split or None,
                strict=job.strict,
                confine_images=True,
                on_chunk=None if job.strict else on_chunk,
            )
            merge(report.as_dict())
            totals["rolled_back"] = report.rolled_back
            done = totals["imported"] + totals["duplicates"] + totals["rejected"]
            live.update(files_done=len(paths) if job.strict else i, records_done=done)
    except Exception as exc:  # recorded for the page; an eager run must not become a 500
        log.exception("upload import %s failed", job_id)
        live.update(
            status=ImportStatus.FAILED,
            report=totals,
            message=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        return ImportJob.objects.get(pk=job_id)
    live.update(status=ImportStatus.DONE, report=totals, finished_at=timezone.now())
    return ImportJob.objects.get(pk=job_id)
