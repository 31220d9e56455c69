from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self):
        from . import db  # noqa: F401 - registers the field__any_of lookup
