"""Stored files in S3-compatible object storage (MEDIA_STORAGE=s3), against an S3 server the
test starts: moto's server mode (the S3 server that installs here; MinIO in compose). Nothing
may land under MEDIA_ROOT. The same paths run on the filesystem in the rest of the suite."""

import urllib.request
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse

from crackportal.env import s3_storage
from tests.conftest import KEY, SECRET, STAGE_NAMES, make_bucket, make_user, survey_jpeg
from tests.factories import make_crack, make_image, make_run


@pytest.fixture
def s3(settings, s3_server, tmp_path):
    """The default storage is a fresh bucket; MEDIA_ROOT points at a folder that must stay absent."""
    bucket = make_bucket(s3_server)
    settings.MEDIA_STORAGE = "s3"
    settings.MEDIA_ROOT = tmp_path / "must-stay-empty"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(bucket.name, s3_server, KEY, SECRET),
    }
    yield bucket
    assert not settings.MEDIA_ROOT.exists(), "a file was written under MEDIA_ROOT"


def test_the_storage_helpers_walk_replace_and_delete_folders(s3, tmp_path):
    from crackportal import media

    scratch = tmp_path / "scratch"
    (scratch / "a" / "b").mkdir(parents=True)
    (scratch / "top.txt").write_text("1")
    (scratch / "a" / "b" / "deep.txt").write_text("2")
    assert media.publish_tree(scratch, "pyramids/7") == 2
    assert list(media.walk("pyramids")) == ["pyramids/7/top.txt", "pyramids/7/a/b/deep.txt"]
    (scratch / "top.txt").unlink()
    assert media.publish_tree(scratch, "pyramids/7") == 1  # replaced, not added to
    assert s3.keys() == ["pyramids/7/a/b/deep.txt"]
    assert media.delete_tree("pyramids/7") == 1 and s3.keys() == []


@pytest.mark.slow
def test_a_large_image_is_processed_into_the_bucket_and_served_from_it(
    client, inspector, tunnel, django_user_model, s3, settings
):
    from crackportal.inspections.processing import segment_survey_image

    run = make_run(tunnel)
    image = make_image(run, "big.jpg", size=(2400, 1200))
    photo = survey_jpeg(seed=11, width=2400, height=1200)
    image.file.save("big.jpg", ContentFile(photo))
    segment_survey_image(image_id=image.pk)
    image.refresh_from_db()
    stages = image.stage_seconds  # where the time of one image went
    assert set(stages) == STAGE_NAMES
    parts = sum(v for k, v in stages.items() if k != "total")
    assert 0 < parts <= stages["total"] + 1e-3 and stages["pyramid"] > 0
    keys = s3.keys()
    for field in (image.file, image.mask, image.overlay, image.probability):
        assert field.name in keys
    assert f"pyramids/{image.pk}/photo.dzi" in keys and f"pyramids/{image.pk}/overlay.dzi" in keys
    tiles = [k for k in keys if k.startswith(f"pyramids/{image.pk}/photo_files/")]
    assert len(tiles) > 10

    client.force_login(inspector)
    page = client.get(reverse("image-detail", args=[image.pk])).content.decode()
    assert 'data-kind="dzi"' in page
    tile_key = tiles[-1]
    level_tile = tile_key.split("photo_files/")[1]
    response = client.get(reverse("image-tile", args=[image.pk, "photo", level_tile]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == s3.read(tile_key)
    missing = client.get(reverse("image-tile", args=[image.pk, "photo", "0/9_9.jpg"]))
    assert missing.status_code == 404
    thumb = client.get(reverse("image-thumbnail", args=[image.pk]))
    assert thumb.status_code == 200 and any(k.startswith("thumbs/") for k in s3.keys())
    original = client.get(reverse("image-original", args=[image.pk]))
    assert b"".join(original.streaming_content) == photo

    # presigned downloads: the same permission check, then a short-lived signed URL
    settings.MEDIA_DOWNLOADS = "presigned"
    redirect = client.get(reverse("image-original", args=[image.pk]))
    assert redirect.status_code == 302 and "X-Amz-Signature" in redirect["Location"]
    assert redirect["Location"].startswith(s3.endpoint)
    with urllib.request.urlopen(redirect["Location"]) as fetched:
        assert fetched.read() == photo
    client.force_login(make_user(django_user_model, "elsewhere", "inspector"))
    assert client.get(reverse("image-original", args=[image.pk])).status_code == 404


@pytest.mark.django_db
def test_a_report_is_built_into_the_bucket_and_downloaded(client, tunnel, manager, s3, settings):
    from crackportal.reports import services

    run = make_run(tunnel)
    image = make_image(run, "a.jpg", size=(480, 320))
    image.file.save("a.jpg", ContentFile(survey_jpeg(seed=2)))
    make_crack(image, 0, width_mm=1.5)
    report = services.request_report(run=run, kind="pdf", user=manager)
    assert services.build_report(report_id=report.pk)
    report.refresh_from_db()
    assert report.file.name in s3.keys() and report.source.name in s3.keys()
    client.force_login(manager)
    response = client.get(reverse("report-download", args=[report.pk]))
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    settings.MEDIA_DOWNLOADS = "presigned"
    redirect = client.get(reverse("report-download", args=[report.pk]))
    assert redirect.status_code == 302 and "response-content-disposition" in redirect["Location"]


def test_backup_of_a_bucket_restores_into_anothermake_bucket(
    db, tunnel, inspector, s3, tmp_path, s3_server
):
    from tests.inspections.test_backup import FreshDatabase, _restore

    run = make_run(tunnel)
    image = make_image(run, "a.jpg")
    image.file.save("a.jpg", ContentFile(survey_jpeg(seed=4)))
    make_crack(image, 0)
    folder = tmp_path / "backup"
    call_command("backup", str(folder), verbosity=0)
    target = make_bucket(s3_server)
    database = FreshDatabase(tmp_path)
    try:
        result = _restore(
            folder,
            database.url,
            tmp_path / "restore-must-stay-empty",
            {
                "MEDIA_STORAGE": "s3",
                "S3_BUCKET": target.name,
                "S3_ENDPOINT_URL": s3_server,
                "S3_ACCESS_KEY_ID": KEY,
                "S3_SECRET_ACCESS_KEY": SECRET,
            },
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "restored and verified" in result.stdout
        assert target.keys() == s3.keys() == [image.file.name]
        assert target.read(image.file.name) == s3.read(image.file.name)
        assert database.count("inspections_crack") == 1
        assert not Path(tmp_path / "restore-must-stay-empty").exists()
    finally:
        database.drop()


@pytest.mark.django_db
def test_a_model_trained_on_one_host_loads_from_the_bucket_on_another(s3, settings, tmp_path):
    import shutil

    import numpy as np

    from crackportal import media
    from crackportal.modelops.models import ModelVersion
    from crackportal.modelops.predictors import get_predictor

    trained = tmp_path / "training-host" / "trained-x"
    trained.mkdir(parents=True)
    for name in ("config.json", "weights.safetensors"):
        shutil.copy(Path(settings.MODEL_DIR) / "default" / name, trained / name)
    media.publish_tree(trained, "models/trained-x")
    shutil.rmtree(trained)  # this host never saw the training host's disk
    settings.VAR_DIR = tmp_path / "inference-host"
    version = ModelVersion.objects.create(
        name="trained-x",
        path=str(trained),
        architecture="Unet",
        encoder="mobilenet_v2",
        stored_prefix="models/trained-x",
    )
    folder = version.folder
    assert folder == tmp_path / "inference-host" / "model-cache" / "trained-x"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.safetensors"]
    mask = get_predictor(version).predict_mask(np.full((64, 96, 3), 128, np.uint8))
    assert mask.shape == (64, 96)
