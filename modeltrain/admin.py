"""Admin: training rounds and their outputs, read-mostly (rounds change through services)."""

from django.contrib import admin

from .models import RoundOutput, TrainingRound


@admin.register(TrainingRound)
class TrainingRoundAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "snapshot",
        "method",
        "status",
        "step",
        "total_steps",
        "attempts",
    )
    list_filter = ("status", "method")
    readonly_fields = [f.name for f in TrainingRound._meta.fields]


@admin.register(RoundOutput)
class RoundOutputAdmin(admin.ModelAdmin):
    list_display = ("id", "round", "post", "purpose", "model", "pair")
    list_filter = ("purpose", "model")
    readonly_fields = [f.name for f in RoundOutput._meta.fields]
