"""Two workers as on two hosts: separate VAR_DIRs, no shared media folder, one S3 server.

The web side (this test process) stores uploads in the bucket; each worker reads the photo
from the bucket and writes masks, overlays and deep-zoom tiles back to it. Queues get a
prefix of their own (CELERY_QUEUE_PREFIX) so the suite's other worker never takes these tasks.
"""

import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crackportal.env import s3_storage
from crackportal.inspections.models import InspectionRun, SurveyImage
from tests.conftest import (
    KEY,
    SECRET,
    _worker_database_url,
    make_bucket,
    start_celery_worker,
    stop_celery_worker,
    survey_jpeg,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PREFIX = "twohosts-"


@pytest.fixture
def routed_to_prefix(settings):
    """This process sends tasks to the prefixed queues while the test runs."""
    from crackportal.celery import app

    routes = {
        pattern: {"queue": PREFIX + route["queue"].removeprefix(settings.CELERY_QUEUE_PREFIX)}
        for pattern, route in settings.CELERY_TASK_ROUTES.items()
    }

    def forget_routes():  # Celery caches the routing table, the router and the queues
        for cached in ("router", "queues", "default_queue"):
            app.amqp.__dict__.pop(cached, None)
        app.amqp._rtable = None

    saved = app.conf.task_routes, app.conf.task_default_queue
    app.conf.task_routes, app.conf.task_default_queue = routes, PREFIX + "inference"
    forget_routes()
    yield
    app.conf.task_routes, app.conf.task_default_queue = saved
    forget_routes()


def _start_worker(name: str, var_dir: Path, bucket, database_url: str):
    var_dir.mkdir(parents=True)
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "crackportal.settings_test",
        "DATABASE_URL": database_url,
        "VAR_DIR": str(var_dir),
        "MEDIA_ROOT": str(var_dir / "media"),
        "MEDIA_STORAGE": "s3",
        "S3_BUCKET": bucket.name,
        "S3_ENDPOINT_URL": bucket.endpoint,
        "S3_ACCESS_KEY_ID": KEY,
        "S3_SECRET_ACCESS_KEY": SECRET,
        "CELERY_QUEUE_PREFIX": PREFIX,
    }
    log_path = var_dir.parent / f"{name}.log"
    process, log = start_celery_worker(
        name, f"{PREFIX}inference,{PREFIX}maintenance", env, log_path
    )
    return process, log, log_path


def test_two_workers_without_a_shared_folder_process_an_upload_through_one_bucket(
    transactional_db, client, tunnel, inspector, settings, s3_server, tmp_path, routed_to_prefix
):
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("two hosts share PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    bucket = make_bucket(s3_server)
    settings.MEDIA_STORAGE = "s3"
    settings.MEDIA_ROOT = tmp_path / "web" / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(bucket.name, s3_server, KEY, SECRET),
    }
    database_url = _worker_database_url(connection.settings_dict)
    hosts = [
        _start_worker(name, tmp_path / name, bucket, database_url) for name in ("host-a", "host-b")
    ]
    try:
        for process, _, log_path in hosts:
            wait_for(
                lambda p=process, lp=log_path: "ready." in lp.read_text() or p.poll() is not None,
                timeout=120,
                what="a worker to start",
            )
            assert process.poll() is None, log_path.read_text()[-3000:]
        client.force_login(inspector)
        files = [
            SimpleUploadedFile(f"{n}.jpg", survey_jpeg(seed=i), "image/jpeg")
            for i, n in enumerate("abcde")
        ]
        files.append(
            SimpleUploadedFile(
                "large.jpg", survey_jpeg(seed=9, width=2400, height=1200), "image/jpeg"
            )
        )
        response = client.post(
            reverse("run-create", args=[tunnel.code]), {"date": "2026-11-02", "files": files}
        )
        assert response.status_code == 302, response.content[:1000]
        run = InspectionRun.objects.latest("created_at")
        wait_for(
            lambda: (
                not run.images.exclude(
                    status__in=[SurveyImage.Status.DONE, SurveyImage.Status.FAILED]
                ).exists()
            ),
            timeout=300,
            what="six images on two workers",
        )
        images = list(run.images.all())
        assert {i.status for i in images} == {"done"}, [(i.original_name, i.error) for i in images]
        assert {i.worker.split("@")[0] for i in images} == {"host-a", "host-b"}  # both took work
        keys = set(bucket.keys())
        for image in images:
            assert {image.file.name, image.mask.name, image.overlay.name} <= keys
        large = next(i for i in images if i.original_name == "large.jpg")
        assert f"pyramids/{large.pk}/photo.dzi" in keys
        for name in ("web", "host-a", "host-b"):  # nothing stored on any host's disk
            media = tmp_path / name / "media"
            assert not media.exists() or not any(media.rglob("*")), name
    finally:
        for process, log, _ in hosts:
            stop_celery_worker(process, log)
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        client.delete(f"{PREFIX}inference", f"{PREFIX}maintenance")  # the runs' tracking tasks
        client.close()
