"""Correcting a mask (issue 18): versioned verified masks, one current per image, cracks
measured again from the correction; drawn with the mouse in a real browser."""

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from crackportal.inspections import annotations, processing
from crackportal.inspections.models import Annotation, Crack, SurveyImage
from inference.synthetic import survey_image
from tests.conftest import login
from tests.factories import make_image, make_run


def _png(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def photo(db, tunnel, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    rgb, truth, _ = survey_image(480, 320, n_cracks=2, seed=11, widths_px=(3.0, 5.0))
    run = make_run(tunnel)
    image = make_image(run, "c.png", (0.0, 0.48), (0.0, 0.32), (480, 320))
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    image.file.save("c.png", ContentFile(buffer.getvalue()))
    SurveyImage.objects.filter(pk=image.pk).update(status="done", mm_per_px=1.0)
    image.refresh_from_db()
    return image, truth


def test_each_save_is_a_new_current_version_and_the_same_mask_is_not(photo, inspector):
    image, truth = photo
    first = annotations.upload_annotation(
        image=image, stream=io.BytesIO(_png(truth)), user=inspector
    )
    again = annotations.upload_annotation(
        image=image, stream=io.BytesIO(_png(truth)), user=inspector
    )
    assert again.pk == first.pk and image.annotations.count() == 1
    fixed = truth.copy()
    first_column = int(np.nonzero(truth.any(axis=0))[0][0])
    fixed[:, first_column : first_column + 40] = False  # an eraser over a strip of crack
    second = annotations.upload_annotation(
        image=image,
        stream=io.BytesIO(_png(fixed)),
        user=inspector,
        source=Annotation.Source.CORRECTED,
    )
    first.refresh_from_db()
    assert (first.version, first.is_current) == (1, False)
    assert (second.version, second.is_current, second.source) == (2, True, "corrected")
    assert list(image.annotations.filter(is_current=True)) == [second]


def test_the_correction_page_saves_a_version_and_refuses_a_wrong_size(client, photo, inspector):
    image, truth = photo
    client.force_login(inspector)
    page = client.get(reverse("image-correct", args=[image.pk])).content.decode()
    assert 'id="tool-brush"' in page and 'id="undo"' in page and "an empty mask" in page
    response = client.post(
        reverse("image-correct", args=[image.pk]),
        {"mask": SimpleUploadedFile("m.png", _png(np.zeros((10, 10), bool)), "image/png")},
    )
    assert response.status_code == 400 and "10×10" in response.json()["error"]
    response = client.post(
        reverse("image-correct", args=[image.pk]),
        {"mask": SimpleUploadedFile("m.png", _png(truth), "image/png")},
    )
    assert response.status_code == 200 and response.json()["version"] == 1
    current = Annotation.objects.get(image=image)
    assert client.get(reverse("annotation-mask", args=[current.pk])).status_code == 200
    page = client.get(image.get_absolute_url()).content.decode()
    assert 'id="annotations"' in page and "corrected in the browser" in page


def test_cracks_are_measured_again_from_the_current_correction(photo, inspector):
    image, truth = photo
    annotation = annotations.upload_annotation(
        image=image, stream=io.BytesIO(_png(truth)), user=inspector, source="corrected"
    )
    assert processing.measure_from_annotation(annotation_id=annotation.pk) >= 1
    cracks = Crack.objects.filter(image=image)
    assert cracks.exists() and set(cracks.values_list("review", flat=True)) == {"accepted"}
    assert all(c.reviews.get().reviewer == inspector for c in cracks)
    widths = sorted(c.width_max_mm for c in cracks)
    assert (
        2.0 <= widths[0] and widths[-1] <= 10.0
    )  # drawn 3–5 px wide at 1 mm/px (wider where they cross)
    # an older version superseded by a newer one does not measure
    newer = annotations.upload_annotation(
        image=image, stream=io.BytesIO(_png(np.zeros_like(truth))), user=inspector
    )
    assert processing.measure_from_annotation(annotation_id=annotation.pk) == 0
    assert processing.measure_from_annotation(annotation_id=newer.pk) == 0
    assert not Crack.objects.filter(image=image).exists()


@pytest.mark.browser
@pytest.mark.slow
def test_inspector_paints_a_crack_erases_undoes_and_saves(
    live_server, page, photo, inspector, artifacts_dir, monkeypatch
):
    from crackportal.inspections import views

    measured = []
    monkeypatch.setattr(views, "_measure_annotation", measured.append)  # no worker here
    image, _ = photo
    login(page, live_server, "inspector", "inspect-pass-123")
    page.goto(f"{live_server.url}/images/{image.pk}/correct/")
    page.wait_for_function("() => document.getElementById('editor').dataset.ready === '1'")
    box = page.locator("#editor").bounding_box()
    page.click("#tool-brush")
    page.fill("#tool-width", "6")
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.06 * k), y)
    page.mouse.up()
    # a second stroke, then undo it with Ctrl+Z: only the first is saved. The keys work
    # after typing a width: drawing takes the focus from the width field (it kept it, and
    # Ctrl+Z undid the typing in the field instead of the stroke)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] - 20)
    page.mouse.up()
    page.keyboard.press("Control+z")
    assert page.input_value("#tool-width") == "6"
    page.screenshot(path=str(artifacts_dir / "correct-editor.png"), full_page=True)
    page.click("#save")
    page.wait_for_function("() => document.getElementById('editor').dataset.saved === '1'")
    annotation = Annotation.objects.get(image=image)
    assert (
        annotation.source == "corrected" and annotation.is_current and measured == [annotation.pk]
    )
    with annotation.mask.open("rb") as fh:
        mask = np.asarray(Image.open(fh).convert("L")) > 127
    rows, cols = np.nonzero(mask)
    assert mask.shape == (320, 480) and len(rows) > 0
    assert rows.max() - rows.min() <= 15  # one horizontal stroke ~6 px wide, no vertical one
    assert cols.max() - cols.min() > 150


def test_only_a_new_verified_version_has_the_cracks_measured_again(
    client, photo, inspector, monkeypatch, django_capture_on_commit_callbacks
):
    """Each way to verify a mask measures the cracks from a new version, once: the same mask
    again (a double click, a re-upload) keeps the review decisions taken since."""
    from crackportal.inspections import views

    measured = []
    monkeypatch.setattr(views, "_measure_annotation", measured.append)
    image, truth = photo
    client.force_login(inspector)

    def upload(url_name, mask):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse(url_name, args=[image.pk]),
                {"mask": SimpleUploadedFile("m.png", _png(mask), "image/png")},
                follow=url_name == "image-annotate",
            )

    image.mask.save("p.png", ContentFile(_png(truth)))  # the model's prediction
    assert (
        "Confirm prediction as ground truth"
        in client.get(image.get_absolute_url()).content.decode()
    )
    page = upload("image-annotate", truth).content.decode()
    first = Annotation.objects.get(image=image, is_current=True)
    assert measured == [first.pk] and "measured again from it" in page
    # over an inspector's own mask the button says what it would do (it read "Confirm
    # prediction", while the red now showed the uploaded mask)
    assert "Use the model's prediction instead (replaces verified version 1)" in page
    page = upload("image-annotate", truth).content.decode()
    assert measured == [first.pk] and "already the current verified version 1" in page
    assert upload("image-correct", truth).json()["version"] == 1 and measured == [first.pk]
    fixed = truth.copy()
    fixed[:, :100] = False
    assert upload("image-correct", fixed).json()["version"] == 2
    assert measured == [first.pk, Annotation.objects.get(image=image, version=2).pk]


def _red(png) -> np.ndarray:
    with Image.open(png) as im:
        return np.asarray(im.convert("RGBA"))[..., 3] > 0


def test_the_overlay_shows_the_verified_mask_the_cracks_are_measured_from(
    client, db, tunnel, settings, tmp_path, inspector
):
    """After a correction the page drew the cracks' outlines from the verified mask over the
    model's red prediction: a joint erased from the mask still showed red, with no outline.
    The overlay (and a large image's deep-zoom tiles) now follows the measured mask, under a
    new URL so a browser's kept tiles are not shown."""
    from crackportal.inspections import pyramid
    from crackportal.media import publish_tree

    settings.MEDIA_ROOT = tmp_path
    rgb, truth, _ = survey_image(2200, 240, n_cracks=2, seed=5, widths_px=(3.0, 4.0))
    image = make_image(make_run(tunnel), "wide.png", (0.0, 2.2), (0.0, 0.24), (2200, 240))
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    image.file.save("wide.png", ContentFile(buffer.getvalue()))
    predicted = np.zeros_like(truth)
    predicted[100:104, 50:2150] = True  # a joint along the image, where no crack is
    with tempfile.TemporaryDirectory() as scratch:
        pyramid.build_dzi(rgb, Path(scratch), "photo")
        pyramid.build_mask_dzi(predicted, Path(scratch), "overlay")
        publish_tree(Path(scratch), image.pyramid_prefix)
    image.overlay.save("o.png", processing._overlay_png(predicted), save=False)
    image.status, image.mm_per_px, image.processed_at = "done", 1.0, timezone.now()
    image.save()
    client.force_login(inspector)
    before = image.overlay_stamp
    page = client.get(image.get_absolute_url()).content.decode()
    assert f"/dz/overlay-{before}.dzi" in page and "Red: the model's prediction" in page

    annotation = annotations.upload_annotation(
        image=image, stream=io.BytesIO(_png(truth)), user=inspector
    )
    assert processing.measure_from_annotation(annotation_id=annotation.pk) >= 1
    image.refresh_from_db()
    assert image.overlay_annotation == annotation and image.overlay_stamp != before
    assert np.array_equal(_red(image.overlay.open("rb")), truth)
    page = client.get(image.get_absolute_url()).content.decode()
    assert f"/dz/overlay-{image.overlay_stamp}.dzi" in page
    assert "Red: verified version 1 (uploaded mask by inspector)" in page
    # the full-resolution tiles are the verified mask's; the photo's pyramid is kept
    tile = client.get(f"/images/{image.pk}/dz/overlay-{image.overlay_stamp}_files/12/0_0.png")
    assert tile.status_code == 200
    assert np.array_equal(_red(io.BytesIO(b"".join(tile.streaming_content))), truth[:, :511])
    assert client.get(f"/images/{image.pk}/dz/photo.dzi").status_code == 200
    assert client.get(f"/images/{image.pk}/dz/overlay-x.dzi").status_code == 404
    # measured again with newer geometry code (remeasure_cracks): from the verified mask still,
    # and a detection rejected since stays rejected
    from crackportal.inspections.reviews import review_crack

    count = image.cracks.count()
    review_crack(crack=image.cracks.first(), decision="rejected", reason="stain")
    assert processing.remeasure_image(image_id=image.pk) == count
    assert sorted(image.cracks.values_list("review", flat=True)) == sorted(
        ["rejected"] + ["accepted"] * (count - 1)
    )


def test_measuring_again_keeps_the_review_decisions(photo, inspector):
    """remeasure_cracks (after a geometry upgrade) replaced every crack row and with them the
    decisions: a reviewed inspection came back unreviewed, its rejected joints in reports."""
    from crackportal.inspections.reviews import review_crack

    image, _ = photo
    mask = np.zeros((320, 480), bool)
    mask[80:84, 40:440] = mask[220:224, 40:440] = True  # two cracks far apart
    image.mask.save("m.png", ContentFile(_png(mask)))
    assert processing.remeasure_image(image_id=image.pk) == 2
    first, second = Crack.objects.filter(image=image).order_by("index")
    review_crack(crack=first, decision="rejected", reason="joint", reviewer=inspector)
    review_crack(crack=second, decision="accepted", reviewer=inspector)
    assert processing.remeasure_image(image_id=image.pk) == 2
    kept = Crack.objects.filter(image=image).order_by("index")
    assert [(c.review, c.review_reason) for c in kept] == [("rejected", "joint"), ("accepted", "")]
    assert kept[0].reviews.get().reviewer == inspector


def test_measuring_again_keeps_merges_splits_reclasses_and_who_decided_when(
    photo, inspector, client
):
    """remeasure_cracks rebuilt the pieces an inspector had merged and the crack an inspector
    had split (their decisions fell away with them: box overlap matched no new crack), reset
    a re-class, and wrote a new history row dated the re-measure in place of who decided
    when. The review work now follows the line each new crack lies on."""
    from crackportal.inspections.reviews import merge_cracks, reclass_crack, split_crack

    image, _ = photo
    mask = np.zeros((320, 480), bool)
    mask[40:44, 20:160] = mask[90:94, 320:460] = True  # one crack, seen as two pieces
    mask[180:184, 40:440] = True  # a crack with a branch: the inspector saw two cracks
    mask[184:300, 238:242] = True
    image.mask.save("m.png", ContentFile(_png(mask)))
    processing.remeasure_image(image_id=image.pk)
    pieces = [c for c in Crack.objects.filter(image=image) if c.bbox_px[3] < 100]
    branched = next(c for c in Crack.objects.filter(image=image) if len(c.polyline_px) > 1)
    assert len(pieces) == 2 and Crack.objects.filter(image=image).count() == 3
    merged = merge_cracks(cracks=pieces, reviewer=inspector)
    parts = split_crack(crack=branched, reviewer=inspector)
    stem = max(parts, key=lambda c: c.bbox_px[3])  # the branch reaching down
    from crackportal.inspections.reviews import review_crack

    review_crack(crack=stem, decision="rejected", reason="joint", reviewer=inspector)
    reclass_crack(crack=merged, orientation="diagonal", reviewer=inspector)

    def state():
        rows = sorted(Crack.objects.filter(image=image), key=lambda c: c.bbox_px[1:])
        return [
            (
                c.bbox_px,
                len(c.polyline_px),
                c.review,
                c.review_reason,
                c.orientation,
                [(r.action, r.decision, r.reviewer_id, r.created_at) for r in c.reviews.all()],
            )
            for c in rows
        ]

    before = state()
    assert len(before) == 4
    assert [s[2] for s in before] == ["accepted", "accepted", "accepted", "rejected"]
    assert processing.remeasure_image(image_id=image.pk) == 4  # three measured, one re-split
    after = state()
    assert after == before
    # the crack's page tells who decided what, and when
    rejected = Crack.objects.get(image=image, review="rejected")
    client.force_login(inspector)
    page = client.get(reverse("crack-detail", args=[rejected.pk])).content.decode()
    decided_at = timezone.localtime(rejected.reviews.first().created_at)
    assert f"{decided_at:%Y-%m-%d %H:%M} · inspector · rejected: joint" in page


@pytest.mark.parametrize("seed", range(4))
def test_review_work_survives_measuring_again_on_drawn_crack_networks(photo, inspector, seed):
    """Random review work (merges of any two detections, splits, rejections with reasons,
    re-classes) on drawn cracks that cross and branch: measured again, and again, every
    crack comes back as the inspector left it."""
    from crackportal.inspections.reviews import (
        merge_cracks,
        reclass_crack,
        review_crack,
        split_crack,
    )

    image, _ = photo
    rng = np.random.default_rng(seed)
    _, mask, _ = survey_image(480, 320, n_cracks=5, seed=100 + seed, widths_px=(3.0, 5.0))
    image.mask.save("m.png", ContentFile(_png(mask)))
    processing.remeasure_image(image_id=image.pk)
    cracks = list(Crack.objects.filter(image=image).order_by("index"))
    branched = [c for c in cracks if len(c.polyline_px) > 1]
    if branched:
        split_crack(crack=branched[0], reviewer=inspector)
    cracks = list(Crack.objects.filter(image=image).order_by("index"))
    if len(cracks) >= 3:
        pair = rng.choice(len(cracks), 2, replace=False)
        merge_cracks(cracks=[cracks[i] for i in pair], reviewer=inspector)
    for crack in Crack.objects.filter(image=image).order_by("index"):
        roll = rng.uniform()
        if roll < 0.3:
            reason = str(rng.choice(["joint", "formwork", "stain", "cable"]))
            review_crack(crack=crack, decision="rejected", reason=reason, reviewer=inspector)
        elif roll < 0.6:
            review_crack(crack=crack, decision="accepted", reviewer=inspector)
        elif roll < 0.8:
            reclass_crack(crack=crack, orientation="network", reviewer=inspector)

    def state():
        return sorted(
            (
                sorted(tuple(p) for b in c.polyline_px for p in b),
                c.review,
                c.review_reason,
                c.orientation,
                [(r.action, r.decision, r.reason, r.created_at) for r in c.reviews.all()],
            )
            for c in Crack.objects.filter(image=image)
        )

    before = state()
    actions = {r[0] for c in before for r in c[4]}
    assert {"merge", "split"} <= actions and len(before) >= 3
    for _ in range(2):
        processing.remeasure_image(image_id=image.pk)
        assert state() == before


def test_measuring_a_verified_image_again_adds_no_history(photo, inspector):
    """Each re-measure of an image with a verified mask wrote another "accepted" row per crack
    dated that day (the annotator's acceptance again, besides the copy of the first), so
    after a few geometry upgrades the history said the annotator had accepted it each time."""
    image, truth = photo
    annotation = annotations.upload_annotation(
        image=image, stream=io.BytesIO(_png(truth)), user=inspector
    )
    processing.measure_from_annotation(annotation_id=annotation.pk)

    def history():
        return sorted(
            (c.bbox_px, [(r.decision, r.reviewer_id, r.created_at) for r in c.reviews.all()])
            for c in Crack.objects.filter(image=image)
        )

    first = history()
    assert first and all(len(rows) == 1 for _, rows in first)
    for _ in range(2):
        processing.remeasure_image(image_id=image.pk)
        assert history() == first
