"""Faults with real parts: a worker killed with SIGKILL mid-image, Redis restarted mid-survey,
PostgreSQL restarted under a running web server and worker.

Each test runs its own redis-server on a free port and its own worker processes, so the
session's worker never takes their messages and a restart touches nobody else's queue.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection, connections

from crackportal.inspections import services, tasks
from crackportal.inspections.models import SurveyImage
from crackportal.inspections.uploads import IncomingFile
from tests.conftest import ROOT, _require, _worker_database_url, survey_jpeg, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throw-away redis-server without persistence: a restart loses every queued message."""

    def __init__(self, folder: Path):
        self.port, self.folder, self.process = _free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=20, interval=0.1, what="redis-server to start")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path, monkeypatch, transactional_db):
    """A private Redis; this test process sends its segmentation tasks there."""
    if REDIS_SERVER is None:
        if _require("CRACKPORTAL_REQUIRE_SERVICES"):
            pytest.fail("redis-server is required for the fault tests")
        pytest.skip("redis-server not installed")
    server = RedisServer(tmp_path)
    server.start()
    from crackportal.celery import app

    def send(image_ids):
        with app.connection_for_write(server.url) as conn:
            app.send_task(
                tasks.segment_images_task.name, (image_ids,), connection=conn, queue="inference"
            )

    monkeypatch.setattr(tasks.segment_images_task, "delay", send)
    yield server
    server.stop()


class Workers:
    """Celery worker processes on the private Redis and the test database."""

    def __init__(self, folder: Path, redis_url: str, **env):
        self.folder, self.processes = folder, []
        self.env = os.environ.copy()
        self.env.update(
            DATABASE_URL=_worker_database_url(connection.settings_dict),
            DJANGO_SETTINGS_MODULE="crackportal.settings_test",
            REDIS_URL=redis_url,
            **{k: str(v) for k, v in env.items()},
        )

    def start(self, name: str, beat: bool = False) -> subprocess.Popen:
        log_path = self.folder / f"{name}.log"
        command = [sys.executable, "-m", "celery", "-A", "crackportal", "worker"]
        command += ["-Q", "inference,maintenance", "--concurrency", "1", "--loglevel", "INFO"]
        command += ["--without-gossip", "--without-mingle", "-n", f"{name}-{os.getpid()}@%h"]
        if beat:
            command += ["-B", "-s", str(self.folder / "beat-schedule")]
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL takes the pool with it
            )
        self.processes.append(process)
        wait_for(
            lambda: "ready." in log_path.read_text() or process.poll() is not None,
            timeout=120,
            what=f"worker {name} to start",
        )
        assert process.poll() is None, log_path.read_text()[-3000:]
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()[-4000:]

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def workers_for(tmp_path):
    made = []

    def make(redis_url, **env):
        made.append(Workers(tmp_path, redis_url, **env))
        return made[-1]

    yield make
    for w in made:
        w.stop_all()


def _upload(tunnel, names_and_bytes):
    run = services.create_run(tunnel=tunnel, date="2026-10-01", label="fault test")
    files = [IncomingFile(name, io.BytesIO(data), len(data)) for name, data in names_and_bytes]
    result = services.upload_survey(run=run, files=files)
    assert not result.failed, result.failed
    return run


def _assert_processed_once(image: SurveyImage) -> None:
    """Done, with each crack stored once and the original byte-for-byte untouched."""
    image.refresh_from_db()
    assert image.status == "done", image.error
    indices = list(image.cracks.order_by("index").values_list("index", flat=True))
    assert indices == list(range(len(indices)))  # no duplicates from the second pass
    assert len(indices) > 0
    with image.file.open("rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == image.sha256


def _all_done(run) -> bool:
    return not run.images.exclude(status="done").exists()


def _kill_a_worker_mid_image(workers, tunnel, name: str, seed: int):
    """Start a worker, give it a large image and SIGKILL its whole process group mid-image."""
    doomed = workers.start(name)
    # large enough that the kill lands while the worker is still loading / predicting
    run = _upload(
        tunnel, [("big.jpg", survey_jpeg(seed=seed, width=3000, height=2400, n_cracks=3))]
    )
    image = run.images.get()
    wait_for(
        lambda: SurveyImage.objects.filter(pk=image.pk, status="processing").exists(),
        timeout=60,
        what="the first worker to start on the image",
    )
    time.sleep(0.5)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    image.refresh_from_db()
    assert image.status == "processing", "the image finished before the kill; use a larger one"
    return run, image


def test_a_worker_killed_mid_image_is_replaced_and_the_image_ends_done_once(
    redis_server, workers_for, tunnel
):
    workers = workers_for(
        redis_server.url,
        CELERY_VISIBILITY_TIMEOUT=5,  # an unacked message comes back this soon after its worker died
        CELERY_UNACKED_RESTORE_INTERVAL_S=1,
        CELERY_UNACKED_RESTORE_THROTTLE=1,
        # the doomed worker scans for lost messages every second under a Redis lock; killed
        # inside a scan, its lock would block the rescuer's scans for the default 300 s
        CELERY_UNACKED_MUTEX_EXPIRE_S=3,
    )
    run, image = _kill_a_worker_mid_image(workers, tunnel, "doomed", seed=5)
    assert image.cracks.count() == 0

    workers.start("rescuer")
    try:
        wait_for(lambda: _all_done(run), timeout=180, what="the rescuer to finish the image")
    except pytest.fail.Exception:
        image.refresh_from_db()
        pytest.fail(
            f"the rescuer did not finish the image (status {image.status}, attempts "
            f"{image.attempts}); rescuer log:\n{workers.log('rescuer')}"
        )
    _assert_processed_once(image)
    assert image.attempts == 2
    run.refresh_from_db()
    assert run.status == "done"


def test_redis_restarted_mid_survey_loses_no_image(redis_server, workers_for, tunnel):
    workers = workers_for(
        redis_server.url,
        SWEEP_INTERVAL_S=1,
        IMAGE_QUEUED_TIMEOUT_S=3,
        IMAGE_PROCESSING_TIMEOUT_S=60,
    )
    workers.start("survivor", beat=True)
    first = _upload(tunnel, [(f"a{i}.jpg", survey_jpeg(seed=40 + i)) for i in range(2)])
    wait_for(lambda: _all_done(first), timeout=120, what="the first images")

    redis_server.stop()  # everything queued in Redis is gone; uploads go on meanwhile
    second = _upload(tunnel, [(f"b{i}.jpg", survey_jpeg(seed=50 + i)) for i in range(4)])
    assert set(second.images.values_list("status", flat=True)) == {"queued"}
    redis_server.start()  # empty: the sweeper must send the four again

    wait_for(lambda: _all_done(second), timeout=180, what="the sweeper to recover the survey")
    for image in second.images.all():
        _assert_processed_once(image)
    assert "sent again" in workers.log("survivor")


def _postgres_cluster():
    """(version, name) of the local Debian cluster serving the test database, if we may restart it."""
    if connection.vendor != "postgresql" or os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        return None
    port = str(connection.settings_dict.get("PORT") or 5432)
    lines = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    for line in lines.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, name
    return None


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:  # not listening (yet)
        return 0


def test_web_and_worker_reconnect_after_postgres_restarts(
    redis_server, workers_for, tunnel, tmp_path
):
    cluster = _postgres_cluster()
    if cluster is None:
        if _require("CRACKPORTAL_REQUIRE_SERVICES"):
            pytest.fail("CI must restart PostgreSQL: run as root with a Debian pg cluster")
        pytest.skip("needs a local PostgreSQL cluster we may restart (root, pg_ctlcluster)")
    workers = workers_for(redis_server.url)
    workers.start("steady")
    port = _free_port()
    web_log = open(tmp_path / "web.log", "w")  # noqa: SIM115 - closed below
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crackportal.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1", "--threads", "2"],
        cwd=ROOT,
        env=workers.env,
        stdout=web_log,
        stderr=subprocess.STDOUT,
    )
    health = f"http://127.0.0.1:{port}/health/"
    try:
        wait_for(lambda: _get(health) == 200, timeout=60, what="the web server")
        before = _upload(tunnel, [("before.jpg", survey_jpeg(seed=60))])
        wait_for(lambda: _all_done(before), timeout=120, what="an image before the restart")

        subprocess.run(["pg_ctlcluster", *cluster, "restart", "-m", "fast"], check=True)
        connections.close_all()  # this test process reconnects too
        wait_for(
            lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0,
            timeout=60,
            what="PostgreSQL to come back",
        )

        assert _get(health) == 200  # the first request after the restart already works
        after = _upload(tunnel, [("after.jpg", survey_jpeg(seed=61))])
        wait_for(lambda: _all_done(after), timeout=120, what="an image after the restart")
        _assert_processed_once(after.images.get())
    finally:
        web.terminate()
        web.wait(timeout=30)
        web_log.close()


def test_a_lost_worker_host_is_noticed_within_a_minute_or_two(redis_server, workers_for, tunnel):
    """kill -9 of a worker's whole process group, with the broker's redelivery an hour away:
    the sweeper asks which workers answer and sends the image again."""
    workers = workers_for(
        redis_server.url,
        CELERY_VISIBILITY_TIMEOUT=3600,  # the broker alone would wait an hour
        SWEEP_INTERVAL_S=5,
        IMAGE_LOST_AFTER_S=10,
    )
    run, image = _kill_a_worker_mid_image(workers, tunnel, "lost-host", seed=6)
    killed_at = time.monotonic()
    assert image.worker.startswith("lost-host")

    workers.start("survivor", beat=True)
    wait_for(lambda: _all_done(run), timeout=180, what="the survivor to finish the image")
    assert time.monotonic() - killed_at < 120
    _assert_processed_once(image)
    assert image.attempts == 2 and image.worker.startswith("survivor")
