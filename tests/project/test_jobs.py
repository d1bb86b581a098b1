"""One job lifecycle: a failing image, report or training run is marked failed with its
reason, its traceback is logged, and the reason never carries SQL."""

import logging

import pytest
from django.db import DatabaseError

from crackportal import jobs
from crackportal.inspections import services as inspections
from crackportal.modelops import training_services
from crackportal.modelops.models import TrainingRun
from crackportal.reports import services as reports
from crackportal.reports.models import Report
from tests.factories import make_image, make_run

pytestmark = pytest.mark.django_db


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_a_failed_report_keeps_its_reason_and_logs_the_traceback(
    tunnel, manager, caplog, monkeypatch
):
    run = make_run(tunnel)
    report = reports.request_report(run=run, kind="xlsx", user=manager)

    def broken(run, progress):
        raise ValueError("the map has no footprints")

    monkeypatch.setattr("crackportal.reports.exports.xlsx_bytes", broken)
    from crackportal.reports.tasks import build_report_task

    with caplog.at_level(logging.ERROR, logger="crackportal.jobs"):
        build_report_task.run(report.pk)
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED and report.finished_at is not None
    assert report.error == "ValueError: the map has no footprints"
    record = next(r for r in caplog.records if r.name == "crackportal.jobs")
    assert record.exc_info and "broken" in caplog.text  # the traceback names the failing function


def test_a_failed_image_keeps_its_reason_and_the_run_is_updated(tunnel, caplog):
    run = make_run(tunnel)
    image = make_image(run)
    with caplog.at_level(logging.ERROR, logger="crackportal.jobs"):
        inspections.mark_image_failed(image_id=image.pk, error=_raised(KeyError("track 7")))
    image.refresh_from_db()
    run.refresh_from_db()
    assert image.status == "failed" and image.error == "KeyError: 'track 7'"
    assert run.status == "failed"
    assert "Traceback" in caplog.text


def test_a_failed_training_run_keeps_its_reason_and_logs_the_traceback(caplog, settings, tmp_path):
    settings.TRAINING_DATASETS = {"empty": str(tmp_path)}
    run = TrainingRun.objects.create(config_name="unet-tiny", dataset=str(tmp_path), config={})
    with caplog.at_level(logging.ERROR, logger="crackportal.jobs"):
        training_services.execute_training_run(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and run.finished_at is not None
    assert run.error.startswith("FileNotFoundError: ") and "no images/ + masks/" in run.error
    assert "Traceback" in caplog.text


def test_database_errors_are_shown_without_sql():
    error = DatabaseError(
        'value out of range: INSERT INTO "inspections_surveyimage" VALUES (1e308)'
    )
    text = jobs.error_text(error)
    assert "INSERT" not in text and "inspections_surveyimage" not in text
    assert text.startswith("DatabaseError:")


def test_every_job_error_is_shortened_the_same_way():
    text = jobs.error_text(RuntimeError("x" * 10_000))
    assert len(text) == jobs.ERROR_MAX_CHARS and text.endswith("…")


def test_a_claim_is_won_once(tunnel, manager):
    report = reports.request_report(run=make_run(tunnel), kind="xlsx", user=manager)
    queued = Report.objects.filter(pk=report.pk, status=Report.Status.QUEUED)
    assert jobs.claim(queued, status=Report.Status.RUNNING) is True
    assert jobs.claim(queued, status=Report.Status.RUNNING) is False


@pytest.mark.parametrize("ending", ["done", "cancelled", "failed"])
def test_a_training_run_writes_its_last_log_line_before_its_final_status(
    ending, monkeypatch, tmp_path
):
    # CI once read status "done" from a real worker's run whose log did not yet say
    # "done: model version": the status was written first
    from crackportal.modelops.models import ModelVersion
    from training.loop import CancelledError

    run = TrainingRun.objects.create(config_name="unet-tiny", dataset=str(tmp_path), config={})

    def train(run):
        if ending == "cancelled":
            raise CancelledError("cancelled after epoch 1")
        if ending == "failed":
            raise ValueError("the masks are empty")
        return ModelVersion.objects.create(
            name="v-ending", path="/nowhere", architecture="Unet", encoder="x"
        )

    seen = []
    log = training_services._log

    def spy(run_id, line):
        seen.append((line, TrainingRun.objects.get(pk=run_id).status))
        log(run_id, line)

    monkeypatch.setattr(training_services, "_train", train)
    monkeypatch.setattr(training_services, "_log", spy)
    training_services.execute_training_run(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == ending
    last_line, status_then = seen[-1]
    expected = {
        "done": "done: model version v-ending",
        "cancelled": "cancelled after epoch 1",
        "failed": "ValueError: the masks are empty",
    }[ending]
    assert expected in last_line and expected in run.log_tail
    assert status_then == TrainingRun.Status.RUNNING
