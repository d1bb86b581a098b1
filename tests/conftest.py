"""Shared test fixtures: synthetic survey files, the usual users, a real Celery worker process,
headless Chromium."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from inference.synthetic import survey_image

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def jpeg_bytes(rgb: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# the stages an image's processing time is split into (SurveyImage.stage_seconds)
STAGE_NAMES = {"prepare", "decode", "predict", "geometry", "pyramid", "encode", "database", "total"}


def survey_jpeg(seed: int, width: int = 480, height: int = 320, n_cracks: int = 2) -> bytes:
    """A synthetic survey photo with dark cracks, as JPEG bytes."""
    rgb, _, _ = survey_image(width, height, n_cracks=n_cracks, seed=seed, widths_px=(2.5, 5.0))
    return jpeg_bytes(rgb)


def wait_for(predicate, timeout: float = 180, interval: float = 0.5, what: str = "condition"):
    """Poll predicate until it returns a truthy value; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def make_user(django_user_model, username: str, role: str | None, password: str = "pass-word-123"):
    """A user holding one role (group), or none for an outsider."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username, password=password)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def tunnel(db):
    from crackportal.assets.models import Tunnel

    return Tunnel.objects.create(
        code="T-TEST-01", name="Test tunnel", length_m=500, circumference_m=15
    )


@pytest.fixture
def inspector(django_user_model, tunnel):
    """An inspector assigned to the test tunnel."""
    user = make_user(django_user_model, "inspector", "inspector", password="inspect-pass-123")
    tunnel.members.add(user)
    return user


@pytest.fixture
def manager(django_user_model):
    return make_user(django_user_model, "manager", "manager")


@pytest.fixture
def admin_user(django_user_model):
    return make_user(django_user_model, "admin", "admin", password="admin-pass-123")


@pytest.fixture
def outsider(django_user_model):
    """Logged in, but no role."""
    return make_user(django_user_model, "outsider", None)


def _require(flag: str) -> bool:
    return os.environ.get(flag, "") == "1"


def _worker_database_url(settings_dict) -> str:
    """The test database as a DATABASE_URL for a worker in another process."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    url = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    return urllib.parse.urlunsplit(url._replace(path="/" + settings_dict["NAME"]))


def start_celery_worker(name: str, queues: str, env: dict, log_path: Path):
    """A `celery worker` subprocess (concurrency 1) on queues; returns (process, open log)."""
    log = open(log_path, "w")  # noqa: SIM115 - the caller closes it
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crackportal",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{name}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log


def stop_celery_worker(process, log) -> None:
    """Warm shutdown (the task in hand finishes), killed after 30 s; the log closed."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real `celery worker` subprocess on the test database and the configured broker."""
    from django.conf import settings
    from django.db import connection

    if _require("CRACKPORTAL_REQUIRE_SERVICES"):
        assert connection.vendor == "postgresql", "CI must run the integration tests on PostgreSQL"
        assert settings.CELERY_BROKER_URL.startswith("redis://"), (
            "CI must run the integration tests on Redis"
        )
    from crackportal.celery import app

    with django_db_blocker.unblock():
        app.control.purge()
    env = os.environ | {
        "DATABASE_URL": _worker_database_url(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "crackportal.settings_test",
    }
    log_path = Path(settings.VAR_DIR) / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    process, log = start_celery_worker(
        f"test-{os.getpid()}", "inference,training,maintenance", env, log_path
    )
    try:
        wait_for(
            lambda: "ready." in log_path.read_text() or process.poll() is not None,
            timeout=120,
            what="the Celery worker to start",
        )
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited:\n{log_path.read_text()[-3000:]}")
        yield process
    finally:
        stop_celery_worker(process, log)
        _wait_for_worker_sessions_to_close(connection, django_db_blocker)


def _wait_for_worker_sessions_to_close(connection, django_db_blocker) -> None:
    """PostgreSQL notices a dead client a moment later; the test database is dropped only then."""
    if connection.vendor != "postgresql":
        return
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    with django_db_blocker.unblock():
        for _ in range(50):
            with connection.cursor() as cursor:
                cursor.execute(sql, [connection.settings_dict["NAME"]])
                if cursor.fetchone()[0] == 0:
                    return
            time.sleep(0.1)


@pytest.fixture
def worker(celery_worker_process, transactional_db):
    """Tests that use the worker need committed data: transactional database access.

    At teardown it waits for the worker to go idle (a finished run queues its tracking, for
    one): the database is emptied only then, or the flush and the worker deadlock."""
    yield celery_worker_process
    _wait_for_worker_idle()


def _wait_for_worker_idle(timeout: float = 60.0) -> None:
    """Until the broker's queues are empty, no message is out with a worker (kombu's
    "unacked" hash) and no other database session is busy. Plain Redis and SQL only: Celery's
    remote control would start threads in this process, and a later fork (a data loader's
    workers) could inherit their locks and hang."""
    from django.conf import settings
    from django.db import connection

    client = None
    if settings.CELERY_BROKER_URL.startswith("redis"):
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    deadline, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and quiet < 3:
        busy = False
        if client is not None:
            try:
                queues = ("inference", "training", "maintenance")
                busy = any(client.llen(q) for q in queues) or client.hlen("unacked") > 0
            except redis.RedisError:
                pass
        if connection.vendor == "postgresql" and not busy:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                    "pid <> pg_backend_pid() AND state <> 'idle'",
                    [connection.settings_dict["NAME"]],
                )
                busy = cursor.fetchone()[0] > 0
        quiet = 0 if busy else quiet + 1
        time.sleep(0.3)
    if client is not None:
        client.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# -- browser: Debian's Chromium driven by Playwright (never a downloaded browser) ----------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(artifacts_dir):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CRACKPORTAL_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required for the browser tests (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are still sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def synthetic_dataset(tmp_path, settings):
    for split, seeds in (("train", range(6)), ("test", range(100, 102))):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "masks").mkdir(parents=True)
        for seed in seeds:
            rgb, mask, _ = survey_image(128, 96, n_cracks=2, seed=seed, widths_px=(2.5, 5.0))
            Image.fromarray(rgb).save(tmp_path / split / "images" / f"{seed}.png")
            Image.fromarray(mask.astype("uint8") * 255).save(
                tmp_path / split / "masks" / f"{seed}.png"
            )
    settings.TRAINING_DATASETS = {"synthetic": str(tmp_path)}
    return tmp_path


# -- object storage: moto's S3 server (server mode, the S3 server that installs here) ------

KEY, SECRET = "test-key", "test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    moto = pytest.importorskip("moto.server")
    port = _free_port()
    server = moto.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def make_bucket(endpoint: str):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    name = f"crackportal-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)

    def keys() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=name)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(key: str) -> bytes:
        return client.get_object(Bucket=name, Key=key)["Body"].read()

    return SimpleNamespace(name=name, client=client, keys=keys, read=read, endpoint=endpoint)
