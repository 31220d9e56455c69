import os
import sys

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self):
        from django.conf import settings

        from . import db  # noqa: F401 - registers the field__any_of lookup

        if settings.ALTPREF_JOBS["RUNNER"] == "thread" and _serving():
            # make run: no Celery beat, so the dev server sweeps stuck or unsent jobs itself.
            from .job_runner import start_sweeper, warm_imports

            start_sweeper()
            warm_imports()


def _serving() -> bool:
    """The runserver process that serves requests (not its autoreloader parent, not migrate)."""
    if "runserver" not in sys.argv[1:2]:
        return False
    return os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv
