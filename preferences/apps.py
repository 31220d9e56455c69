from django.apps import AppConfig


class PreferencesConfig(AppConfig):
    name = "preferences"
    verbose_name = "Preferences"

    def ready(self):
        from .rating import keyprefs  # noqa: F401 - connects the sign-in receiver
