"""Celery task for reports: a thin wrapper over services."""

from celery import shared_task

from crackportal.reports import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def build_report_task(report_id: int) -> None:
    """Build one report; any error is saved on the row for the page to show."""
    try:
        services.build_report(report_id=report_id)
    except Exception as exc:
        services.mark_report_failed(report_id=report_id, error=exc)
