"""The load benchmark runs end to end (a small survey; the real figures come from a manual run)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_load_bench_runs_small_and_reports_no_errors_and_no_lost_images(tmp_path):
    out = tmp_path / "load.json"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "scripts/load_bench.py", "--images", "12", "--batch", "6"]
        + ["--inspectors", "2", "--workers", "2", "--max-minutes", "4", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["images_done"] == 12 and figures["images_lost"] == 0
    assert figures["errors"] == 0 and figures["requests"] > 0
    assert {"tunnel map page", "map data (json)", "image page"} <= set(figures["latency"])
    assert figures["database"] == (
        "postgresql" if "postgres" in env.get("DATABASE_URL", "") else "sqlite"
    )
