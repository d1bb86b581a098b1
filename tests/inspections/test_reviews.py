"""Review: a rejected detection leaves the map, tracking, reports and counts; history is kept."""

import pytest

from crackportal.inspections import reviews
from crackportal.inspections.maps import MapFilters, map_data
from crackportal.inspections.models import Crack, CrackReview
from crackportal.inspections.tracking import track_run
from crackportal.reports import services as reports
from crackportal.reports.exports import crack_rows
from tests.factories import make_crack, make_image, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def inspection(tunnel):
    run = make_run(tunnel, "2026-05-01")
    image = make_image(run, "a.jpg", (0.0, 2.0), (0.0, 1.0))
    real = make_crack(image, 0, (0.2, 0.3), (0.9, 0.3), width_mm=0.4)
    joint = make_crack(image, 1, (1.5, 0.0), (1.5, 1.0), width_mm=2.0, orientation="transverse")
    track_run(run)
    return run, image, real, joint


def test_a_rejected_detection_leaves_the_map_tracks_and_reports(inspection, inspector, client):
    from crackportal.inspections.selectors import run_progress

    run, image, real, joint = inspection
    reviews.review_crack(crack=joint, decision="rejected", reason="joint", reviewer=inspector)
    track_run(run)  # what the queued re-tracking does
    # the run's crack count, its progress feed and the API say 1, as the image table did (the
    # run page read "12 cracks" above images of 1 + 1 + 8 + 1 after one was rejected)
    assert run_progress(run)["cracks"] == 1
    client.force_login(inspector)
    assert client.get(f"/api/images/?run={run.pk}").json()["results"][0]["n_cracks"] == 1
    assert [c["id"] for c in map_data(run, MapFilters())["cracks"]] == [real.pk]
    assert [r["crack_id"] for r in crack_rows(run)] == [real.pk]
    joint.refresh_from_db()
    assert joint.track_id is None and (joint.review, joint.review_reason) == ("rejected", "joint")
    review = CrackReview.objects.get(crack=joint)
    assert (review.decision, review.reason, review.reviewer) == ("rejected", "joint", inspector)


def test_a_rejection_needs_a_reason_and_history_is_kept(inspection, inspector):
    _, _, real, _ = inspection
    with pytest.raises(reviews.ReviewError, match="needs a reason"):
        reviews.review_crack(crack=real, decision="rejected", reviewer=inspector)
    reviews.review_crack(crack=real, decision="rejected", reason="stain", reviewer=inspector)
    reviews.review_crack(crack=real, decision="accepted", reviewer=inspector)
    assert list(CrackReview.objects.filter(crack=real).values_list("decision", flat=True)) == [
        "accepted",
        "rejected",
    ]
    real.refresh_from_db()
    assert (real.review, real.review_reason) == ("accepted", "")


def test_review_progress_counts_images_whose_every_detection_is_decided(inspection, inspector):
    run, image, real, joint = inspection
    assert reviews.review_progress(run)["reviewed"] == 0
    reviews.review_crack(crack=joint, decision="rejected", reason="joint", reviewer=inspector)
    progress = reviews.review_progress(run)
    assert (progress["reviewed"], progress["images"], progress["rejected"]) == (0, 1, 1)
    assert progress["next_image"] == image
    assert reviews.accept_the_rest(image=image, reviewer=inspector) == 1
    assert reviews.review_progress(run)["complete"]


def test_the_image_page_records_decisions_and_the_run_page_counts_them(
    client, inspection, inspector, settings, tmp_path
):
    from django.core.files.base import ContentFile

    from tests.conftest import survey_jpeg

    settings.MEDIA_ROOT = tmp_path
    run, image, real, joint = inspection
    image.file.save("a.jpg", ContentFile(survey_jpeg(seed=2)))
    client.force_login(inspector)
    page = client.get(image.get_absolute_url()).content.decode()
    assert f'action="/cracks/{joint.pk}/review/"' in page and "formwork line" in page
    rejected = client.post(
        f"/cracks/{joint.pk}/review/", {"decision": "accepted", "reason": "formwork", "reject": "1"}
    )
    # back on the image with the next detection still to review chosen (round to the first)
    assert rejected.url == f"{image.get_absolute_url()}?crack={real.pk}"
    accepted = client.post(f"/cracks/{real.pk}/review/", {"decision": "accepted", "reason": ""})
    assert accepted.url == image.get_absolute_url()  # none left to review
    joint.refresh_from_db()
    real.refresh_from_db()
    assert (joint.review, joint.review_reason, real.review) == ("rejected", "formwork", "accepted")
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Reviewed <b>1 of 1</b> images" in page and "1 detection rejected" in page


def test_a_tunnel_that_requires_review_gets_no_report_before_it(inspection, manager, client):
    run, image, _, _ = inspection
    run.tunnel.require_review = True
    run.tunnel.save()
    with pytest.raises(ValueError, match="requires review before a report: 0 of 1"):
        reports.request_report(run=run, kind="pdf", user=manager)
    client.force_login(manager)
    response = client.post(f"/runs/{run.pk}/reports/", {"kind": "pdf"}, follow=True)
    assert "requires review before a report" in response.content.decode()
    reviews.accept_the_rest(image=image, reviewer=manager)
    assert reports.request_report(run=run, kind="pdf", user=manager).pk


def test_the_pdf_says_how_much_was_reviewed(inspection, manager, inspector):
    import pypdfium2

    run, _, _, joint = inspection
    reviews.review_crack(crack=joint, decision="rejected", reason="joint", reviewer=inspector)
    report = reports.request_report(run=run, kind="pdf", user=manager)
    assert reports.build_report(report_id=report.pk)
    report.refresh_from_db()
    pdf = pypdfium2.PdfDocument(report.file.open("rb").read())
    text = " ".join(pdf[0].get_textpage().get_text_range().split())
    assert "Reviewed 0 of 1 processed images (0 %); 1 detection rejected" in text
    assert Crack.objects.counted().filter(image__run=run).count() == 1
