"""The inference benchmark runs and reports medians over repeats (figures come from manual runs)."""

import json

import pytest


@pytest.mark.slow
def test_bench_reports_the_median_and_spread_of_repeats(tmp_path):
    from inference import bench

    out = tmp_path / "bench.json"
    args = ["--quick", "--images", "1", "--large", "0", "--backends", "auto", "--repeats", "2"]
    assert bench.main([*args, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["repeats"] == 2 and report["device"] == "cpu"
    baseline, ours = report["results"]
    for row in (baseline, ours):
        assert len(row["images_per_s_runs"]) == 2 and row["spread"] >= 0
        assert min(row["images_per_s_runs"]) <= row["images_per_s"] <= max(row["images_per_s_runs"])
    # "auto" is measured as what the portal runs, and the row says which backend that was
    assert ours["config"] == "auto" and ours["runs_as"] in (
        "openvino",
        "openvino-bf16",
        "openvino-int8",
    )
    assert report["speedup_vs_baseline"] == pytest.approx(
        ours["images_per_s"] / baseline["images_per_s"]
    )
