"""Django app for the LLM labelers: Gemini calls, their provenance and cache, labelling runs."""

from django.apps import AppConfig


class LabelersConfig(AppConfig):
    name = "preferences.labelers"
    label = "labelers"
    verbose_name = "LLM labelers"
    default_auto_field = "django.db.models.BigAutoField"
