"""The training form starts from the shipped recipe and says what a run will use and cost;
a run reports progress inside its epochs and stops within seconds of a cancel (issue 18)."""

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from django.db import transaction
from django.urls import reverse

from crackportal.modelops import training_services
from crackportal.modelops.models import ModelVersion, TrainingRun
from inference.synthetic import survey_image
from tests.conftest import wait_for
from training.data import Sample
from training.loop import CancelledError, load_run_config, train

ROOT = Path(__file__).resolve().parents[2]


def test_the_form_opens_on_the_shipped_recipe_with_counts_and_an_estimate(
    client, admin_user, synthetic_dataset
):
    client.force_login(admin_user)
    page = client.get(reverse("training-list")).content.decode()
    recipe = training_services.DEFAULT_CONFIG
    assert f'<option value="{recipe}" selected>' in page
    epochs = json.loads((ROOT / "training" / "configs" / f"{recipe}.json").read_text())["train"][
        "epochs"
    ]
    assert f'name="epochs" value="{epochs}"' in page
    assert "No verified annotations yet" in page
    assert 'id="training-estimate"' in page and 'id="training-facts"' in page
    facts = training_services.form_facts()
    assert facts["datasets"] == {"synthetic": 6} and facts["configs"][recipe]["epochs"] == epochs


def test_estimate_counts_crops_and_validation_at_the_hosts_rate(settings):
    settings.TRAINING_SECONDS_PER_CROP, settings.TRAINING_SECONDS_PER_VAL_IMAGE = 0.2, 0.3
    config = {"train": {"epochs": 12, "crops_per_epoch": 256, "val_fraction": 0.1}}
    # 12 × (256 × 0.2 s + 10 validation images × 0.3 s) = 12 × 54.2 s
    assert training_services.estimate_minutes(config, images=100) == pytest.approx(12 * 54.2 / 60)
    assert training_services.estimate_minutes(config, images=100, epochs=1) == pytest.approx(
        54.2 / 60
    )


def test_fine_tuning_the_active_model_needs_a_config_of_the_same_network(
    transactional_db, synthetic_dataset, monkeypatch
):
    monkeypatch.setattr(training_services, "_enqueue", lambda run_id: None)
    active = ModelVersion.objects.create(
        name="default",
        path="default",
        architecture="Unet",
        encoder="mobilenet_v2",
        config={
            "architecture": "Unet",
            "encoder": "mobilenet_v2",
            "encoder_depth": 4,
            "decoder_channels": [96, 48, 16, 12],
            "in_channels": 3,
        },
        is_active=True,
    )
    with pytest.raises(training_services.TrainingError, match="different network"):
        training_services.start_training_run(
            config_name="unet-tiny",
            dataset="synthetic",
            include_annotations=False,
            init_from_active=True,
        )
    run = training_services.start_training_run(
        config_name=training_services.DEFAULT_CONFIG,
        dataset="synthetic",
        include_annotations=False,
        init_from_active=True,
    )
    assert run.init_from == active and run.init_from_active


def _samples():
    out = []
    for i in range(4):
        rgb, mask, _ = survey_image(96, 96, n_cracks=1, seed=i, widths_px=(2.0, 3.0))
        out.append(Sample(f"s{i}", rgb, mask))
    return out


@pytest.mark.slow
def test_step_progress_runs_inside_the_epoch_and_can_cancel_it(tmp_path):
    config, settings = load_run_config(ROOT / "training" / "configs" / "unet-tiny.json")
    settings = replace(settings, epochs=1, crops_per_epoch=64, batch_size=2, val_fraction=0.25)
    seen = []

    def step_progress(report):
        seen.append((report.epoch, report.step, report.steps))
        return report.step < 5

    with pytest.raises(CancelledError, match=r"in epoch 1 \(step 5 of 32\)"):
        train(_samples(), config, settings, tmp_path, step_progress=step_progress, step_every_s=0)
    assert seen[0] == (1, 0, 32) and seen[-1] == (1, 5, 32)


@pytest.mark.integration
@pytest.mark.slow
def test_a_running_run_shows_live_progress_and_stops_within_30_s_of_a_cancel(
    worker, client, admin_user, synthetic_dataset
):
    config = json.loads((ROOT / "training" / "configs" / "unet-tiny.json").read_text())
    config["train"].update(epochs=2, crops_per_epoch=100_000, batch_size=2)  # hours per epoch
    with transaction.atomic():
        run = TrainingRun.objects.create(
            config_name="unet-tiny", config=config, dataset=str(synthetic_dataset), epochs=2
        )
        transaction.on_commit(lambda: training_services._enqueue(run.pk))
    wait_for(
        lambda: (TrainingRun.objects.get(pk=run.pk).live or {}).get("step", 0) > 0,
        timeout=120,
        what="the first in-epoch progress",
    )
    client.force_login(admin_user)
    state = client.get(reverse("training-status", args=[run.pk])).json()
    assert state["status"] == "running" and state["epoch"] == 0
    assert state["live"]["epoch"] == 1 and state["live"]["steps"] == 50_000
    assert state["live"]["points"] and np.isfinite(state["live"]["train_loss"])
    asked = time.monotonic()
    client.post(reverse("training-cancel", args=[run.pk]))
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).status == "cancelled",
        timeout=30,
        what="the run to stop after the cancel",
    )
    run.refresh_from_db()
    assert time.monotonic() - asked < 30 and "cancelled in epoch 1" in run.log_tail
