"""Snapshots: immutable, checksummed TAlt/PAlt/test exports with their filters and figures.

A snapshot row is written while its export runs (status, progress) and frozen when the export
completes: from then on neither the row nor its files may change. There is no database trigger;
the model's save()/delete() and the queryset's update()/delete() refuse to touch completed rows,
and every write goes through snapshots.services, which only updates rows that are not done.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.models import Project
from core.db import in_choices
from core.errors import ApplicationError


class SnapshotKind(models.TextChoices):
    TALT = "talt", "TAlt (annotated alt-text, SFT)"
    PALT = "palt", "PAlt (preference pairs)"
    TEST = "test", "Test split"


class SnapshotStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Exporting"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class SnapshotImmutable(ApplicationError):
    status_code = 409


IMMUTABLE_MESSAGE = "A completed snapshot cannot be changed or deleted; create a new one."


class SnapshotQuerySet(models.QuerySet):
    def update(self, **kwargs):
        if self.filter(status=SnapshotStatus.DONE).exists():
            raise SnapshotImmutable(IMMUTABLE_MESSAGE)
        return super().update(**kwargs)

    def delete(self):
        if self.filter(status=SnapshotStatus.DONE).exists():
            raise SnapshotImmutable(IMMUTABLE_MESSAGE)
        return super().delete()


class Snapshot(models.Model):
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="snapshots"
    )
    kind = models.CharField(max_length=8, choices=SnapshotKind.choices)
    formats = models.JSONField(default=list)
    filters = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=SnapshotStatus.choices, default=SnapshotStatus.PENDING
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    message = models.TextField(blank=True, help_text="Why the export failed, if it did.")
    counts = models.JSONField(default=dict, blank=True)
    agreement = models.JSONField(default=dict, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    # sha256 of manifest.json, which itself lists the sha256 of every data file.
    checksum = models.CharField(max_length=64, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # The export's claim (core.jobs): while pending, when its message was sent (NULL: not sent,
    # the sweep sends it); while running, its worker's last heartbeat. attempts counts takeovers
    # from workers that stopped mid-export.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=in_choices("kind", SnapshotKind), name="snapshot_kind_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("status", SnapshotStatus), name="snapshot_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="snapshot_progress_lte_100"
            ),
            models.CheckConstraint(
                condition=~Q(status=SnapshotStatus.DONE) | ~Q(checksum=""),
                name="snapshot_done_has_checksum",
            ),
        ]

    def __str__(self) -> str:
        return f"snapshot {self.pk} ({self.kind}, {self.status})"

    def save(self, *args, **kwargs):
        if self._stored_done():
            raise SnapshotImmutable(IMMUTABLE_MESSAGE)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self._stored_done():
            raise SnapshotImmutable(IMMUTABLE_MESSAGE)
        return super().delete(*args, **kwargs)

    @property
    def folder(self) -> str:
        """The snapshot's folder, relative to MEDIA_ROOT."""
        return f"snapshots/{self.pk}"

    @property
    def waiting_for_queue(self) -> bool:
        """Pending, and its message could not be sent (broker down): the sweep sends it later."""
        return self.status == SnapshotStatus.PENDING and self.heartbeat_at is None

    @property
    def can_cancel(self) -> bool:
        return self.status in (SnapshotStatus.PENDING, SnapshotStatus.RUNNING)

    @property
    def can_retry(self) -> bool:
        return self.status in (SnapshotStatus.FAILED, SnapshotStatus.CANCELLED)

    @property
    def is_done(self) -> bool:
        return self.status == SnapshotStatus.DONE

    def _stored_done(self) -> bool:
        return (
            self.pk is not None
            and type(self)._base_manager.filter(pk=self.pk, status=SnapshotStatus.DONE).exists()
        )
