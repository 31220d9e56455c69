"""The Celery app: queues `celery` (default) and `gpu` (training rounds, see settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("altpref")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
