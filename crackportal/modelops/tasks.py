"""Celery tasks for model operations (queue: training)."""

from celery import shared_task

from crackportal.modelops import training_services


@shared_task(acks_late=True, soft_time_limit=24 * 3600, time_limit=24 * 3600 + 120)
def train_model_task(run_id: int) -> None:
    """Run one portal training run to completion, failure or cancellation."""
    training_services.execute_training_run(run_id=run_id)
