from django.contrib import admin

from .models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Upload imports are records of what happened: shown, never edited."""

    list_display = ["id", "project", "status", "created_by", "created_at", "finished_at"]
    list_filter = ["status", "project"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
