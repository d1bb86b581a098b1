"""The load benchmark runs end to end (a small survey; the real figures come from a manual run)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _bench(tmp_path, *args: str, timeout: int = 600) -> tuple[dict, dict]:
    """Run the load benchmark with args; return its JSON figures and the environment used."""
    out = tmp_path / "load.json"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "scripts/load_bench.py", *args, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text()), env


def test_load_bench_runs_small_and_reports_no_errors_and_no_lost_images(tmp_path):
    figures, env = _bench(
        tmp_path,
        *("--images", "12", "--batch", "6", "--inspectors", "2", "--workers", "2"),
        *("--max-minutes", "4"),
    )
    assert figures["images_done"] == 12 and figures["images_lost"] == 0
    assert figures["errors"] == 0 and figures["requests"] > 0
    assert {"tunnel map page", "map data (json)", "image page"} <= set(figures["latency"])
    assert figures["database"] == (
        "postgresql" if "postgres" in env.get("DATABASE_URL", "") else "sqlite"
    )


def test_load_bench_with_no_browsing_inspectors_measures_processing_alone(tmp_path):
    """--inspectors 0 crashed: the uploader signed in as an inspector that was not created."""
    figures, _ = _bench(
        tmp_path,
        *("--images", "4", "--batch", "4", "--inspectors", "0", "--workers", "1"),
        *("--max-minutes", "3", "--model-images", "2"),
        timeout=400,
    )
    assert figures["images_done"] == 4 and figures["images_lost"] == 0
    assert figures["inspectors"] == 0 and figures["errors"] == 0
    # beside the model alone, and where an image's time went
    assert figures["model_only_mpx_per_s"] > 0 and figures["end_to_end_mpx_per_s"] > 0
    assert figures["end_to_end_share_of_model"] == pytest.approx(
        figures["end_to_end_mpx_per_s"] / figures["model_only_mpx_per_s"], abs=0.002
    )
    stages = figures["stage_mean_seconds"]
    assert stages["predict"] > 0 and stages["total"] >= stages["predict"]


def test_cpu_seconds_count_what_each_living_process_used_never_a_negative_figure():
    """A database server process that exits while timed took its earlier seconds out of
    PostgreSQL's figure: -0.2 s in a 6000x4000 run (2026-11-29)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("load_bench", ROOT / "scripts" / "load_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    before = {
        (101, 7): ("postgresql", 5.0),  # exits while timed
        (102, 8): ("postgresql", 3.0),
        (103, 9): ("workers", 1.0),
    }
    after = {
        (102, 8): ("postgresql", 4.0),
        (104, 12): ("postgresql", 0.5),  # started while timed
        (103, 9): ("workers", 4.0),
        (101, 30): ("workers", 2.0),  # the exited one's pid, taken by a new process
    }
    assert bench._cpu_used(before, after) == {"postgresql": 1.5, "workers": 5.0}
    mine = bench._cpu_seconds({})
    assert any(part == "bench client" for part, _ in mine.values())
    assert all(seconds >= 0 for _, seconds in mine.values())
