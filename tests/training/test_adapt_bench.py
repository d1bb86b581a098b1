"""Issue 18: training.adapt_bench runs the portal's adaptation on a dataset and reports it,
with figures on the surface's train images it left out (for choosing settings, never test)."""

import json
from pathlib import Path

import pytest

from tests.training.datasets import write_dataset
from training.adapt_bench import main as adapt_bench

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_adapt_bench_reports_test_figures_and_the_left_out_train_images(tmp_path, capsys):
    surface = write_dataset(tmp_path / "data" / "surf", 10, {"train": 5, "test": 2})
    write_dataset(tmp_path / "data" / "base", 50, {"train": 3})
    out = tmp_path / "figures.json"
    default = str(ROOT / "models" / "default")
    argv = ["--data", str(surface), "--images", "3", "--minutes", "0.02", "--share", "0.75"]
    adapt_bench([*argv, "--model", default, "--reference", default, "--json", str(out)])
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    assert figures["images"] == 3 and figures["other_train_images"] == 2
    assert figures["share"] == 0.75 and "crop shares: base 25%, new 75%" in printed
    for key in ("before", "after", "all_data", "other_train_before", "other_train_after"):
        assert 0.0 <= figures[key]["f1"] <= 1.0 and 0.0 <= figures[key]["ods"] <= 1.0
    assert "surf test split (2 images)" in printed
    assert "surf's other 2 train images (not test; for choosing settings)" in printed
    assert figures["share_of_all_data"] == pytest.approx(
        figures["after"]["f1"] / figures["all_data"]["f1"]
    )
    # forgetting: the base dataset's validation F1, the start model's and the chosen epoch's
    for key in ("base_validation_f1_start", "base_validation_f1"):
        assert set(figures[key]) == {"base"} and 0.0 <= figures[key]["base"] <= 1.0
    assert figures["base_validation_mean_start"] == figures["base_validation_f1_start"]["base"]
    assert "start model: val_f1" in printed
    assert "base datasets' validation F1 (the images the run held back)" in printed
    assert figures["anchor"] == 0.0
    assert figures["base_unseen"] == {}  # the run drew all 3 base images


def test_forgetting_is_measured_on_base_images_the_adaptation_never_drew():
    import numpy as np

    from training.adapt import AdaptSettings, base_share
    from training.adapt_bench import unseen_base
    from training.data import Sample

    blank = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)
    base = [Sample(f"{src}-{i}", *blank, source=src) for src in ("a", "b") for i in range(5)]
    settings = AdaptSettings(base_per_dataset=2)
    drawn = {s.name for s in base_share(base, settings)}
    unseen = unseen_base(base, settings, 2)
    assert len(drawn) == 4 and set(unseen) == {"a", "b"}
    assert all(len(images) == 2 for images in unseen.values())
    assert not drawn & {s.name for images in unseen.values() for s in images}
    assert len(unseen_base(base, settings, 10)["a"]) == 3  # all five less the two drawn


def test_adapt_bench_refuses_a_start_model_that_saw_the_surface(tmp_path, capsys):
    surface = write_dataset(tmp_path / "data" / "tunnel-lining", 10, {"train": 2, "test": 1})
    with pytest.raises(SystemExit):
        adapt_bench(["--data", str(surface), "--model", str(ROOT / "models" / "default")])
    assert "was trained on tunnel-lining" in capsys.readouterr().err
