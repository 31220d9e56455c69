from django.contrib import admin

from .models import (
    Assignment,
    CandidatePair,
    CorrectionReview,
    Facet,
    Judgement,
    LLMLabeler,
    QueuePolicy,
)


@admin.register(Facet)
class FacetAdmin(admin.ModelAdmin):
    list_display = ["project", "key", "label", "position", "is_active"]
    list_filter = ["project"]


@admin.register(CandidatePair)
class CandidatePairAdmin(admin.ModelAdmin):
    list_display = ["id", "post", "source", "known_preference", "created_at"]
    list_filter = ["source"]
    raw_id_fields = ["post", "alt_a", "alt_b"]


@admin.register(LLMLabeler)
class LLMLabelerAdmin(admin.ModelAdmin):
    list_display = ["provider", "model_id", "prompt_version", "created_at"]


@admin.register(Judgement)
class JudgementAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "pair",
        "facet",
        "kind",
        "rater_user",
        "rater_llm",
        "choice",
        "created_at",
    ]
    list_filter = ["kind", "choice"]
    raw_id_fields = ["pair", "rater_user"]


# --- The raters' queue (rating UI) -------------------------------------------------------


@admin.register(QueuePolicy)
class QueuePolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "skip_policy"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "pair", "rater", "status", "shown_order", "reserved_until"]
    list_filter = ["status", "project"]
    raw_id_fields = ["pair", "rater"]


@admin.register(CorrectionReview)
class CorrectionReviewAdmin(admin.ModelAdmin):
    list_display = ["id", "alt_text", "rater", "decision", "created_at"]
    list_filter = ["decision"]
    raw_id_fields = ["alt_text", "rater", "result"]
