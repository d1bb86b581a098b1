"""Attempt limits, duplicate deliveries and the sweeper, on the database (the fault tests use real workers)."""

import datetime as dt

import pytest
from django.utils import timezone

from crackportal.inspections import processing, services, tasks
from crackportal.inspections.models import SurveyImage
from tests.factories import make_image, make_run


@pytest.fixture
def sent(monkeypatch):
    """The image ids the code hands to the broker (the broker itself is exercised in test_faults)."""
    ids = []
    monkeypatch.setattr(tasks.segment_images_task, "delay", ids.extend)
    return ids


def _image(tunnel, status, **fields):
    image = make_image(make_run(tunnel, label=status))
    SurveyImage.objects.filter(pk=image.pk).update(
        status=status, file=f"originals/{image.pk}.jpg", **fields
    )
    return SurveyImage.objects.get(pk=image.pk)


def test_a_duplicate_message_for_a_done_image_is_a_no_op(db, tunnel):
    image = _image(tunnel, "done", attempts=1)
    assert processing.claim_image(image_id=image.pk) is False
    image.refresh_from_db()
    assert (image.status, image.attempts) == ("done", 1)


def test_a_redelivered_message_reclaims_an_image_whose_worker_was_lost(db, tunnel):
    image = _image(tunnel, "processing", attempts=1)
    assert processing.claim_image(image_id=image.pk) is True
    image.refresh_from_db()
    assert (image.status, image.attempts) == ("processing", 2)


def test_an_image_out_of_attempts_is_failed_with_the_reason(db, tunnel, settings):
    settings.IMAGE_MAX_ATTEMPTS = 3
    image = _image(tunnel, "processing", attempts=3)
    assert processing.claim_image(image_id=image.pk) is False
    image.refresh_from_db()
    assert image.status == "failed"
    assert "stopped after 3 attempts" in image.error
    assert image.run.status == "failed"  # its only image failed: the run is settled


def test_a_task_that_keeps_failing_stops_after_the_attempt_limit(db, tunnel, settings, monkeypatch):
    settings.IMAGE_MAX_ATTEMPTS = 3
    image = _image(tunnel, "queued")
    calls = []

    def flaky(*, image_ids):
        calls.append(image_ids)
        return {i: OSError("storage went away") for i in image_ids}

    monkeypatch.setattr(processing, "segment_survey_images", flaky)
    # apply() runs this one call and its retries here, in order (countdowns are skipped)
    tasks.segment_images_task.apply(args=[[image.pk]])
    image.refresh_from_db()
    assert len(calls) == 3
    assert (image.status, image.attempts) == ("failed", 3)
    assert image.error == "OSError: storage went away"


def test_the_sweeper_resends_lost_messages_and_gives_up_on_spent_images(db, tunnel, settings, sent):
    settings.IMAGE_MAX_ATTEMPTS = 3
    long_ago = timezone.now() - dt.timedelta(hours=2)
    lost_in_queue = _image(tunnel, "queued", queued_at=long_ago)
    waiting = _image(tunnel, "queued", queued_at=timezone.now())
    dead_worker = _image(tunnel, "processing", started_at=long_ago, attempts=1)
    busy = _image(tunnel, "processing", started_at=timezone.now(), attempts=1)
    spent = _image(tunnel, "processing", started_at=long_ago, attempts=3)
    done = _image(tunnel, "done", queued_at=long_ago)

    counts = services.requeue_stuck_images(queued_after_s=600, processing_after_s=1000)

    assert counts == {"requeued": 2, "failed": 1}
    assert sorted(sent) == sorted([lost_in_queue.pk, dead_worker.pk])
    for image in (lost_in_queue, dead_worker):
        image.refresh_from_db()
        assert image.status == "queued"
        assert image.queued_at > long_ago
        assert image.attempts == (0 if image.pk == lost_in_queue.pk else 1)  # budget kept
    for image, status in ((waiting, "queued"), (busy, "processing"), (done, "done")):
        image.refresh_from_db()
        assert image.status == status
    spent.refresh_from_db()
    assert spent.status == "failed" and "stopped after 3 attempts" in spent.error
    # a second sweep right away finds nothing to do
    assert services.requeue_stuck_images(queued_after_s=600, processing_after_s=1000) == {
        "requeued": 0,
        "failed": 0,
    }


def test_an_unreachable_broker_leaves_the_image_queued_for_the_sweeper(db, tunnel, monkeypatch):
    image = _image(tunnel, "pending")

    def broker_down(image_ids):
        raise ConnectionRefusedError("redis is restarting")

    monkeypatch.setattr(tasks.segment_images_task, "delay", broker_down)
    services.enqueue_images([image.pk])  # does not raise: the upload still succeeds
    image.refresh_from_db()
    assert image.status == "queued" and image.queued_at is not None


def test_health_reports_database_and_broker(client, db):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_an_image_on_a_worker_that_does_not_answer_is_sent_again_within_a_minute(db, tunnel, sent):
    started = timezone.now() - dt.timedelta(seconds=90)  # far below the task time limit
    lost = _image(tunnel, "processing", attempts=1, started_at=started, worker="gone@host")
    busy = _image(tunnel, "processing", attempts=1, started_at=started, worker="alive@host")
    young = _image(tunnel, "processing", attempts=1, worker="gone@host", started_at=timezone.now())
    counts = services.requeue_stuck_images(
        queued_after_s=3600,
        processing_after_s=3600,
        alive_workers={"alive@host"},
        lost_after_s=60,
    )
    assert counts == {"requeued": 1, "failed": 0} and sent == [lost.pk]
    for image, status in ((busy, "processing"), (young, "processing")):
        image.refresh_from_db()
        assert image.status == status
    # without an answer from the broker, only time judges
    sent.clear()
    busy_started = SurveyImage.objects.filter(pk=busy.pk)
    busy_started.update(worker="gone@host")
    services.requeue_stuck_images(queued_after_s=3600, processing_after_s=3600, alive_workers=None)
    assert sent == []


def test_the_worker_that_claims_an_image_is_recorded(db, tunnel):
    image = _image(tunnel, "queued")
    assert processing.claim_image(image_id=image.pk, worker="w1@host")
    image.refresh_from_db()
    assert image.worker == "w1@host"
