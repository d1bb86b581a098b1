"""Adapt the active model to a tunnel (issue 18): fine-tune on the tunnel's verified
annotations with a fifth held back, then the active model against the candidate on them."""

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from crackportal.inspections.models import Annotation, SurveyImage
from crackportal.modelops import services, training_services
from crackportal.modelops.models import ModelVersion, TrainingRun
from inference.config import ModelConfig
from inference.synthetic import survey_image
from tests.conftest import wait_for
from tests.factories import make_image, make_run
from training.adapt import compare, hold_back
from training.data import Sample


def _png(array, mode):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue())


def _annotated_images(tunnel, n, admin_user):
    run = make_run(tunnel)
    images = []
    for i in range(n):
        rgb, mask, _ = survey_image(160, 128, n_cracks=2, seed=200 + i, widths_px=(2.5, 4.0))
        image = make_image(run, f"t{i}.png", (0.0, 0.16), (0.0, 0.128), (160, 128))
        image.file.save(f"t{i}.png", _png(rgb, "RGB"))
        SurveyImage.objects.filter(pk=image.pk).update(status="done")
        annotation = Annotation(
            image=image, source="uploaded", crack_pixels=int(mask.sum()), created_by=admin_user
        )
        annotation.mask.save(f"t{i}_mask.png", _png(mask.astype(np.uint8) * 255, "L"))
        images.append(image)
    return images


def test_a_fifth_is_held_back_by_name_and_never_none_of_two():
    samples = [Sample(f"portal-{i}", None, None) for i in range(10)]
    learn, held = hold_back(samples)
    assert [s.name for s in held] == ["portal-4", "portal-9"] and len(learn) == 8
    learn, held = hold_back(samples[:2])
    assert len(learn) == 1 and len(held) == 1
    rows = compare(
        {"per_image": [{"name": "a", "f1": 0.5}, {"name": "b", "f1": 0.2}]},
        {"per_image": [{"name": "a", "f1": 0.4}, {"name": "b", "f1": 0.6}]},
    )
    assert [r["name"] for r in rows] == ["a", "b"]  # the worst change first
    assert rows[0]["change"] == pytest.approx(-0.1) and rows[1]["change"] == pytest.approx(0.4)


def test_adapting_needs_annotated_images_in_the_chosen_tunnels(
    transactional_db, tunnel, admin_user, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(training_services.TrainingError, match="they have 0"):
        training_services.start_adaptation(tunnels=[tunnel], minutes=5)
    with pytest.raises(training_services.TrainingError, match="time budget"):
        training_services.start_adaptation(tunnels=[tunnel], minutes=0.1)
    with pytest.raises(training_services.TrainingError, match="share of the crops"):
        training_services.start_adaptation(tunnels=[tunnel], minutes=5, share=1.0)


@pytest.mark.integration
@pytest.mark.slow
def test_an_admin_adapts_the_active_model_and_compares_it_on_held_back_images(
    worker, client, tunnel, admin_user, synthetic_dataset, settings, tmp_path
):
    images = _annotated_images(tunnel, 5, admin_user)
    client.force_login(admin_user)
    page = client.get(reverse("training-list")).content.decode()
    assert "5 annotated images" in page
    form = {"tunnels": [tunnel.pk], "minutes": 0.5, "share": "0.75"}
    response = client.post(reverse("training-adapt"), form)
    run = TrainingRun.objects.get(kind="adapt")
    assert run.config["new_share"] == 0.75
    assert response.url == reverse("training-detail", args=[run.pk])
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).status not in ("pending", "running"),
        timeout=400,
        what="the adaptation to finish",
    )
    run.refresh_from_db()
    assert run.status == "done", run.error + run.log_tail
    assert "75% of the crops from the tunnels, 4 a step" in run.log_tail
    assert "checkpoint from the epochs ending after 50% of the time" in run.log_tail
    assert run.held_back == [images[4].pk]  # the fifth image by name
    active = ModelVersion.objects.get(is_active=True)
    assert run.init_from == active and run.comparison["baseline_model"] == active.name
    [row] = run.comparison["held_back_rows"]
    assert row["name"] == f"portal-{images[4].pk}" and 0 <= row["candidate_f1"] <= 1
    candidate = run.result
    assert not candidate.is_active
    provenance = ModelConfig.load(Path(candidate.folder) / "config.json").provenance
    assert provenance["checkpoint"] == "checkpoint from the epochs ending after 50% of the time"
    assert provenance["best_epoch"] >= 1
    # it comes with its own int8 model, calibrated on the run's images: a CPU worker can run
    # it as fast as the default ("auto" would otherwise keep it in float)
    pytest.importorskip("openvino")
    from inference.quantize import INT8_INFO, check_int8

    check_int8(candidate.folder)
    assert "training run #" in (Path(candidate.folder) / INT8_INFO).read_text()
    assert "int8 model made from" in run.log_tail
    assert {"held-back", "synthetic-test (first 20)", "val"} <= set(candidate.metrics)
    # the activation page compares on the same images: the baseline figures of the run
    comparison = services.compare_versions(candidate, active)
    held = next(r for r in comparison.rows if r["split"] == "held-back")
    assert held["active"]["f1"] == run.comparison["baseline"]["held-back"]["f1"]
    page = client.get(reverse("training-detail", args=[run.pk])).content.decode()
    assert 'id="comparison-images"' in page and f"/images/{images[4].pk}/" in page
