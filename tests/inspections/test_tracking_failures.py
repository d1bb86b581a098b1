"""A tracking failure is visible on the run page with its reason and a way to retry."""

import logging

import pytest

from crackportal.inspections import tasks, tracking
from crackportal.inspections.models import InspectionRun
from tests.factories import make_crack, make_image, make_run

pytestmark = pytest.mark.django_db


def test_a_crash_in_tracking_marks_the_inspection_and_is_logged(
    client, tunnel, inspector, monkeypatch, caplog
):
    run = make_run(tunnel)
    make_crack(make_image(run))

    def crash(run, **options):
        raise KeyError(7)

    monkeypatch.setattr(tracking, "track_from", crash)
    with caplog.at_level(logging.ERROR):
        tasks.track_run_task.run(run.pk)
    run.refresh_from_db()
    assert run.tracking_error == "KeyError: 7" and run.tracked_at is None
    assert "Traceback" in caplog.text
    client.force_login(inspector)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Tracking against earlier inspections failed" in page and "KeyError: 7" in page
    assert f'action="/runs/{run.pk}/track/"' in page


def test_track_again_clears_the_error_and_tracks(client, tunnel, inspector, monkeypatch):
    run = make_run(tunnel)
    crack = make_crack(make_image(run))
    InspectionRun.objects.filter(pk=run.pk).update(tracking_error="KeyError: 7")
    sent = []
    monkeypatch.setattr(
        "crackportal.inspections.services.enqueue_tracking", lambda run_id: sent.append(run_id)
    )
    client.force_login(inspector)
    response = client.post(f"/runs/{run.pk}/track/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.tracking_error == ""
    tasks.track_run_task.run(run.pk)  # what the worker runs
    run.refresh_from_db()
    crack.refresh_from_db()
    assert run.tracked_at is not None and crack.track_id is not None
