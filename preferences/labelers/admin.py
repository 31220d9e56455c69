from django.contrib import admin

from .models import LabelRun, LLMCacheEntry, LLMCall, LLMCorrection, LLMVerdict


@admin.register(LabelRun)
class LabelRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "task", "status", "done", "failed", "total", "spent_usd"]
    list_filter = ["task", "status"]


@admin.register(LLMCall)
class LLMCallAdmin(admin.ModelAdmin):
    list_display = ["id", "model_id", "task", "status", "http_status", "latency_ms", "cost_usd"]
    list_filter = ["status", "task"]
    raw_id_fields = ["run", "alt_text", "pair"]


@admin.register(LLMCacheEntry)
class LLMCacheEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "provider", "model_id", "prompt_version", "hits", "created_at"]
    list_filter = ["provider"]
    raw_id_fields = ["call"]


admin.site.register([LLMCorrection, LLMVerdict])
