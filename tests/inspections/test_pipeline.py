"""Upload → real Celery worker → segmentation → cracks, against the configured database and broker."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crackportal.inspections import services
from crackportal.inspections.models import Crack, InspectionRun, SurveyImage
from crackportal.inspections.tasks import segment_image_task
from tests.conftest import survey_jpeg, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MANIFEST = (
    "filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m,mm_per_px\n"
    "a.jpg,100.0,100.24,1.0,1.16,0.5\n"
    "b.jpg,100.24,100.48,1.0,1.16,0.5\n"
    "c.jpg,100.48,100.72,1.0,1.16,0.5\n"
)


def _upload(client, tunnel, files, manifest=None):
    data = {"date": "2026-11-01", "label": "test survey", "files": files}
    if manifest is not None:
        data["manifest"] = SimpleUploadedFile("manifest.csv", manifest.encode(), "text/csv")
    response = client.post(reverse("run-create", args=[tunnel.code]), data)
    assert response.status_code == 302, response.content[:2000]
    return InspectionRun.objects.latest("created_at")


def _settled(run):
    return not run.images.exclude(
        status__in=[SurveyImage.Status.DONE, SurveyImage.Status.FAILED]
    ).exists()


def test_three_images_with_manifest_are_all_processed(worker, client, tunnel, inspector):
    client.force_login(inspector)
    files = [
        SimpleUploadedFile(f"{n}.jpg", survey_jpeg(seed=i), "image/jpeg")
        for i, n in enumerate("abc")
    ]
    run = _upload(client, tunnel, files, MANIFEST)

    wait_for(lambda: _settled(run), what="three images to be processed")
    images = {i.original_name: i for i in run.images.all()}
    assert {i.status for i in images.values()} == {"done"}, [i.error for i in images.values()]
    assert images["b.jpg"].chainage_start_m == 100.24 and images["b.jpg"].chainage_end_m == 100.48
    assert images["c.jpg"].arc_start_m == 1.0 and images["c.jpg"].mm_per_px == 0.5
    assert all(i.mask and i.overlay and i.model_version_id for i in images.values())
    cracks = Crack.objects.filter(image__run=run)
    assert cracks.count() >= 3  # two drawn cracks per image
    crack = cracks.filter(image=images["b.jpg"]).first()
    chainages = [pt[0] for branch in crack.polyline_m for pt in branch]
    assert 100.24 <= min(chainages) and max(chainages) <= 100.48
    assert crack.length_mm > 20 and crack.width_max_mm > 0
    run.refresh_from_db()
    assert run.status == InspectionRun.Status.DONE
    # the finished run is handed to the tracking task: every crack gets a track
    wait_for(lambda: not cracks.filter(track__isnull=True).exists(), what="cracks to be tracked")


def test_corrupt_file_fails_with_reason_and_the_others_go_through(
    worker, client, tunnel, inspector
):
    client.force_login(inspector)
    good = [
        SimpleUploadedFile(f"good{i}.jpg", survey_jpeg(seed=10 + i), "image/jpeg") for i in range(2)
    ]
    truncated = SimpleUploadedFile("broken.jpg", survey_jpeg(seed=20)[:3000], "image/jpeg")
    run = _upload(client, tunnel, [*good, truncated])

    wait_for(lambda: _settled(run), what="the upload to settle")
    broken = run.images.get(original_name="broken.jpg")
    assert broken.status == "failed"
    assert "truncated" in broken.error or "corrupt" in broken.error
    assert not broken.file  # nothing half-stored
    assert set(run.images.exclude(pk=broken.pk).values_list("status", flat=True)) == {"done"}


def test_rerunning_the_task_replaces_cracks_instead_of_duplicating(
    worker, client, tunnel, inspector
):
    client.force_login(inspector)
    run = _upload(
        client, tunnel, [SimpleUploadedFile("once.jpg", survey_jpeg(seed=30), "image/jpeg")]
    )
    wait_for(lambda: _settled(run), what="the first pass")
    image = run.images.get()
    assert image.status == "done"
    first_count, first_processed = image.cracks.count(), image.processed_at
    assert first_count > 0

    services.enqueue_images([image.pk])  # how a re-run is requested
    segment_image_task.delay(image.pk)  # a duplicate delivery of the same message: a no-op
    wait_for(
        lambda: (
            SurveyImage.objects.get(pk=image.pk).processed_at != first_processed
            and SurveyImage.objects.get(pk=image.pk).status == "done"
        ),
        what="the second pass",
    )
    image.refresh_from_db()
    assert image.cracks.count() == first_count
    assert list(image.cracks.values_list("index", flat=True)) == list(range(first_count))
    assert image.attempts == 1  # a re-run gets a fresh attempt budget; the duplicate did nothing


def test_a_crack_cut_by_an_image_border_is_one_track_and_its_neighbour_its_own(
    worker, client, tunnel, inspector
):
    """Through the network and the geometry: one photo cut in two at its middle, as a survey
    stores it. The crack running across the cut is stitched into one track; a second crack
    starting at the cut 25 mm beside it is not (with the 50 mm of matching across
    inspections it was, and dense cracks on real photos became one track)."""
    import numpy as np

    from inference.synthetic import concrete_texture, rasterise_polyline, wandering_path
    from tests.conftest import jpeg_bytes

    rng = np.random.default_rng(21)
    photo = concrete_texture(320, 480, rng)
    # crack-like wandering paths (the model takes ruled lines for joints): "across" passes
    # the cut at row 158, "beside" starts at it at row 211, 26 mm away at 0.5 mm/px
    across = wandering_path([20.0, 150.0], [460.0, 170.0], rng)
    beside = wandering_path([241.0, 205.0], [450.0, 240.0], rng)
    for points in (across, beside):
        crack = rasterise_polyline((320, 480), points, 3.5)
        core = rasterise_polyline((320, 480), points, 1.75)
        photo[crack] = (photo[crack] * 0.45).astype(np.uint8)
        photo[core] = (photo[core] * 0.6).astype(np.uint8)
    files = [
        SimpleUploadedFile("left.jpg", jpeg_bytes(photo[:, :240]), "image/jpeg"),
        SimpleUploadedFile("right.jpg", jpeg_bytes(photo[:, 240:]), "image/jpeg"),
    ]
    manifest = (
        "filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m,mm_per_px\n"
        "left.jpg,10.0,10.12,1.0,1.16,0.5\n"
        "right.jpg,10.12,10.24,1.0,1.16,0.5\n"
    )
    client.force_login(inspector)
    run = _upload(client, tunnel, files, manifest)
    wait_for(lambda: _settled(run), what="both halves to be processed")
    cracks = Crack.objects.filter(image__run=run)
    wait_for(lambda: not cracks.filter(track__isnull=True).exists(), what="cracks to be tracked")

    def near(image_name, arc_m):  # the crack of that half passing closest to arc_m at the cut
        candidates = cracks.filter(image__original_name=image_name)
        return min(
            candidates,
            key=lambda c: min(
                abs(pt[0] - 10.12) * 10 + abs(pt[1] - arc_m) for b in c.polyline_m for pt in b
            ),
        )

    left, right = near("left.jpg", 1.079), near("right.jpg", 1.079)  # across, at the cut
    neighbour = near("right.jpg", 1.1055)  # beside, at the cut
    assert len({left.pk, right.pk, neighbour.pk}) == 3, list(cracks.values("polyline_m"))
    assert left.track_id == right.track_id != neighbour.track_id


def test_a_prediction_confirmed_or_a_mask_uploaded_on_the_image_page_is_what_reports_count(
    worker, client, tunnel, inspector
):
    """Both older ways to verify a mask (image page: "Confirm prediction as ground truth",
    "Upload mask") stored a verified version and left the cracks as the network had made
    them, unreviewed: a report still counted every detection "no one has checked", and a
    mask uploaded to correct an image (the way for images over 40 Mpx) changed nothing in it."""
    import io

    import numpy as np
    from PIL import Image
    from scipy import ndimage

    from crackportal.inspections.reviews import review_crack, review_progress

    client.force_login(inspector)
    run = _upload(
        client,
        tunnel,
        [SimpleUploadedFile("v.jpg", survey_jpeg(seed=40, n_cracks=3), "image/jpeg")],
    )
    wait_for(lambda: _settled(run), what="the image to be processed")
    image = run.images.get()
    figures = ("length_mm", "width_max_mm")
    detected = sorted(image.cracks.values_list(*figures))
    assert len(detected) >= 2 and review_progress(run)["reviewed"] == 0

    # confirming the prediction accepts its cracks as they were measured
    client.post(reverse("image-annotate", args=[image.pk]), {"confirm": "1"})
    accepted = Crack.objects.filter(image=image, review=Crack.Review.ACCEPTED)
    wait_for(lambda: accepted.count() == len(detected), what="the confirmed cracks accepted")
    confirmed = sorted(accepted.values_list(*figures))
    assert np.ravel(confirmed) == pytest.approx(np.ravel(detected))
    assert review_progress(run)["reviewed"] == 1
    assert {c.reviews.get().reviewer for c in accepted} == {inspector}

    # a mask drawn elsewhere that keeps one piece of crack: the image has that one
    with image.mask.open("rb") as fh:
        mask = np.asarray(Image.open(fh).convert("L")) > 127
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    largest = labels == np.argmax(np.bincount(labels[labels > 0]))
    buffer = io.BytesIO()
    Image.fromarray(largest.astype(np.uint8) * 255).save(buffer, format="PNG")
    response = client.post(
        reverse("image-annotate", args=[image.pk]),
        {"mask": SimpleUploadedFile("fixed.png", buffer.getvalue(), "image/png")},
    )
    assert response.status_code == 302
    wait_for(lambda: image.cracks.count() == 1, what="the cracks measured from the uploaded mask")
    crack = image.cracks.get()
    assert crack.review == Crack.Review.ACCEPTED
    rows, cols = np.nonzero(largest)
    extent_px = max(np.ptp(rows), np.ptp(cols))
    assert 0.9 * extent_px <= crack.length_mm / image.mm_per_px <= largest.sum()
    # the overlay is that mask now
    image.refresh_from_db()
    assert image.overlay_annotation.source == "uploaded"
    with image.overlay.open("rb") as fh:
        assert np.array_equal(np.asarray(Image.open(fh).convert("RGBA"))[..., 3] > 0, largest)

    # segmented again (a reprocess with another model): the verified mask still makes the
    # crack, and a decision taken on it since stays (it came back as the network's three
    # unreviewed detections)
    review_crack(crack=crack, decision="rejected", reason="stain", reviewer=inspector)
    processed = image.processed_at
    services.enqueue_images([image.pk])
    wait_for(
        lambda: (
            SurveyImage.objects.filter(pk=image.pk, status="done")
            .exclude(processed_at=processed)
            .exists()
        ),
        what="the image segmented again",
    )
    wait_for(
        lambda: Crack.objects.filter(image=image, review=Crack.Review.REJECTED).exists(),
        what="the verified crack measured again",
    )
    image.refresh_from_db()
    assert image.cracks.count() == 1 and image.overlay_annotation.source == "uploaded"
