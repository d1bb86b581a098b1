"""Celery tasks for inspections: thin wrappers over services.

The worker-side module (`processing`: the neural network) is imported inside the tasks, so
a web process that only sends them never loads torch.
"""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from crackportal.inspections import services, tracking
from crackportal.inspections.models import InspectionRun, SurveyImage


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def segment_images_task(self, image_ids: list[int]) -> None:
    """Segment a batch of survey images (one, or several small ones: services.enqueue_images).

    Per image: a permanent error fails it; a transient one (database, storage) is tried again
    up to the attempt limit, by a retry of this task with only those images. A redelivered
    batch skips its images that are already done (claim_images).
    """
    from crackportal.inspections import processing

    worker = self.request.hostname or ""
    claimed = processing.claim_images(image_ids=image_ids, worker=worker)
    if not claimed:
        return
    failed = {
        i: exc for i, exc in processing.segment_survey_images(image_ids=claimed).items() if exc
    }
    attempts = dict(SurveyImage.objects.filter(pk__in=failed).values_list("pk", "attempts"))
    again, error = [], None
    for image_id, exc in failed.items():
        if isinstance(exc, processing.ImageProcessingError):
            services.mark_image_failed(image_id=image_id, error=str(exc))
        elif attempts.get(image_id, 0) < settings.IMAGE_MAX_ATTEMPTS and isinstance(
            exc, OperationalError | OSError
        ):
            again.append(image_id)
            error = exc
        else:
            services.mark_image_failed(image_id=image_id, error=exc)
    if again:
        countdown = 2 ** max(attempts.get(i, 0) for i in again)
        raise self.retry(args=[again], exc=error, countdown=countdown)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def segment_image_task(image_id: int) -> None:
    """One image: a message sent before batches existed is passed on as a batch of one."""
    segment_images_task.delay([image_id])


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expand_archive_task(archive_id: int) -> None:
    """Unpack a big zip of an upload into the run's images; a failure is shown on the run page."""
    try:
        services.expand_archive(archive_id=archive_id)
    except Exception as exc:
        services.mark_archive_failed(archive_id=archive_id, error=exc)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_stuck_images_task() -> dict[str, int]:
    """Periodic (Celery beat): re-send images whose message or worker was lost."""
    services.requeue_stuck_archives(older_than_s=settings.IMAGE_QUEUED_TIMEOUT_S)
    return services.requeue_stuck_images(
        queued_after_s=settings.IMAGE_QUEUED_TIMEOUT_S,
        processing_after_s=settings.IMAGE_PROCESSING_TIMEOUT_S,
        alive_workers=_alive_workers(),
        lost_after_s=settings.IMAGE_LOST_AFTER_S,
    )


def _alive_workers() -> set[str] | None:
    """Hostnames of the workers that answer a ping now; None when the broker cannot ask."""
    from crackportal.celery import app

    try:
        replies = app.control.ping(timeout=settings.WORKER_PING_TIMEOUT_S)
    except Exception:  # broker unreachable: judge by time alone this round
        return None
    return {name for reply in replies for name in reply}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def track_run_task(run_id: int) -> None:
    """Give a finished run's cracks their tracks (and later inspections' again); idempotent."""
    run = InspectionRun.objects.filter(pk=run_id).first()
    if run is None:
        return
    try:
        tracking.track_from(run)
    except Exception as exc:  # shown on the run page with a retry; the traceback is logged
        services.mark_tracking_failed(run_id=run_id, error=exc)
    else:
        services.mark_tracked(run_id=run_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def measure_annotation_task(annotation_id: int) -> None:
    """Measure an image's cracks from its corrected mask, then track its inspection again."""
    from crackportal.inspections import processing
    from crackportal.inspections.models import Annotation

    processing.measure_from_annotation(annotation_id=annotation_id)
    run_id = Annotation.objects.filter(pk=annotation_id).values_list("image__run_id", flat=True)
    if run_id:
        services.enqueue_tracking(run_id[0])
