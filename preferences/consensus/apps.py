"""Django app for blending judgements: consensus, rater reliability, agreement, gold items."""

from django.apps import AppConfig


class ConsensusConfig(AppConfig):
    name = "preferences.consensus"
    label = "consensus"
    verbose_name = "Consensus and agreement"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers `consensus.refresh` in every process: preferences.marks (below this app)
        # queues it by name after a write commits.
        from . import tasks  # noqa: F401
