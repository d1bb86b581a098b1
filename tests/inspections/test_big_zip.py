"""A big zip never depends on one request's time: stored as sent, unpacked by a worker."""

import io
import time
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from crackportal.inspections import services, tasks
from crackportal.inspections.models import InspectionRun, SurveyImage, UploadArchive
from tests.factories import make_run

pytestmark = pytest.mark.django_db(transaction=True)


def _tiny_png(k: int) -> bytes:
    rng = np.random.default_rng(k)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(n: int, extra: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        for k in range(n):
            z.writestr(f"tile-{k:05d}.png", _tiny_png(k))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def quiet_queue(settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    sent = {"images": [], "archives": []}
    monkeypatch.setattr(services, "enqueue_images", lambda ids, **kw: sent["images"].extend(ids))
    monkeypatch.setattr(services, "_enqueue_archive", sent["archives"].append)
    return sent


@pytest.mark.slow
def test_a_zip_of_5000_images_is_stored_at_once_and_unpacked_by_the_worker(
    client, tunnel, inspector, quiet_queue
):
    run = make_run(tunnel)
    InspectionRun.objects.filter(pk=run.pk).update(status="uploading")
    data = _zip(5000, {"../evil.png": _tiny_png(1)})
    client.force_login(inspector)
    started = time.perf_counter()
    response = client.post(
        f"/runs/{run.pk}/", {"files": [SimpleUploadedFile("survey.zip", data)]}, follow=True
    )
    took = time.perf_counter() - started
    assert response.status_code == 200 and took < 10, took  # the request only stored the zip
    assert "survey.zip is large: it is unpacked in the background" in response.content.decode()
    (archive,) = UploadArchive.objects.filter(run=run)
    assert quiet_queue["archives"] == [archive.pk] and archive.status == "pending"
    run.refresh_from_db()
    assert run.status == "processing"  # waiting for its archive, not "done" with 0 images

    tasks.expand_archive_task.run(archive.pk)  # what the worker runs
    archive.refresh_from_db()
    assert archive.status == "done" and archive.accepted == 5000 and archive.done_members == 5000
    assert not archive.file  # the zip itself is not kept
    assert run.images.exclude(status="failed").count() == 5000
    assert run.images.get(status="failed").original_name == "survey.zip: ../evil.png"
    assert len(quiet_queue["images"]) == 5000
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "5000 of 5000" in page


def test_a_small_zip_is_still_unpacked_in_the_request(client, tunnel, inspector, quiet_queue):
    run = make_run(tunnel)
    client.force_login(inspector)
    client.post(f"/runs/{run.pk}/", {"files": [SimpleUploadedFile("few.zip", _zip(3))]})
    assert not UploadArchive.objects.exists() and run.images.count() == 3


def test_a_broken_zip_stored_for_the_worker_fails_with_its_reason(tunnel, settings, quiet_queue):
    settings.ZIP_INLINE_MAX_MEMBERS = 2
    run = make_run(tunnel)
    data = _zip(5)
    from crackportal.inspections.uploads import IncomingFile

    services.upload_survey(run=run, files=[IncomingFile("s.zip", io.BytesIO(data), len(data))])
    archive = UploadArchive.objects.get()
    with archive.file.open("wb") as fh:  # the stored zip got damaged before unpacking
        fh.write(b"not a zip any more")
    tasks.expand_archive_task.run(archive.pk)
    failed = SurveyImage.objects.get(run=run, status="failed")
    assert failed.original_name == "s.zip" and "not a readable zip" in failed.error
    run.refresh_from_db()
    assert run.status == "failed"
