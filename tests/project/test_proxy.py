"""The front door survives slow clients: nginx (Debian) in front of gunicorn's sync workers.

Four clients that send half a request and wait hold every gunicorn sync worker; behind
nginx, with the config compose uses (deploy/nginx/nginx.conf.in), /health/ still answers
within a second.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health_seconds(port: int, timeout: float = 3.0) -> float:
    """Seconds /health/ took to answer 200, or inf when it did not answer within timeout."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=timeout) as r:
            assert r.status == 200
    except (OSError, TimeoutError):
        return float("inf")
    return time.perf_counter() - started


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    """Clients that send the start of a request's headers and then nothing."""
    clients = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        clients.append(s)
    return clients


@pytest.fixture
def gunicorn(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="crackportal.settings_test", VAR_DIR=str(tmp_path / "var"))
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crackportal.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "30"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _health_seconds(port) < 3, timeout=60, what="gunicorn to answer")
        yield port
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def nginx(gunicorn, tmp_path):
    if not Path(NGINX).exists():
        if os.environ.get("CRACKPORTAL_REQUIRE_SERVICES") == "1":
            pytest.fail("nginx is required for the proxy test (apt-get install nginx-light)")
        pytest.skip("nginx not installed (apt-get install nginx-light)")
    port = _free_port()
    template = (ROOT / "deploy" / "nginx" / "nginx.conf.in").read_text()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        template.replace("@LISTEN@", f"127.0.0.1:{port}").replace(
            "@UPSTREAM@", f"127.0.0.1:{gunicorn}"
        )
    )
    process = subprocess.Popen(
        [NGINX, "-c", str(conf), "-g", f"daemon off; pid {tmp_path / 'nginx.pid'};"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(
            lambda: _health_seconds(port) < 3 or process.poll() is not None,
            timeout=30,
            what="nginx to answer",
        )
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_slow_clients_starve_bare_gunicorn_but_not_the_proxy(gunicorn, nginx):
    # the attack works on gunicorn's sync workers alone ...
    clients = _slow_clients(gunicorn, 4)
    try:
        assert _health_seconds(gunicorn, timeout=2.0) == float("inf")
    finally:
        for c in clients:
            c.close()
    wait_for(lambda: _health_seconds(gunicorn) < 3, timeout=60, what="gunicorn to recover")
    # ... and behind nginx /health/ stays under a second, time after time
    clients = _slow_clients(nginx, 16)
    try:
        took = [_health_seconds(nginx) for _ in range(10)]
    finally:
        for c in clients:
            c.close()
    assert max(took) < 1.0, took
