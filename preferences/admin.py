from django.contrib import admin

from .models import CandidatePair, Facet, Judgement, LLMLabeler


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
    list_display = ["id", "pair", "facet", "kind", "rater_user", "rater_llm", "choice", "created_at"]
    list_filter = ["kind", "choice"]
    raw_id_fields = ["pair", "rater_user"]
