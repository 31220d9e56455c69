from django.contrib import admin

from .models import Snapshot


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "status", "progress", "created_at", "checksum"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in Snapshot._meta.fields]

    def has_change_permission(self, request, obj=None):
        return False
