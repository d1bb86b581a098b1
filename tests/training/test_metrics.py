"""Split-level metrics on hand-made masks: always within [0, 1]."""

import numpy as np
import pytest
import torch

from training.losses import dice_bce_loss, dice_loss
from training.metrics import (
    PixelCounter,
    ThresholdSweep,
    ToleranceCounter,
    evaluate_probabilities,
    prf,
)


def line_mask(shape=(64, 64), row=32):
    mask = np.zeros(shape, bool)
    mask[row, 8:56] = True
    return mask


def test_perfect_prediction_scores_one_everywhere():
    truth = line_mask()
    m = evaluate_probabilities([(truth.astype(np.float32), truth)])
    for key in ("precision", "recall", "f1", "iou", "ods", "ois"):
        assert m[key] == pytest.approx(1.0)


def test_empty_prediction_scores_zero_recall_and_f1():
    truth = line_mask()
    m = evaluate_probabilities([(np.zeros_like(truth, np.float32), truth)])
    assert m["recall"] == 0 and m["f1"] == 0 and m["iou"] == 0 and m["ods"] == 0


def test_empty_truth_and_empty_prediction_is_perfect():
    empty = np.zeros((32, 32), bool)
    assert prf(0, 0, 0) == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": 1.0}
    assert evaluate_probabilities([(empty.astype(np.float32), empty)])["ods"] == 1.0


def test_one_pixel_shift_is_forgiven_by_the_tolerance_but_not_by_pixel_iou():
    truth = line_mask(row=32)
    shifted = line_mask(row=33).astype(np.float32)
    m = evaluate_probabilities([(shifted, truth)])
    assert m["iou"] == 0.0
    assert m["ods"] == pytest.approx(1.0) and m["ois"] == pytest.approx(1.0)


def test_three_pixel_shift_is_outside_the_two_pixel_tolerance():
    truth = line_mask(row=32)
    m = evaluate_probabilities([(line_mask(row=35).astype(np.float32), truth)])
    assert m["ods"] == 0.0


def test_counts_are_summed_over_the_split_not_averaged_per_image():
    big = np.zeros((10, 10), bool)
    big[:, :5] = True  # 50 crack pixels, all found
    small = np.zeros((10, 10), bool)
    small[0, 0] = True  # 1 crack pixel, missed
    counter = PixelCounter(0.5)
    counter.update(big.astype(np.float32), big)
    counter.update(np.zeros((10, 10), np.float32), small)
    assert counter.result()["recall"] == pytest.approx(50 / 51)  # a per-image mean would say 0.5


def test_random_predictions_keep_every_metric_in_unit_range():
    rng = np.random.default_rng(0)
    pairs = [
        (rng.random((40, 40)).astype(np.float32), rng.random((40, 40)) > 0.9) for _ in range(5)
    ]
    m = evaluate_probabilities(pairs)
    for key in ("precision", "recall", "f1", "iou", "ods", "ois"):
        assert 0.0 <= m[key] <= 1.0


def test_threshold_sweep_matches_direct_counts():
    rng = np.random.default_rng(1)
    prob, truth = rng.random((50, 60)), rng.random((50, 60)) > 0.8
    sweep = ThresholdSweep()
    sweep.update(prob, truth)
    for i in (0, 10, 30):
        direct = PixelCounter(sweep.thresholds[i])
        direct.update(prob, truth)
        assert tuple(sweep.counts[i]) == (direct.tp, direct.fp, direct.fn)


def test_ois_uses_the_best_threshold_per_image():
    truth = line_mask()
    faint = truth.astype(np.float32) * 0.2  # only found at low thresholds
    counter = ToleranceCounter()
    counter.update(faint, truth)
    assert counter.result()["ois"] == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [0.0, 1.0, 10.0, 100.0])
def test_dice_loss_stays_in_unit_range_and_total_loss_is_not_negative(scale):
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 16, 16) * scale
    target = (torch.rand(2, 1, 16, 16) > 0.7).float()
    assert 0.0 <= float(dice_loss(logits, target)) <= 1.0
    assert float(dice_bce_loss(logits, target)) >= 0.0
    assert float(dice_loss(target * 200 - 100, target)) < 0.01  # confident and right → near zero


def test_a_flat_f1_curve_gives_the_middle_of_its_plateau_not_its_noisy_maximum():
    """On 4 concrete-uav validation images the adapted model's best threshold jumped between
    0.04 and 0.96 from epoch to epoch at nearly the same F1: a flat curve's maximum is noise."""
    sweep = ThresholdSweep()
    t = sweep.thresholds
    flat = (t >= 0.1) & (t <= 0.9)
    sweep.counts[:] = [20, 10, 30]  # F1 0.5 off the plateau
    sweep.counts[flat] = [40, 10, 10]  # F1 0.8 on it
    sweep.counts[t == 0.9] = [40.5, 9.5, 10]  # a hair higher at its edge
    assert sweep.best()[0] == pytest.approx(0.9)
    threshold, figures = sweep.best(plateau=0.01)
    assert threshold == pytest.approx(0.5)
    assert figures["f1"] == pytest.approx(0.8)
    # a second plateau elsewhere, cut off by a dip, does not pull the middle towards it
    sweep.counts[t == 0.96] = [40, 10, 10]
    assert sweep.best(plateau=0.01)[0] == pytest.approx(0.5)
    # a peaked curve keeps its peak
    sweep.counts[:] = [20, 10, 30]
    sweep.counts[t == 0.3] = [40, 10, 10]
    assert sweep.best(plateau=0.01)[0] == pytest.approx(0.3)
