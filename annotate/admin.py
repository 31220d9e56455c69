from django.contrib import admin

from .models import AltText, Image, Membership, Post, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "overlap", "reservation_seconds", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["sha256", "mime", "width", "height", "size_bytes", "created_at"]
    search_fields = ["sha256"]
    readonly_fields = ["sha256", "file", "mime", "width", "height", "size_bytes"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "platform", "external_id", "split", "created_at"]
    list_filter = ["project", "platform", "split"]
    search_fields = ["external_id", "context"]
    raw_id_fields = ["image"]
    readonly_fields = ["content_key"]


@admin.register(AltText)
class AltTextAdmin(admin.ModelAdmin):
    """Stored alt-texts are facts that judgements, pairs and exported snapshots point at: the
    admin shows them, never edits them in place (a correction is a new alt-text)."""

    list_display = ["id", "post", "origin", "text", "text_sha256", "created_at"]
    list_filter = ["origin"]
    search_fields = ["text", "text_sha256"]
    fields = readonly_fields = [
        "post",
        "origin",
        "text",
        "text_sha256",
        "parent",
        "author",
        "source_round_id",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Still listed and viewable (view permission); the form has no editable field and no
        # save button.
        return False
