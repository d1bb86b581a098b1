"""A training run started from the portal, executed by a real Celery worker on the training queue."""

import pytest
from django.urls import reverse

import inference
from crackportal.modelops.models import ModelVersion, TrainingRun
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_admin_starts_a_run_that_finishes_as_a_new_model_version(
    worker, client, admin_user, synthetic_dataset
):
    client.force_login(admin_user)
    response = client.post(
        reverse("training-list"), {"config_name": "unet-tiny", "dataset": "synthetic", "epochs": 2}
    )
    assert response.status_code == 302
    run = TrainingRun.objects.get()

    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).status not in ("pending", "running"),
        timeout=300,
        what="the training run to finish",
    )
    run.refresh_from_db()
    assert run.status == "done", run.error + run.log_tail
    assert [row["epoch"] for row in run.history] == [1, 2]
    assert all(0 <= row["val_f1"] <= 1 for row in run.history)
    assert "done: model version" in run.log_tail
    version = run.result
    assert version is not None and not version.is_active
    assert inference.load(version.folder).config.name == version.name
    # a copy in media storage, for inference workers on other hosts
    from crackportal import media

    assert version.stored_prefix == f"models/{version.name}"
    assert f"{version.stored_prefix}/config.json" in set(media.walk(version.stored_prefix))

    client.post(reverse("model-activate", args=[version.pk]))
    assert ModelVersion.objects.get(is_active=True) == version
    state = client.get(reverse("training-status", args=[run.pk])).json()
    assert state["status"] == "done" and state["result"] == version.name


def test_a_second_run_is_refused_while_one_is_queued(
    transactional_db, client, admin_user, synthetic_dataset, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    TrainingRun.objects.create(config_name="unet-tiny", status="running")
    response = client.post(
        reverse("training-list"), {"config_name": "unet-tiny", "dataset": "synthetic", "epochs": 1}
    )
    assert response.status_code == 200 and "already queued or running" in response.content.decode()
    assert TrainingRun.objects.count() == 1


def test_training_pages_are_for_admins_only(client, inspector, manager):
    for user in (inspector, manager):
        client.force_login(user)
        for url in (reverse("training-list"), reverse("model-list")):
            response = client.get(url)
            assert (
                response.status_code == 403 and "needs the admin role" in response.content.decode()
            )


def test_a_failed_run_is_started_again_with_the_same_settings(
    transactional_db, client, admin_user, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "crackportal.modelops.training_services._enqueue", lambda run_id: sent.append(run_id)
    )
    failed = TrainingRun.objects.create(
        config_name="unet-tiny",
        config={"train": {"epochs": 2}},
        dataset="/data/x",
        include_annotations=True,
        epochs=2,
        status="failed",
        error="OSError: disk full",
    )
    client.force_login(admin_user)
    page = client.get(reverse("training-detail", args=[failed.pk])).content.decode()
    assert "OSError: disk full" in page and "Start again with the same settings" in page
    response = client.post(reverse("training-retry", args=[failed.pk]))
    again = TrainingRun.objects.exclude(pk=failed.pk).get()
    assert response.url == reverse("training-detail", args=[again.pk])
    assert (again.config, again.dataset, again.include_annotations, again.status) == (
        failed.config,
        failed.dataset,
        True,
        "pending",
    )
    assert sent == [again.pk]
