"""Django app for blending judgements: consensus, rater reliability, agreement, gold items."""

from django.apps import AppConfig


class ConsensusConfig(AppConfig):
    name = "preferences.consensus"
    label = "consensus"
    verbose_name = "Consensus and agreement"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the incremental consensus update to Judgement saves and deletes.
        from . import signals  # noqa: F401
