"""An upload import: files an admin sent from the browser, imported by a Celery task.

The row is what the page polls: status, how far the importer got, and at the end the same
report `import_altdata --json` prints (imported, duplicates, rejected, per-record errors).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.models import Project
from core.db import in_choices


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Importing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=8, choices=ImportStatus.choices, default="pending")
    # Relative to MEDIA_ROOT: uploads/<id>/data/<files> and uploads/<id>/images/<files>.
    folder = models.CharField(max_length=255, blank=True)
    data_files = models.JSONField(default=list)
    image_count = models.PositiveIntegerField(default=0)
    platform = models.CharField(max_length=16, blank=True)
    split = models.CharField(max_length=8, blank=True)
    strict = models.BooleanField(default=False)
    files_done = models.PositiveIntegerField(default=0)
    records_done = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=in_choices("status", ImportStatus), name="importjob_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(files_done__gte=0), name="importjob_files_done_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        return f"import {self.pk} into {self.project} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (ImportStatus.PENDING, ImportStatus.RUNNING)

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        total = len(self.data_files) or 1
        return min(99, int(100 * self.files_done / total))
