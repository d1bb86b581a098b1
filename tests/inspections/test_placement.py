"""Placement that is never silently wrong: manifests, layout without one, corrections."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crackportal.inspections import services
from crackportal.inspections.models import SurveyImage
from crackportal.inspections.tracking import track_run
from crackportal.inspections.uploads import Footprint, IncomingFile, UploadError, parse_manifest
from tests.conftest import survey_jpeg
from tests.factories import make_crack, make_image, make_run

pytestmark = pytest.mark.django_db(transaction=True)
HEADER = "filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m,mm_per_px\n"


def incoming(name, data) -> IncomingFile:
    data = data.encode() if isinstance(data, str) else data
    return IncomingFile(name, io.BytesIO(data), len(data))


def zipped(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def media(settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    # committed data here: keep the session's real worker (integration tests) out of it
    monkeypatch.setattr(services, "enqueue_tracking", lambda run_id: None)


def _footprints(run) -> dict:
    return {
        i.original_name: (i.chainage_start_m, i.chainage_end_m)
        for i in run.images.exclude(status="failed")
    }


def test_a_separate_manifest_wins_over_a_zipped_one_and_the_conflict_is_reported(
    tunnel, monkeypatch
):
    monkeypatch.setattr(services, "enqueue_images", lambda ids, **kw: None)
    run = make_run(tunnel)
    archive = zipped(
        {
            "a.jpg": survey_jpeg(1),
            "b.jpg": survey_jpeg(2),
            "inner.csv": HEADER + "a.jpg,50,50.48,0,0.32,\nb.jpg,60,60.48,0,0.32,\n",
        }
    )
    separate = incoming("survey.csv", HEADER + "a.jpg,10,10.48,0,0.32,\n")
    result = services.upload_survey(run=run, files=[incoming("s.zip", archive)], manifest=separate)
    assert _footprints(run) == {"a.jpg": (10.0, 10.48), "b.jpg": (60.0, 60.48)}
    assert any("a.jpg is in survey.csv and in s.zip › inner.csv" in w for w in result.warnings)
    assert result.unplaced == [] and result.unused_manifest_rows == []


def test_every_unused_row_and_every_unplaced_file_is_listed(tunnel, monkeypatch):
    monkeypatch.setattr(services, "enqueue_images", lambda ids, **kw: None)
    run = make_run(tunnel)
    rows = "".join(f"missing{k:02d}.jpg,{k},{k}.48,0,0.32,\n" for k in range(15))
    result = services.upload_survey(
        run=run,
        files=[incoming("x.jpg", survey_jpeg(3)), incoming("y.jpg", survey_jpeg(4))],
        manifest=incoming("m.csv", HEADER + rows),
    )
    assert result.unused_manifest_rows == [f"missing{k:02d}.jpg" for k in range(15)]
    assert result.unplaced == ["x.jpg", "y.jpg"]
    assert any("missing14.jpg" in w and "(15)" in w for w in result.warnings)


def test_without_a_manifest_images_are_laid_out_from_the_start_chainage(
    tunnel, monkeypatch, settings
):
    monkeypatch.setattr(services, "enqueue_images", lambda ids, **kw: None)
    settings.DEFAULT_MM_PER_PX = 1.0
    run = make_run(tunnel)
    files = [incoming(f"{k}.jpg", survey_jpeg(10 + k)) for k in range(3)]
    services.upload_survey(run=run, files=files, start_chainage_m=400.0, direction="decreasing")
    placed = _footprints(run)
    assert placed["0.jpg"] == pytest.approx((399.52, 400.0))
    assert placed["1.jpg"] == pytest.approx((399.04, 399.52))
    assert placed["2.jpg"] == pytest.approx((398.56, 399.04))
    more = [incoming("3.jpg", survey_jpeg(20))]
    services.upload_survey(run=run, files=more)  # continues after the images so far
    assert _footprints(run)["3.jpg"] == pytest.approx((400.0, 400.48))


def test_the_new_inspection_form_reports_manifest_problems(client, tunnel, inspector, monkeypatch):
    monkeypatch.setattr(services, "enqueue_images", lambda ids, **kw: None)
    client.force_login(inspector)
    response = client.post(
        f"/tunnels/{tunnel.code}/runs/new/",
        {
            "date": "2026-05-01",
            "files": [SimpleUploadedFile("x.jpg", survey_jpeg(5), "image/jpeg")],
            "manifest": SimpleUploadedFile("m.csv", (HEADER + "typo.jpg,0,1,0,1,\n").encode()),
        },
        follow=True,
    )
    page = response.content.decode()
    assert "manifest rows without a file in this upload (1): typo.jpg" in page
    assert "not in the manifest, laid out along the chainage (1): x.jpg" in page


def test_the_api_lists_unused_rows_and_unplaced_files(client, tunnel, inspector, monkeypatch):
    monkeypatch.setattr(services, "enqueue_images", lambda ids, **kw: None)
    run = make_run(tunnel)
    client.force_login(inspector)
    response = client.post(
        f"/api/runs/{run.pk}/images/",
        {
            "files": [SimpleUploadedFile("x.jpg", survey_jpeg(6), "image/jpeg")],
            "manifest": SimpleUploadedFile("m.csv", (HEADER + "typo.jpg,0,1,0,1,\n").encode()),
            "start_chainage_m": "120.5",
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["unused_manifest_rows"] == ["typo.jpg"]
    assert response.json()["unplaced"] == ["x.jpg"]
    assert run.images.get().chainage_start_m == pytest.approx(120.5)


@pytest.mark.parametrize(
    "row",
    [
        "ok0.jpg,0,1e308,0,1,",  # an absurd chainage: its scale would be infinite
        "ok0.jpg,0,1,0,1,inf",
        "ok0.jpg,0,1,0,1,0.0000001",
        "ok0.jpg,nan,1,0,1,",
    ],
)
def test_absurd_footprints_are_refused_with_the_line(row):
    with pytest.raises(UploadError, match="manifest line 2"):
        parse_manifest((HEADER + row + "\n").encode())


def test_a_manager_moves_an_image_and_its_cracks_follow(tunnel):
    run = make_run(tunnel, "2025-01-01")
    image = make_image(run, "a.jpg", (10.0, 12.0), (0.0, 1.0), (2000, 1000))
    crack = make_crack(image, 0, (10.5, 0.5), (11.5, 0.5), width_mm=0.4)
    track_run(run)
    services.correct_footprint(
        image=image, footprint=Footprint(110.0, 114.0, 2.0, 4.0, 2.0)
    )  # moved 100 m, and its scale doubled
    crack.refresh_from_db()
    ((start, end),) = crack.polyline_m
    assert start == pytest.approx([111.0, 3.0]) and end == pytest.approx([113.0, 3.0])
    assert crack.length_mm == pytest.approx(2000.0)
    assert crack.width_max_mm == pytest.approx(0.8) and crack.severity == "moderate"
    with pytest.raises(UploadError):
        services.correct_footprint(image=image, footprint=Footprint(5.0, 4.0, 0.0, 1.0))


def test_the_image_page_form_moves_the_image_for_managers_only(client, tunnel, manager, inspector):
    run = make_run(tunnel)
    image = make_image(run, "a.jpg", (0.0, 2.0), (0.0, 1.0), (2000, 1000))
    body = {"chainage_start_m": 7, "chainage_end_m": 9, "arc_start_m": 0, "arc_end_m": 1}
    client.force_login(inspector)
    assert client.post(f"/images/{image.pk}/footprint/", body).status_code == 403
    client.force_login(manager)
    page = client.get(f"/images/{image.pk}/")
    assert b"Correct where this image lies" in page.content
    client.post(f"/images/{image.pk}/footprint/", body)
    image.refresh_from_db()
    assert (image.chainage_start_m, image.mm_per_px) == (7.0, 1.0)


def test_run_page_lists_images_by_chainage(client, tunnel, inspector):
    run = make_run(tunnel)
    for name, start in (("far.jpg", 30.0), ("near.jpg", 1.0), ("mid.jpg", 12.0)):
        make_image(run, name, (start, start + 1), (0.0, 1.0))
    SurveyImage.objects.create(run=run, original_name="bad.jpg", status="failed", error="x")
    client.force_login(inspector)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    order = [page.index(n) for n in ("near.jpg", "mid.jpg", "far.jpg")]
    assert order == sorted(order)
