from django.apps import AppConfig


class ModeltrainConfig(AppConfig):
    name = "modeltrain"
    verbose_name = "Model training"
