"""The Celery app. Queues: `inference` (survey images) and `training` (model training)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crackportal.settings")

app = Celery("crackportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
