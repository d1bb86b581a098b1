"""The Celery app. Queues: `inference` (survey images) and `training` (model training)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crackportal.settings")

app = Celery("crackportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections(task=None, **kwargs) -> None:
    """Per task what Django does per request: drop a connection past CONN_MAX_AGE or broken
    by an error, and health-check the kept one before its first query (CONN_HEALTH_CHECKS).
    Not for a task run in the caller (apply()): its connection is the caller's."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
