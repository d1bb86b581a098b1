"""Small survey images are segmented several to a task; one bad image never stops the others."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.urls import reverse

from crackportal.inspections import processing, services, tasks
from crackportal.inspections.models import InspectionRun, SurveyImage
from tests.conftest import STAGE_NAMES, survey_jpeg
from tests.factories import make_image, make_run

pytestmark = pytest.mark.django_db


def test_small_images_share_a_task_and_big_or_unknown_ones_go_alone(settings):
    settings.IMAGE_BATCH_SIZE, settings.IMAGE_BATCH_PIXELS = 3, 1_000_000
    small = 480 * 320
    sizes = [(1, small), (2, small), (3, 5_000_000), (4, small), (5, small), (6, None)]
    sizes += [(7, small), (8, 800_000), (9, 150_000)]
    # 1, 2 and 4 fill a batch of three; 3 (over the pixel budget) and 6 (unknown) go alone;
    # 5, 7 and 8 would pass the pixel budget (1,107,200): 8 starts the next batch
    assert services.image_batches(sizes) == [[3], [1, 2, 4], [6], [5, 7], [8, 9]]
    assert services.image_batches([]) == []


def test_an_upload_of_small_images_is_sent_in_batches(
    transactional_db, client, tunnel, inspector, monkeypatch, settings
):
    settings.IMAGE_BATCH_SIZE = 4
    sent, stored_then = [], []

    def send(batch):
        sent.append(batch)
        stored_then.append(SurveyImage.objects.count())

    monkeypatch.setattr(tasks.segment_images_task, "delay", send)
    files = [
        SimpleUploadedFile(f"s{i}.jpg", survey_jpeg(seed=200 + i), "image/jpeg") for i in range(10)
    ]
    client.force_login(inspector)
    data = {"date": "2026-11-01", "label": "batches", "files": files}
    # committed for real (transactional_db): each file's commit sends what is due at once
    response = client.post(reverse("run-create", args=[tunnel.code]), data)
    assert response.status_code == 302, response.content[:2000]
    run = InspectionRun.objects.latest("created_at")
    ids = list(run.images.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 10
    assert sent == [ids[0:4], ids[4:8], ids[8:10]]
    assert stored_then == [4, 8, 10]  # a full batch goes as soon as its last file is stored
    assert set(run.images.values_list("status", flat=True)) == {"queued"}


def _stored_image(run, name, data: bytes) -> SurveyImage:
    image = make_image(run, name=name, size=(480, 320), chainage_m=(0.0, 0.48), arc_m=(0.0, 0.32))
    image.status = SurveyImage.Status.QUEUED
    image.file.save(name, ContentFile(data))
    return image


@pytest.fixture
def batch(tunnel, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    run = make_run(tunnel)
    good = [_stored_image(run, f"g{i}.jpg", survey_jpeg(seed=300 + i)) for i in range(2)]
    broken = _stored_image(run, "broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    return run, good, broken


def test_a_batch_with_a_corrupt_image_stores_the_others_and_fails_that_one(batch):
    run, good, broken = batch
    tasks.segment_images_task.apply(args=[[good[0].pk, broken.pk, good[1].pk]])
    for image in good:
        image.refresh_from_db()
        assert image.status == "done" and image.attempts == 1
        assert image.cracks.exists() and image.mask and image.overlay and image.probability
        stages = image.stage_seconds
        assert set(stages) == STAGE_NAMES
        assert stages["total"] >= stages["predict"] > 0
    broken.refresh_from_db()
    assert broken.status == "failed" and "cannot be decoded" in broken.error
    assert not broken.mask and not broken.cracks.exists()
    run.refresh_from_db()
    assert run.status == "done"  # two of three done: the run is settled, with its failure shown


def test_a_failed_database_write_leaves_no_new_files(batch, monkeypatch, settings):
    settings.IMAGE_MAX_ATTEMPTS = 1  # no retry: what the failure left behind is what stays
    run, good, broken = batch
    written = []

    def store_failing(segmented):
        written.extend(
            f.name for s in segmented for f in (s.image.mask, s.image.overlay, s.image.probability)
        )
        assert all(default_storage.exists(name) for name in written)  # the files were stored
        raise OperationalError("the database went away")

    monkeypatch.setattr(processing, "_store_segmented", store_failing)
    tasks.segment_images_task.apply(args=[[good[0].pk, good[1].pk]])
    assert len(written) == 6
    assert not any(default_storage.exists(name) for name in written)
    for image in good:
        image.refresh_from_db()
        assert image.status == "failed" and "database" in image.error
        assert not image.mask and not image.cracks.exists()


def test_a_redelivered_batch_skips_its_done_images(batch):
    run, good, broken = batch
    tasks.segment_images_task.apply(args=[[good[0].pk]])
    good[0].refresh_from_db()
    first = (good[0].processed_at, good[0].attempts)
    tasks.segment_images_task.apply(args=[[good[0].pk, good[1].pk]])  # the same message again
    good[0].refresh_from_db()
    good[1].refresh_from_db()
    assert (good[0].processed_at, good[0].attempts) == first
    assert good[1].status == "done"


def test_a_transient_error_retries_only_that_image(batch, monkeypatch, settings):
    settings.IMAGE_MAX_ATTEMPTS = 2
    run, good, broken = batch
    real = processing._segment_one
    seen = []

    def storage_flaky_for_one(image, version):
        seen.append(image.pk)
        if image.pk == good[1].pk:
            raise OSError("the storage timed out")
        return real(image, version)

    monkeypatch.setattr(processing, "_segment_one", storage_flaky_for_one)
    # apply() runs the retry here: only the failed image goes round again, then gives up
    tasks.segment_images_task.apply(args=[[good[0].pk, good[1].pk]])
    assert seen == [good[0].pk, good[1].pk, good[1].pk]
    good[0].refresh_from_db()
    good[1].refresh_from_db()
    assert good[0].status == "done" and good[0].attempts == 1
    assert good[1].status == "failed" and good[1].attempts == 2
    assert good[1].error == "OSError: the storage timed out"
