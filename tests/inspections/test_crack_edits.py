"""Review beyond accept/reject (issue 18): pieces of one crack merged, a crack of several
branches split, a detection re-classed; each kept in its history, the inspection re-tracked."""

import pytest
from django.urls import reverse

from crackportal.inspections import reviews
from crackportal.inspections.models import Crack, CrackReview
from crackportal.inspections.tracking import track_run
from tests.factories import make_crack, make_image, make_run


@pytest.fixture
def pieces(db, tunnel, monkeypatch):
    from crackportal.inspections import services

    retracked = []
    monkeypatch.setattr(services, "enqueue_tracking", retracked.append)
    run = make_run(tunnel)
    image = make_image(run, "a.jpg", (0.0, 0.48), (0.0, 0.32), (480, 320))
    a = make_crack(image, 0, (0.05, 0.10), (0.20, 0.10), width_mm=0.3)
    b = make_crack(image, 1, (0.24, 0.10), (0.40, 0.12), width_mm=1.2)
    other = make_crack(image, 2, (0.10, 0.25), (0.10, 0.30), width_mm=0.1)
    run.status = "done"
    run.save()
    track_run(run)
    return image, a, b, other, retracked


def test_two_pieces_merge_into_one_crack_with_summed_length_and_the_widest_width(
    client, pieces, inspector, django_capture_on_commit_callbacks
):
    image, a, b, other, retracked = pieces
    client.force_login(inspector)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("image-merge", args=[image.pk]), {"crack": [a.pk, b.pk]})
    assert response.status_code == 302
    merged = Crack.objects.get(pk=a.pk)
    assert not Crack.objects.filter(pk=b.pk).exists()
    assert merged.length_mm == pytest.approx(a.length_mm + b.length_mm)
    assert merged.width_max_mm == 1.2 and merged.severity == "severe"
    assert len(merged.polyline_m) == 2 and merged.chainage_max_m == pytest.approx(0.40)
    assert merged.review == "accepted" and image.cracks.count() == 2
    edit = merged.reviews.get()
    assert edit.action == "merge" and edit.detail["merged"] == [b.pk] and edit.reviewer == inspector
    assert retracked == [image.run_id]


def test_merging_needs_two_detections_of_one_image(pieces, tunnel):
    image, a, *_ = pieces
    with pytest.raises(reviews.ReviewError, match="at least two"):
        reviews.merge_cracks(cracks=[a])
    elsewhere = make_crack(
        make_image(image.run, "b.jpg", (1, 1.48), (0, 0.32), (480, 320)),
        0,
        (1.1, 0.1),
        (1.2, 0.1),
        width_mm=0.2,
    )
    with pytest.raises(reviews.ReviewError, match="one image"):
        reviews.merge_cracks(cracks=[a, elsewhere])


def test_a_merged_crack_splits_back_into_its_branches(client, pieces, inspector):
    image, a, b, other, retracked = pieces
    merged = reviews.merge_cracks(cracks=[a, b], reviewer=inspector)
    client.force_login(inspector)
    page = client.get(merged.get_absolute_url()).content.decode()
    assert "Split into its 2 branches" in page
    client.post(reverse("crack-split", args=[merged.pk]))
    parts = list(image.cracks.exclude(pk=other.pk).order_by("chainage_min_m"))
    assert len(parts) == 2
    assert parts[0].length_mm == pytest.approx(a.length_mm, rel=1e-3)
    assert parts[1].length_mm == pytest.approx(b.length_mm, rel=1e-3)
    assert {p.action for p in CrackReview.objects.filter(crack__in=parts)} >= {"split"}
    # a crack of one branch cannot be split: the message says to correct the mask
    response = client.post(reverse("crack-split", args=[other.pk]), follow=True)
    assert "correct the mask" in response.content.decode()


def test_a_detection_is_re_classed_and_the_change_is_kept(client, pieces, inspector):
    _, a, *_ = pieces
    client.force_login(inspector)
    client.post(
        reverse("crack-reclass", args=[a.pk]), {"orientation": "transverse", "next": "crack"}
    )
    a.refresh_from_db()
    assert a.orientation == "transverse"
    edit = a.reviews.get()
    assert edit.action == "reclass" and edit.detail["orientation"][1] == "transverse"
    page = client.get(a.get_absolute_url()).content.decode()
    assert "re-classed" in page
    response = client.post(
        reverse("crack-reclass", args=[a.pk]), {"orientation": "zigzag"}, follow=True
    )
    assert "Not re-classed" in response.content.decode()
