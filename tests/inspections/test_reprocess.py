"""Reprocess an inspection with a chosen model (issue 18): every image segmented again by a
real worker with that model, the run tracked again, and the figures before kept beside now."""

import json
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crackportal.inspections import reprocessing
from crackportal.inspections.models import Crack, InspectionRun, Reprocessing, SurveyImage
from crackportal.modelops import services as modelops
from tests.conftest import survey_jpeg, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _settled(run):
    return not run.images.exclude(
        status__in=[SurveyImage.Status.DONE, SurveyImage.Status.FAILED]
    ).exists()


def test_summary_and_changes_count_what_a_manager_acts_on(db, tunnel):
    from tests.factories import make_crack, make_image, make_run

    run = make_run(tunnel)
    image = make_image(run, "a.jpg", (0.0, 0.48), (0.0, 0.32), (480, 320))
    SurveyImage.objects.filter(pk=image.pk).update(status="done")
    make_crack(image, 0, (0.05, 0.10), (0.40, 0.10), width_mm=1.2)
    rejected = make_crack(image, 1, (0.10, 0.25), (0.30, 0.28), width_mm=0.3)
    Crack.objects.filter(pk=rejected.pk).update(review="rejected")
    summary = reprocessing.run_summary(run)
    assert summary["cracks"] == 1 and summary["width_max_mm"] == 1.2 and summary["images_done"] == 1
    rows = {r["figure"]: r for r in reprocessing.changes(summary, {**summary, "cracks": 3})}
    assert rows["Cracks"]["change"] == 2 and rows["Widest crack (mm)"]["change"] == 0


@pytest.mark.integration
@pytest.mark.slow
def test_an_admin_reprocesses_an_inspection_with_another_model(
    worker, client, tunnel, admin_user, settings, tmp_path
):
    client.force_login(admin_user)
    files = [
        SimpleUploadedFile(f"{n}.jpg", survey_jpeg(seed=i), "image/jpeg")
        for i, n in enumerate("ab")
    ]
    response = client.post(
        reverse("run-create", args=[tunnel.code]),
        {"date": "2026-11-01", "label": "first pass", "files": files},
    )
    assert response.status_code == 302
    run = InspectionRun.objects.latest("created_at")
    wait_for(
        lambda: _settled(run) and InspectionRun.objects.get(pk=run.pk).tracked_at,
        what="the first pass",
    )
    run.refresh_from_db()
    first_model, first_tracked = run.model_version, run.tracked_at
    before = reprocessing.run_summary(run)
    assert before["cracks"] >= 2

    # a stricter copy of the default: a higher threshold finds less crack
    strict = tmp_path / "strict"
    shutil.copytree(ROOT / "models" / "default", strict, ignore=shutil.ignore_patterns("*.onnx"))
    config = json.loads((strict / "config.json").read_text())
    config["threshold"] = 0.97
    (strict / "config.json").write_text(json.dumps(config))
    version = modelops.register_model_version(folder=strict, name="strict")

    client.post(reverse("run-reprocess", args=[run.pk]), {"version": version.pk})
    assert not Reprocessing.objects.exists()  # not without the confirmation
    client.post(reverse("run-reprocess", args=[run.pk]), {"version": version.pk, "confirm": "1"})
    record = Reprocessing.objects.get()
    assert record.before == before and record.previous_version == first_model
    wait_for(
        lambda: (
            _settled(run)
            and InspectionRun.objects.get(pk=run.pk).status == "done"
            and (InspectionRun.objects.get(pk=run.pk).tracked_at or first_tracked) > first_tracked
        ),
        what="the reprocess and the re-tracking",
    )
    run.refresh_from_db()
    assert run.model_version == version and run.requested_model == version
    assert set(run.images.values_list("model_version", flat=True)) == {version.pk}
    assert set(Crack.objects.filter(image__run=run).values_list("model_version", flat=True)) <= {
        version.pk
    }
    assert ModelVersionIsStillActive(first_model)
    after = reprocessing.run_summary(run)
    assert after["model"] == "strict"
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Reprocessed with strict" in page and "was " + first_model.name in page
    assert f'<td class="num">{before["cracks"]}</td><td class="num">{after["cracks"]}</td>' in page


def ModelVersionIsStillActive(version) -> bool:  # noqa: N802 - reads as the assertion it is
    """Reprocessing one inspection leaves the active model alone."""
    version.refresh_from_db()
    return version.is_active
