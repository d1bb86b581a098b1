"""Server-rendered pages: login required, content shown, uploads reported (no worker needed)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crackportal.inspections import tasks
from crackportal.inspections.models import InspectionRun, SurveyImage
from tests.conftest import make_user, survey_jpeg


@pytest.mark.parametrize(
    "name, args",
    [
        ("tunnel-list", []),
        ("tunnel-create", []),
        ("tunnel-detail", ["T-TEST-01"]),
        ("run-create", ["T-TEST-01"]),
    ],
)
def test_pages_require_login(client, tunnel, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_tunnel_list_and_detail_show_the_tunnel(client, tunnel, inspector):
    client.force_login(inspector)
    assert "T-TEST-01" in client.get(reverse("tunnel-list")).content.decode()
    detail = client.get(reverse("tunnel-detail", args=[tunnel.code])).content.decode()
    assert "Test tunnel" in detail and "Upload the first survey" in detail


def test_empty_tunnel_list_says_what_to_do(client, manager, django_user_model):
    client.force_login(manager)
    assert "Add the first tunnel" in client.get(reverse("tunnel-list")).content.decode()
    client.force_login(make_user(django_user_model, "new-inspector", "inspector"))
    assert "Ask a manager" in client.get(reverse("tunnel-list")).content.decode()


def test_upload_stores_files_then_enqueues_on_commit(
    client, tunnel, inspector, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(tasks.segment_images_task, "delay", sent.append)
    client.force_login(inspector)
    files = [SimpleUploadedFile("a.jpg", survey_jpeg(1)), SimpleUploadedFile("b.txt", b"no image")]
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("run-create", args=[tunnel.code]), {"date": "2026-11-02", "files": files}
        )
    assert response.status_code == 302
    run = InspectionRun.objects.get()
    good, bad = run.images.get(original_name="a.jpg"), run.images.get(original_name="b.txt")
    assert (
        good.status == SurveyImage.Status.PENDING and good.file
    )  # stored and committed, not yet sent
    assert bad.status == SurveyImage.Status.FAILED and "not an accepted image type" in bad.error
    assert sent == []  # nothing goes to the workers before the commit
    for callback in callbacks:
        callback()
    assert sent == [[good.pk]]  # then one task, for the good file only


def test_broken_manifest_rejects_the_upload_and_stores_nothing(client, tunnel, inspector):
    client.force_login(inspector)
    response = client.post(
        reverse("run-create", args=[tunnel.code]),
        {
            "date": "2026-11-02",
            "files": [SimpleUploadedFile("a.jpg", survey_jpeg(1))],
            "manifest": SimpleUploadedFile("m.csv", b"filename,chainage_start_m\na.jpg,1\n"),
        },
    )
    assert response.status_code == 200
    assert "Manifest rejected" in response.content.decode()
    assert not InspectionRun.objects.exists() and not SurveyImage.objects.exists()


def test_same_file_twice_in_a_run_is_recognised(
    client, tunnel, inspector, django_capture_on_commit_callbacks
):
    client.force_login(inspector)
    data = survey_jpeg(5)
    client.post(
        reverse("run-create", args=[tunnel.code]),
        {
            "date": "2026-11-02",
            "files": [SimpleUploadedFile("x.jpg", data), SimpleUploadedFile("y.jpg", data)],
        },
    )
    run = InspectionRun.objects.get()
    assert run.images.count() == 1


def test_run_progress_endpoint_counts_statuses(client, tunnel, inspector):
    client.force_login(inspector)
    run = InspectionRun.objects.create(tunnel=tunnel, date="2026-11-02")
    a = SurveyImage.objects.create(run=run, original_name="a.jpg", status="done")
    b = SurveyImage.objects.create(run=run, original_name="b.jpg", status="failed", error="bad")
    SurveyImage.objects.create(run=run, original_name="c.jpg", status="queued")
    data = client.get(reverse("run-progress", args=[run.pk]), {"ids": f"{a.pk},{b.pk}"}).json()
    assert data["total"] == 3 and data["percent"] == 67
    assert data["counts"]["failed"] == 1 and data["counts"]["queued"] == 1
    assert {i["status"] for i in data["images"]} == {"done", "failed"}  # only the rows asked for


def test_run_page_pages_through_many_images_and_lists_failures(client, tunnel, inspector):
    client.force_login(inspector)
    run = InspectionRun.objects.create(tunnel=tunnel, date="2026-11-02")
    SurveyImage.objects.bulk_create(
        SurveyImage(
            run=run,
            original_name=f"{i:04d}.jpg",
            status="failed" if i % 50 == 0 else "done",
            error="the image is corrupt" if i % 50 == 0 else "",
        )
        for i in range(250)
    )
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert page.count("data-image=") == 100 and "page 1 of 3" in page
    assert (
        page.count("the image is corrupt") >= 5
    )  # the failed list shows every failure with its reason
    last = client.get(reverse("run-detail", args=[run.pk]), {"page": 3}).content.decode()
    assert last.count("data-image=") == 50


def test_image_files_are_not_served_to_anonymous_users(client, tunnel):
    run = InspectionRun.objects.create(tunnel=tunnel, date="2026-11-02")
    image = SurveyImage.objects.create(run=run, original_name="a.jpg")
    response = client.get(reverse("image-original", args=[image.pk]))
    assert response.status_code == 302
