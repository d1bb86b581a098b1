"""Look-alikes (joints, grids, bolt holes, cables, stains, scratches): drawn away from cracks,
counted as false positives, used as hard negatives, reported by training.evaluate."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.synthetic import survey_image
from training.data import Sample
from training.evaluate import main as evaluate_main
from training.export import export_model_version
from training.lookalikes import (
    CLEARANCE_PX,
    KINDS,
    LookalikeCounter,
    draw_lookalike,
    lookalike_test_set,
)
from training.loop import load_run_config, train

CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "unet-tiny.json"


def _sample(seed=0, size=(240, 160)):
    rgb, mask, _ = survey_image(*size, n_cracks=2, seed=seed, widths_px=(2.5, 5.0))
    return rgb, mask


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_drawn_away_from_the_cracks_and_leaves_them_untouched(kind):
    rgb, mask = _sample()
    drawn, region = draw_lookalike(rgb, mask, np.random.default_rng(1), kind)
    assert region.any()
    assert not (region & mask).any()
    # nothing changes on or near a crack
    from scipy.ndimage import distance_transform_edt

    near = distance_transform_edt(~mask) <= CLEARANCE_PX
    assert np.array_equal(drawn[near], rgb[near])
    assert not np.array_equal(drawn, rgb)


def test_the_test_set_is_deterministic_and_has_every_kind():
    rgb, mask = _sample()
    first = list(lookalike_test_set([("a", rgb, mask)]))
    again = list(lookalike_test_set([("a", rgb, mask)]))
    assert [c.kind for c in first] == list(KINDS)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, again, strict=True))


def test_counter_measures_the_share_of_lookalike_pixels_called_crack():
    rgb, mask = _sample()
    case = next(iter(lookalike_test_set([("a", rgb, mask)])))
    counter = LookalikeCounter(threshold=0.5)
    prob = np.zeros(mask.shape, np.float32)
    region_pixels = np.flatnonzero(case.region)
    prob.flat[region_pixels[: len(region_pixels) // 4]] = 0.9  # a quarter of it called crack
    prob[mask] = 1.0  # the real cracks do not count
    counter.update(case, prob)
    result = counter.result()
    assert result["lookalike_by_kind"][case.kind]["fp_pixel_rate"] == pytest.approx(0.25, abs=0.01)
    assert result["lookalike_by_kind"][case.kind]["flagged_fraction"] == 1.0
    assert result["lookalike_fp_pixel_rate"] == pytest.approx(0.25, abs=0.01)
    empty = LookalikeCounter(0.5)
    empty.update(case, np.zeros_like(prob))
    assert empty.result()["lookalike_fp_pixel_rate"] == 0.0


@pytest.mark.slow
def test_training_with_hard_negatives_and_evaluate_reports_lookalikes(tmp_path, capsys):
    samples = [Sample(f"s{i}", *_sample(seed=i, size=(128, 96))) for i in range(6)]
    config, settings = load_run_config(CONFIG)
    settings = replace(settings, epochs=1, hard_negatives=1.0)
    result = train(samples, config, settings, tmp_path / "run")
    assert np.isfinite(result.history[0]["train_loss"])
    export_model_version(result.state_dict, config, tmp_path / "model")

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True), (data / "masks").mkdir()
    for s in samples[:2]:
        Image.fromarray(s.image).save(data / "images" / f"{s.name}.png")
        Image.fromarray(s.mask.astype(np.uint8) * 255).save(data / "masks" / f"{s.name}.png")
    assert (
        evaluate_main(
            ["--model", str(tmp_path / "model"), "--data", str(data), "--lookalikes", "--json"]
        )
        == 0
    )
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["lookalike_cases"] == 2 * len(KINDS)
    assert 0.0 <= figures["lookalike_fp_pixel_rate"] <= 1.0
    assert set(figures["lookalike_by_kind"]) == set(KINDS)
    assert {"f1", "iou", "ods", "ois"} <= set(figures)


@pytest.mark.slow
def test_balanced_sources_train_from_every_dataset(tmp_path):
    samples = [Sample(f"a{i}", *_sample(seed=i, size=(96, 96)), source="big") for i in range(6)]
    samples += [
        Sample(f"b{i}", *_sample(seed=50 + i, size=(96, 96)), source="small") for i in range(2)
    ]
    config, settings = load_run_config(CONFIG)
    settings = replace(
        settings, epochs=1, balance_sources=True, crops_per_epoch=8, val_fraction=0.2
    )
    result = train(samples, config, settings, tmp_path / "run")
    assert np.isfinite(result.history[0]["train_loss"])
