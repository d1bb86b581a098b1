"""Load benchmark on loopback: inspectors browse while a survey is uploaded and processed.

    .venv/bin/python scripts/load_bench.py [--images 1000] [--inspectors 8] [--workers 2]
                                           [--size 480x320] [--max-minutes 20] [--json FILE]

Starts its own stack in var/loadbench, as deployed (DEBUG off; plain http on loopback, the
Secure cookies sent anyway): gunicorn, N Celery workers and a fresh database
(a new PostgreSQL database when DATABASE_URL is set, dropped afterwards; else SQLite) on
REDIS_URL's server (database 13) or the embedded broker. One uploader sends synthetic
survey images (480x320, drawn cracks) through the REST API in batches of 50, while
--inspectors threads sign in and browse the tunnel map, its data, the run page and
image pages. Prints p50/p95/p99 latency per page, errors (must be 0), images lost
(accepted but not processed: must be 0) and throughput. Bounded by --max-minutes.

Small images go to the workers several to a task (IMAGE_BATCH_SIZE, default 8, within
IMAGE_BATCH_PIXELS); before the clock starts each worker processes a warm-up image (its
model loads). End to end against the model: before the stack starts (no browsing load) it measures the
shipped model alone on --workers processes predicting images of --size (the same predictor
the workers use), then prints the portal's end-to-end Mpx/s beside it, their ratio, and
where an image's time went (SurveyImage.stage_seconds: prepare, decode, predict, geometry,
pyramid, encode, database; mean per image). Each worker's network gets cores / --workers
threads (INFERENCE_THREADS, unless set), the model-alone figure the same. Last, the CPU
seconds each part of the stack used while timed (workers, web, PostgreSQL, Redis, the bench).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = ROOT / "var" / "loadbench"
PASSWORD = "load-bench-pass-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment() -> tuple[dict, str | None]:
    """Environment for every process of the bench, and the PostgreSQL database to drop after."""
    env = os.environ.copy()
    env.update(
        VAR_DIR=str(VAR),
        # as deployed (DEBUG off: no query log, compressed static files), on plain-http
        # loopback: no redirect to https; the browsing clients send the Secure cookies anyway
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SECRET_KEY=secrets.token_urlsafe(40),
        DJANGO_SETTINGS_MODULE="crackportal.settings",
        LOG_LEVEL="WARNING",
        # browsing and uploading are what is measured: sign-in throttling stays out of the way
        LOGIN_FAILURE_LIMIT="1000",
    )
    dropme = None
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        base = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
        dropme = f"crackportal_loadbench_{os.getpid()}"
        env["DATABASE_URL"] = urllib.parse.urlunsplit(base._replace(path="/" + dropme))
    else:
        env.pop("DATABASE_URL", None)
    if os.environ.get("REDIS_URL"):
        base = urllib.parse.urlsplit(os.environ["REDIS_URL"])
        env["REDIS_URL"] = urllib.parse.urlunsplit(base._replace(path="/13"))
    return env, dropme


def _admin_sql(sql: str) -> None:
    import psycopg

    base = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    url = urllib.parse.urlunsplit(base._replace(path="/postgres"))
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(sql)


def _manage(env, *args) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


SETUP = """
from django.contrib.auth.models import Group, User
from crackportal.assets.models import Tunnel
t = Tunnel.objects.create(code="T-LOAD", name="Load bench tunnel", length_m=5000, circumference_m=20)
# the uploader is an inspector of its own: the browsing inspectors may be none (--inspectors 0)
for name in ["uploader"] + [f"inspector{{i}}" for i in range({inspectors})]:
    u = User.objects.create_user(name, password="{password}")
    u.groups.add(Group.objects.get(name="inspector"))
    t.members.add(u)
print("ok")
"""


def _survey_images(n: int, width: int = 480, height: int = 320) -> list[tuple[str, bytes]]:
    from inference.synthetic import survey_image

    images = []
    for i in range(n):
        rgb, _, _ = survey_image(width, height, n_cracks=2, seed=10_000 + i, widths_px=(2.0, 5.0))
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
        images.append((f"img{i:05d}.jpg", buffer.getvalue()))
    return images


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)
        self.errors = defaultdict(int)
        self.examples = []

    def timed(self, session, name, method, url, **kwargs):
        start = time.perf_counter()
        try:
            response = session.request(method, url, timeout=120, **kwargs)
            ok = response.status_code < 400
        except requests.RequestException as exc:
            response, ok = None, False
            error = repr(exc)
        else:
            error = f"HTTP {response.status_code}"
        elapsed = time.perf_counter() - start
        with self.lock:
            self.latency[name].append(elapsed)
            if not ok:
                self.errors[name] += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{name} {url}: {error}")
        return response


def _over_loopback(session: requests.Session) -> None:
    """The Secure cookies (DEBUG off) travel over the bench's plain-http loopback too."""
    for cookie in session.cookies:
        cookie.secure = False


def _login(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=60)
    _over_loopback(session)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=60,
    )
    if response.url.endswith("/accounts/login/"):
        raise SystemExit(f"could not sign in as {username}")
    _over_loopback(session)
    return session


def _browse(base, username, run_id, stop, recorder):
    session = _login(base, username)
    rng = random.Random(username)
    image_ids: list[int] = []
    rounds, saw_an_image = 0, False
    # every inspector browses whole rounds, an image page included, however soon the survey
    # is done (up to 5 rounds waiting for an image to list)
    while not stop.is_set() or (not saw_an_image and rounds < 5):
        rounds += 1
        recorder.timed(session, "tunnel map page", "GET", f"{base}/tunnels/T-LOAD/map/")
        recorder.timed(
            session, "map data (json)", "GET", f"{base}/tunnels/T-LOAD/map.json?run={run_id}"
        )
        page = recorder.timed(session, "run page", "GET", f"{base}/runs/{run_id}/")
        recorder.timed(session, "run progress (json)", "GET", f"{base}/runs/{run_id}/progress.json")
        if page is not None and page.ok:
            image_ids = [
                int(i) for i in re.findall(r'href="/images/(\d+)/"', page.text)
            ] or image_ids
        if image_ids:
            pk = rng.choice(image_ids)
            recorder.timed(session, "image page", "GET", f"{base}/images/{pk}/")
            saw_an_image = True
        if not stop.is_set():
            stop.wait(rng.uniform(0.2, 0.8))  # think time


MODEL_ONLY = """
import json, sys, time
import numpy as np
from crackportal.modelops.services import active_model_version
from crackportal.modelops.predictors import get_predictor
from inference.synthetic import survey_image
predictor = get_predictor(active_model_version())
images = [survey_image({w}, {h}, n_cracks=2, seed=90 + i, widths_px=(2.0, 5.0))[0] for i in range({n})]
predictor.predict_mask_and_proba(images[0])  # warm up
print("ready", flush=True)
sys.stdin.readline()  # all processes loaded and warm: start together
started = time.perf_counter()
for rgb in images:
    predictor.predict_mask_and_proba(rgb)
print(json.dumps({{"seconds": time.perf_counter() - started, "images": len(images),
                  "backend": predictor.backend_name}}))
"""

STAGES = """
import json
from crackportal.inspections.models import SurveyImage
rows = list(
    SurveyImage.objects.filter(status="done", run__label="load").values_list("stage_seconds", flat=True)
)
keys = ["prepare", "decode", "predict", "geometry", "pyramid", "encode", "database", "total"]
mean = {k: sum(r.get(k, 0) for r in rows) / max(len(rows), 1) for k in keys}
last = SurveyImage.objects.filter(run__label="load").exclude(processed_at=None).order_by("-processed_at")
last = last.values_list("processed_at", flat=True).first()
print(json.dumps({"images": len(rows), "mean_seconds": mean, "last": last and last.timestamp()}))
"""


def _model_only(env, workers: int, width: int, height: int, n: int) -> tuple[float, str]:
    """Mpx/s of the shipped model alone: `workers` processes in parallel, as the workers run;
    and the backend the network ran on (inference.load's choice, as in the workers)."""
    code = MODEL_ONLY.format(w=width, h=height, n=n)
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    # one process loading its model (imports, ONNX export, compiling) must not run beside
    # another's timed images: each says "ready" after its warm-up image, then all start
    for process in processes:
        line = "-"
        while line and line.strip() != "ready":  # Django's shell may say something first
            line = process.stdout.readline()
        if not line:
            process.kill()
            sys.exit(f"the model-only measurement failed:\n{process.stderr.read()[-2000:]}")
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=1800)
        if process.returncode:
            sys.exit(f"the model-only measurement failed:\n{err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    # the processes ran side by side: total pixels over the slowest one's time
    megapixels = sum(r["images"] for r in results) * width * height / 1e6
    backend = ", ".join(sorted({r["backend"] for r in results}))
    return megapixels / max(r["seconds"] for r in results), backend


def _cpu_seconds(sessions: dict[int, str]) -> dict[tuple[int, int], tuple[str, float]]:
    """CPU seconds so far of each process of the stack, keyed by (pid, start tick): its part
    of the stack and its seconds. Processes by session (the bench starts each part in its
    own), PostgreSQL and Redis by name, and this process (the uploader)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[tuple[int, int], tuple[str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        session, cpu = int(fields[3]), (int(fields[11]) + int(fields[12])) / tick
        part = sessions.get(session)
        if part is None and name.startswith(("postgres", "redis-server")):
            part = "postgresql" if name.startswith("postgres") else "redis"
        if part is None and int(stat.parent.name) == os.getpid():
            part = "bench client"
        if part:
            out[int(stat.parent.name), int(fields[19])] = (part, cpu)
    return out


def _cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per part of the stack between two _cpu_seconds readings: what each process
    alive at the second used since the first (or since it started). A process that exited in
    between (a short-lived database connection's server process) is missing from the figure;
    subtracting its earlier seconds from the part made PostgreSQL's figure negative (-0.2 s,
    6000x4000 run, 2026-11-29)."""
    used: dict[str, float] = defaultdict(float)
    for key, (part, seconds) in after.items():
        used[part] += seconds - before.get(key, (part, 0.0))[1]
    return {part: round(seconds, 1) for part, seconds in sorted(used.items())}


def _warm_up(base: str, uploader: requests.Session, workers: int, width: int, height: int):
    """Before the clock starts: each worker loads the model on its first image (seconds).

    2 x workers images in a run of their own, one per request (so one per task), processed
    to the end; the model-only figure is warmed up the same way.
    """
    print("warming up the workers…", flush=True)
    run_id = uploader.post(
        f"{base}/api/runs/", json={"tunnel": "T-LOAD", "date": "2026-11-25", "label": "warm-up"}
    ).json()["id"]
    for name, data in _survey_images(2 * workers, width, height):
        uploader.post(
            f"{base}/api/runs/{run_id}/images/", files=[("files", (name, data, "image/jpeg"))]
        ).raise_for_status()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        counts = uploader.get(f"{base}/api/runs/{run_id}/progress/").json()
        counts = counts.get("counts", counts)
        if counts.get("done", 0) + counts.get("failed", 0) >= 2 * workers:
            return
        time.sleep(0.5)
    raise SystemExit("the workers did not process the warm-up images in 10 minutes")


def _percentiles(values):
    a = np.asarray(values) * 1000
    return {
        "n": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p95_ms": round(float(np.percentile(a, 95)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/load_bench.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--inspectors", type=int, default=8, help="concurrent browsing users")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--batch", type=int, default=50, help="images per upload request")
    parser.add_argument(
        "--size", default="480x320", help="survey image size WxH (e.g. 6000x4000 for large ones)"
    )
    parser.add_argument(
        "--model-images", type=int, default=8, help="images per process for the model-only figure"
    )
    parser.add_argument("--max-minutes", type=float, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size is WxH, e.g. 480x320, not {args.size!r}")
    if args.images < 1 or args.workers < 1 or args.model_images < 1:
        parser.error("--images, --workers and --model-images must be at least 1")

    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    env, dropme = _environment()
    # the workers share the cores: each network gets its share (unless INFERENCE_THREADS is set)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env.setdefault("INFERENCE_THREADS", str(max(1, (cores or 1) // max(args.workers, 1))))
    if dropme:
        _admin_sql(f"CREATE DATABASE {dropme}")
    processes = []
    try:
        print(
            f"setting up ({'PostgreSQL' if dropme else 'SQLite'}, "
            f"{'Redis' if env.get('REDIS_URL') else 'filesystem broker'})…",
            flush=True,
        )
        _manage(env, "migrate", "--no-input")
        _manage(env, "create_roles")
        _manage(env, "shell", "-c", SETUP.format(inspectors=args.inspectors, password=PASSWORD))
        if env.get("REDIS_URL"):
            _manage(env, "shell", "-c", "from crackportal.celery import app; app.control.purge()")
        print(f"model alone: {args.workers} processes, {args.size} images…", flush=True)
        model_mpx_s, backend = _model_only(env, args.workers, width, height, args.model_images)
        print(f"  {model_mpx_s:.2f} Mpx/s ({backend})", flush=True)
        images = _survey_images(args.images, width, height)

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        logs = VAR / "logs"
        logs.mkdir()

        names = []

        def spawn(name, command):
            names.append("web" if name == "web" else "workers")
            log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the process
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

        spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "crackportal.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--timeout",
                "300",
                "--keep-alive",  # idle connections outlive the clients' pauses (2 s default races)
                "30",
            ],
        )
        for i in range(args.workers):
            spawn(
                f"worker{i}",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "crackportal",
                    "worker",
                    "-Q",
                    "inference,maintenance",
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "WARNING",
                    "-n",
                    f"bench{i}@%h",
                ],
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/health/", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise SystemExit("the web server did not start; see var/loadbench/logs/web.log")

        uploader = requests.Session()
        token = uploader.post(
            f"{base}/api/token/", data={"username": "uploader", "password": PASSWORD}
        ).json()["token"]
        uploader.headers["Authorization"] = f"Token {token}"
        _warm_up(base, uploader, args.workers, width, height)
        run_id = uploader.post(
            f"{base}/api/runs/", json={"tunnel": "T-LOAD", "date": "2026-11-26", "label": "load"}
        ).json()["id"]

        recorder, stop = Recorder(), threading.Event()
        browsers = [
            threading.Thread(
                target=_browse, args=(base, f"inspector{i}", run_id, stop, recorder), daemon=True
            )
            for i in range(args.inspectors)
        ]
        print(
            f"uploading {args.images} images while {args.inspectors} inspectors browse, "
            f"{args.workers} workers process…",
            flush=True,
        )
        sessions = {process.pid: name for process, name in zip(processes, names, strict=True)}
        cpu_before = _cpu_seconds(sessions)
        started, started_wall = time.monotonic(), time.time()
        limit = started + args.max_minutes * 60
        for thread in browsers:
            thread.start()
        accepted = 0
        for i in range(0, len(images), args.batch):
            batch = images[i : i + args.batch]
            response = recorder.timed(
                uploader,
                f"upload ({args.batch} images)",
                "POST",
                f"{base}/api/runs/{run_id}/images/",
                files=[("files", (name, data, "image/jpeg")) for name, data in batch],
            )
            if response is not None and response.ok:
                accepted += len(response.json().get("accepted", []))
        upload_s = time.monotonic() - started

        counts = {}
        while time.monotonic() < limit:
            response = recorder.timed(
                uploader, "run progress (api)", "GET", f"{base}/api/runs/{run_id}/progress/"
            )
            if response is None or not response.ok:
                time.sleep(2)
                continue
            progress = response.json()
            counts = progress.get("counts", progress)
            settled = counts.get("done", 0) + counts.get("failed", 0)
            print(
                f"\r  {settled}/{accepted} processed ({time.monotonic() - started:.0f} s)",
                end="",
                flush=True,
            )
            if settled >= accepted:
                break
            time.sleep(0.5)
        total_s = time.monotonic() - started
        cpu = _cpu_used(cpu_before, _cpu_seconds(sessions))
        stop.set()
        for thread in browsers:
            thread.join(timeout=130)
        print()

        done, failed = counts.get("done", 0), counts.get("failed", 0)
        stages = json.loads(_manage(env, "shell", "-c", STAGES).strip().splitlines()[-1])
        if done == accepted and stages["last"]:  # the clock stops at the last one processed
            total_s = min(total_s, stages["last"] - started_wall)
        end_to_end_mpx_s = done * width * height / 1e6 / total_s
        result = {
            "images_sent": len(images),
            "images_accepted": accepted,
            "images_done": done,
            "images_failed": failed,
            "images_lost": accepted - done - failed,
            "upload_seconds": round(upload_s, 1),
            "total_seconds": round(total_s, 1),
            "processing_images_per_s": round(done / total_s, 2),
            "image_size": args.size,
            "end_to_end_mpx_per_s": round(end_to_end_mpx_s, 3),
            "model_only_mpx_per_s": round(model_mpx_s, 3),
            "backend": backend,
            "end_to_end_share_of_model": round(end_to_end_mpx_s / model_mpx_s, 3),
            "stage_mean_seconds": {k: round(v, 4) for k, v in stages["mean_seconds"].items()},
            "upload_images_per_s": round(accepted / upload_s, 2),
            "cpu_seconds": cpu,
            "inspectors": args.inspectors,
            "workers": args.workers,
            "database": "postgresql" if dropme else "sqlite",
            "broker": "redis" if env.get("REDIS_URL") else "filesystem",
            "requests": sum(len(v) for v in recorder.latency.values()),
            "errors": sum(recorder.errors.values()),
            "error_examples": recorder.examples,
            "latency": {name: _percentiles(v) for name, v in sorted(recorder.latency.items())},
        }
        print(f"\n{'page':<22}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for name, p in result["latency"].items():
            print(
                f"{name:<22}{p['n']:>9}{p['p50_ms']:>9}{p['p95_ms']:>9}{p['p99_ms']:>9}"
                f"{recorder.errors.get(name, 0):>8}"
            )
        print(
            f"\nimages: {accepted} accepted, {done} done, {failed} failed, "
            f"{result['images_lost']} lost; upload {result['upload_images_per_s']} img/s, "
            f"processing {result['processing_images_per_s']} img/s over {total_s:.0f} s "
            f"({args.workers} workers); {result['requests']} page requests, {result['errors']} errors"
        )
        print(
            f"end to end {end_to_end_mpx_s:.2f} Mpx/s of {args.size} images; the model alone "
            f"{model_mpx_s:.2f} Mpx/s ({args.workers} processes, no load): "
            f"{100 * end_to_end_mpx_s / model_mpx_s:.0f} %"
        )
        mean = stages["mean_seconds"]
        print(
            "mean seconds per image: "
            + ", ".join(f"{k} {mean[k]:.3f}" for k in mean if k != "total")
            + f"; total in the task {mean['total']:.3f}; wall per image per worker "
            f"{args.workers * total_s / max(done, 1):.3f}"
        )
        print(
            f"CPU seconds while timed ({total_s:.1f} s x {os.cpu_count()} cores): "
            + ", ".join(f"{k} {v}" for k, v in cpu.items())
        )
        for example in recorder.examples:
            print("  error:", example)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0 if result["errors"] == 0 and result["images_lost"] == 0 else 1
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if dropme:
            _admin_sql(f"DROP DATABASE IF EXISTS {dropme} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
