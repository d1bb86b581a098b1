"""Issue 17: the training mix, the border rule, the survey augmentation, the thin-crack loss,
one threshold across surfaces, leave-one-dataset-out training and the cross-dataset table."""

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import inference
from inference.config import build_network
from inference.synthetic import survey_image
from tests.training.datasets import crop_figures, write_dataset
from training.augment import add_frame, train_transform, uneven_light
from training.data import Sample
from training.evaluate import main as evaluate_main
from training.export import export_model_version
from training.loop import TrainSettings, crop_shares, load_run_config, sampling_weights, train
from training.losses import cldice_loss, crack_loss, dice_loss, soft_skeleton
from training.metrics import ThresholdSweep, best_across
from training.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "training" / "configs" / "unet-tiny.json"


def _samples(counts: dict[str, int], size=(64, 64)) -> list[Sample]:
    out = []
    for source, n in counts.items():
        for i in range(n):
            rgb, mask, _ = survey_image(*size, n_cracks=1, seed=len(out), widths_px=(2.0, 3.0))
            out.append(Sample(f"{source}{i}", rgb, mask, source=source))
    return out


# -- the data mix ----------------------------------------------------------------------------


def test_the_mix_sets_each_datasets_share_of_crops_whatever_its_size():
    samples = _samples({"big": 30, "small": 3}, size=(32, 32))
    natural = crop_shares(samples, TrainSettings())
    assert natural == pytest.approx({"big": 30 / 33, "small": 3 / 33})
    balanced = crop_shares(samples, TrainSettings(balance_sources=True))
    assert balanced == pytest.approx({"big": 0.5, "small": 0.5})
    mixed = TrainSettings(mix={"small": 3, "big": 1})
    assert crop_shares(samples, mixed) == pytest.approx({"big": 0.25, "small": 0.75})
    # the sampler really draws that mix
    weights = sampling_weights(samples, mixed)
    draws = torch.multinomial(
        torch.tensor(weights), 20000, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    small_share = float(np.mean([samples[i].source == "small" for i in draws.tolist()]))
    assert small_share == pytest.approx(0.75, abs=0.02)
    # a dataset the mix does not name weighs 1
    assert crop_shares(_samples({"a": 2, "b": 2, "c": 2}, (32, 32)), TrainSettings(mix={"a": 2}))[
        "a"
    ] == pytest.approx(0.5)


GPU_RECIPE_CONFIGS = [
    "unet-mobilenetv2-gpu-real",
    "unet-mobilenetv2-gpu-real-echo",
    "unet-mobilenetv2-wide-gpu",
    "unet-mobilenetv2-wide-gpu-plain",
    "unet-mobilenetv2-wide-gpu-polish",
    "unet-mobilenetv2-wide-gpu-plain-lookalikes",
]


@pytest.mark.parametrize("name", GPU_RECIPE_CONFIGS)
def test_each_gpu_recipe_config_trains_on_all_five_datasets_with_a_documented_mix(name):
    _, settings = load_run_config(ROOT / "training" / "configs" / f"{name}.json")
    assert f"training/configs/{name}.json" in (ROOT / "training" / "gpu_recipe.sh").read_text()
    assert set(settings.mix) == {"cfd", "deepcrack", "masonry", "concrete-uav", "tunnel-lining"}
    assert settings.skeleton_weight > 0 and settings.frames > 0 and settings.survey_augment
    assert settings.select_by == "mean"
    card = (ROOT / "models" / "default" / "MODEL_CARD.md").read_text()
    assert "tunnel-lining" in card and "zero-shot" in card.lower()


def test_plain_crops_keep_their_scale_and_can_keep_the_drawn_lookalikes(monkeypatch):
    """`plain_sources` crops: plain scale always; drawn look-alikes only with plain_lookalikes."""
    config, _ = load_run_config(TINY)
    settings = TrainSettings(survey_augment=True, hard_negatives=1.0, plain_sources=("real",))
    found = {
        keep: crop_figures(
            monkeypatch, config, replace(settings, plain_lookalikes=keep), "real", 100
        )
        for keep in (False, True)
    }
    assert found[False][1] == 0 and found[True][1] == 100
    assert found[False][0] <= 8 * 1.25 + 2.5 and found[True][0] <= 8 * 1.25 + 2.5


# -- the border rule -------------------------------------------------------------------------


class _Everywhere(torch.nn.Module):
    """A network that calls every pixel crack (logit +5): only the border rule can clear one."""

    def forward(self, x):
        return torch.full((x.shape[0], 1, *x.shape[2:]), 5.0)


def _predictor_calling_everything_crack(tmp_path, tile_size=64, border_px=2):
    config, _ = load_run_config(TINY)
    config.tile_size, config.tile_overlap, config.border_px = tile_size, 16, border_px
    network = build_network(config)
    folder = export_model_version(network.state_dict(), config, tmp_path / "model")
    predictor = inference.load(folder, backend="torch")
    predictor.backend.network = _Everywhere()
    return predictor


def test_an_image_border_is_never_a_crack_in_the_probabilities_and_the_banded_mask(tmp_path):
    predictor = _predictor_calling_everything_crack(tmp_path)
    image = np.zeros((150, 170, 3), np.uint8)  # several rows and columns of 64-px tiles
    image[:, :3] = 255  # a bright margin: the hard step an image edge makes
    proba = predictor.predict_proba(image)
    mask, proba8 = predictor.predict_mask_and_proba(image)
    ring = np.ones(image.shape[:2], bool)
    ring[2:-2, 2:-2] = False
    assert not proba[ring].any() and not mask[ring].any() and not proba8[ring].any()
    assert mask[~ring].all() and (proba[~ring] > 0.99).all()  # nothing inside is touched
    assert np.array_equal(predictor.predict_mask(image), mask)


def test_border_rule_can_be_switched_off_per_model(tmp_path):
    predictor = _predictor_calling_everything_crack(tmp_path, border_px=0)
    assert predictor.predict_mask(np.zeros((40, 50, 3), np.uint8)).all()


# -- survey augmentation ---------------------------------------------------------------------


def test_a_frame_puts_a_hard_background_edge_into_the_crop():
    rgb, mask, _ = survey_image(96, 96, n_cracks=3, seed=1, widths_px=(3.0, 4.0))
    mask[:, :] = True  # every pixel crack before: the frame must clear its part
    one_side = 0
    for seed in range(20):
        image, framed = add_frame(rgb, mask, np.random.default_rng(seed))
        cleared = ~framed
        assert cleared.any() and cleared.mean() <= 0.35 * 2 + 1e-9
        # the cleared part is a margin along a side, flat (noise only) and different from the photo
        rows, cols = np.where(cleared)
        touches_side = rows.min() == 0 or cols.min() == 0 or rows.max() == 95 or cols.max() == 95
        assert touches_side
        box = cleared[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        if box.all():  # one side: one flat colour with a little noise
            one_side += 1
            assert image[cleared].std(axis=0).max() < 10
    assert np.array_equal(
        add_frame(rgb, mask, np.random.default_rng(3))[0],
        add_frame(rgb, mask, np.random.default_rng(3))[0],
    )


def test_uneven_light_is_smooth_and_keeps_the_crack_visible():
    flat = np.full((128, 128, 3), 150, np.uint8)
    lit = uneven_light(flat, np.random.default_rng(0))
    assert lit.dtype == np.uint8 and lit.shape == flat.shape
    assert lit.std() > 5  # the light really varies
    assert np.abs(np.diff(lit[..., 0].astype(int), axis=1)).max() <= 3  # smoothly


def test_survey_transform_covers_half_to_double_scale_and_keeps_masks_binary():
    transform = train_transform(64, survey=True)
    names = [type(t).__name__ for t in transform.transforms]
    assert {"ImageCompression", "Affine"} <= set(names)
    affine = next(t for t in transform.transforms if type(t).__name__ == "Affine")
    assert affine.scale["x"] == (0.5, 2.0)
    transform.set_random_seed(0)
    rgb, mask, _ = survey_image(128, 128, n_cracks=2, seed=4, widths_px=(2.0, 3.0))
    for _ in range(10):
        out = transform(image=rgb, mask=mask.astype(np.uint8))
        assert out["image"].shape == (64, 64, 3) and set(np.unique(out["mask"])) <= {0, 1}


# -- the thin-crack loss ---------------------------------------------------------------------


_POINTS = [(8, 20), (40, 52), (70, 48), (100, 90), (120, 110)]


def _drawn_crack(width=2, size=128):
    mask = np.zeros((size, size), np.uint8)
    cv2.polylines(mask, [np.array(_POINTS, np.int32)], False, 1, width)
    return mask.astype(bool)


def _logits(mask):
    return torch.from_numpy(np.where(mask, 8.0, -8.0)[None, None].astype(np.float32))


def test_soft_skeleton_of_a_drawn_crack_is_its_thin_centre_line():
    mask = _drawn_crack(width=5)
    skeleton = soft_skeleton(torch.from_numpy(mask[None, None].astype(np.float32)))[0, 0].numpy()
    assert skeleton[~mask].max() == 0  # inside the crack
    length = sum(
        np.hypot(*np.subtract(p, q)) for p, q in zip(_POINTS[:-1], _POINTS[1:], strict=True)
    )
    assert 0.5 * length < skeleton.sum() < 1.2 * length  # about one pixel across, not five


def test_cldice_punishes_a_broken_thin_crack_more_than_an_equally_thin_whole_one():
    truth = _drawn_crack(width=3)
    target = torch.from_numpy(truth[None, None].astype(np.float32))
    # broken: four gaps cut across the crack; thinned: the same number of pixels taken from
    # one side along its whole length (still continuous)
    broken = truth.copy()
    ys, xs = np.where(truth)
    order = np.argsort(xs)
    for start in (0.2, 0.4, 0.6, 0.8):
        cut = order[int(start * len(order)) : int(start * len(order)) + len(order) // 16]
        broken[ys[cut], xs[cut]] = False
    removed = truth.sum() - broken.sum()
    eroded = cv2.erode(truth.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
    side = np.argwhere(truth & ~eroded)
    thinned = truth.copy()
    pick = np.random.default_rng(0).choice(len(side), size=removed, replace=False)
    thinned[side[pick, 0], side[pick, 1]] = False
    assert broken.sum() == thinned.sum()
    # Dice cannot tell them apart; clDice can, and a whole prediction scores near zero
    assert float(dice_loss(_logits(broken), target)) == pytest.approx(
        float(dice_loss(_logits(thinned), target)), abs=1e-3
    )
    assert (
        float(cldice_loss(_logits(broken), target))
        > float(cldice_loss(_logits(thinned), target)) + 0.02
    )
    assert float(cldice_loss(_logits(truth), target)) < 0.02
    assert float(crack_loss(_logits(broken), target, 0.5)) > float(
        crack_loss(_logits(thinned), target, 0.5)
    )


def test_skeleton_loss_gradients_reach_the_gaps_of_a_broken_crack():
    truth = _drawn_crack(width=3)
    target = torch.from_numpy(truth[None, None].astype(np.float32))
    logits = torch.full((1, 1, 128, 128), -2.0, requires_grad=True)
    cldice_loss(logits, target).backward()
    grad = logits.grad[0, 0].numpy()
    assert grad[truth].mean() < 0  # raise the crack's logits
    assert grad[truth].mean() < grad[~truth].mean()


# -- one threshold across surfaces ----------------------------------------------------------


def test_one_threshold_is_chosen_for_the_mean_of_the_surfaces_not_the_biggest():
    rng = np.random.default_rng(0)
    truth_big = rng.random((200, 200)) < 0.3  # many crack pixels, best at a high threshold
    prob_big = np.where(truth_big, 0.9, rng.uniform(0, 0.6, truth_big.shape))
    truth_small = np.zeros((60, 60), bool)
    truth_small[30, 5:55] = True  # one hairline the model is under-confident on
    prob_small = np.where(truth_small, 0.35, 0.05)
    pooled, sweeps = ThresholdSweep(), {"big": ThresholdSweep(), "small": ThresholdSweep()}
    for name, p, t in (("big", prob_big, truth_big), ("small", prob_small, truth_small)):
        pooled.update(p, t)
        sweeps[name].update(p, t)
    pooled_threshold, _ = pooled.best()
    threshold, mean, per_source = best_across(sweeps)
    assert pooled_threshold > 0.35  # pooled: the big dataset chooses, the hairline is lost
    assert 0.06 <= threshold <= 0.35 and per_source["small"]["f1"] == 1.0
    assert mean["f1"] == pytest.approx((per_source["big"]["f1"] + 1.0) / 2)


# -- leave-one-dataset-out and the cross-dataset table -----------------------------------------


@pytest.mark.slow
def test_leave_one_dataset_out_then_a_table_row_per_dataset(tmp_path, capsys):
    both = {"train": 3, "test": 3}
    a, b = write_dataset(tmp_path / "alpha", 0, both), write_dataset(tmp_path / "beta", 10, both)
    data = ["--data", str(a), "--data", str(b)]
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--config", str(TINY), *data, "--exclude", "gamma"])
    assert exit_info.value.code == 2
    assert "no --data folder of that name" in capsys.readouterr().err

    model = tmp_path / "model"
    code = train_main(
        [
            "--config",
            str(TINY),
            *data,
            "--exclude",
            "beta",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "run"),
            "--export",
            str(model),
            "--fresh",
        ]
    )
    assert code == 0
    provenance = json.loads((model / "config.json").read_text())["provenance"]
    assert provenance["excluded"] == ["beta"] and provenance["data"] == [f"{a} (train split)"]
    out = capsys.readouterr().out
    assert "alpha test" in out and "beta test" not in out

    assert evaluate_main(["--model", str(model), *data, "--split", "test"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["dataset", "precision", "recall", "f1"]
    assert [line.split()[0] for line in lines[1:]] == ["alpha", "beta", "mean"]
    assert evaluate_main(["--model", str(model), *data, "--split", "test", "--json"]) == 0
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(table) == {"alpha", "beta", "mean"} and table["alpha"]["images"] == 3
    assert table["mean"]["f1"] == pytest.approx(
        (table["alpha"]["f1"] + table["beta"]["f1"]) / 2, abs=1e-3
    )


@pytest.mark.slow
def test_a_run_with_the_new_recipe_trains_and_reports_each_surface(tmp_path, capsys):
    samples = _samples({"lining": 4, "walls": 4}, size=(96, 96))
    config, settings = load_run_config(TINY)
    settings = replace(
        settings,
        epochs=1,
        crops_per_epoch=8,
        val_fraction=0.5,
        mix={"lining": 2},
        survey_augment=True,
        uneven_light=0.5,
        frames=0.5,
        skeleton_weight=0.5,
        select_by="mean",
    )
    result = train(samples, config, settings, tmp_path / "run")
    row = result.history[0]
    assert np.isfinite(row["train_loss"]) and set(row["val_by_source"]) == {"lining", "walls"}
    assert "crop shares: lining 67%, walls 33%" in capsys.readouterr().out


def test_calibration_error_is_zero_for_honest_probabilities_and_large_for_overconfident():
    from training.metrics import CalibrationCounter

    rng = np.random.default_rng(0)
    prob = rng.random((300, 300))
    honest, overconfident = CalibrationCounter(), CalibrationCounter()
    honest.update(prob, rng.random(prob.shape) < prob)
    overconfident.update(np.where(prob > 0.5, 0.99, 0.01), rng.random(prob.shape) < prob)
    assert honest.result()["ece"] < 0.01 and overconfident.result()["ece"] > 0.2


def test_platt_scaling_recovers_a_known_miscalibration():
    from training.validate import fit_platt

    rng = np.random.default_rng(1)
    true_logit = rng.normal(0, 3, 200_000)
    truth = rng.random(true_logit.size) < 1 / (1 + np.exp(-true_logit))
    a, b = fit_platt((true_logit - 2.0) / 0.5, truth)  # a model 2× too sharp and biased
    assert a == pytest.approx(0.5, abs=0.03) and b == pytest.approx(2.0, abs=0.06)


def test_an_adaptation_chooses_its_checkpoint_by_the_new_surface(tmp_path):
    samples = _samples({"new": 4, "base": 4}, size=(96, 96))
    config, settings = load_run_config(TINY)
    settings = replace(
        settings, epochs=1, crops_per_epoch=8, val_fraction=0.5, select_by="source:new"
    )
    result = train(samples, config, settings, tmp_path / "run")
    row = result.history[0]
    assert row["val_f1"] == pytest.approx(row["val_by_source"]["new"]["f1"])
    assert set(row["val_by_source"]) == {"new", "base"}


def test_an_adaptation_validates_on_a_fifth_of_the_new_surface(tmp_path, monkeypatch):
    """A tenth of 20 images (2) chose the adapted model's threshold badly; a fifth (4) does."""
    import training.adapt as adapt_module
    from training.loop import TrainResult, split_train_val

    seen = {}

    def run(samples, config, settings, workdir, **kwargs):  # records how adapt() trains
        seen["split"] = split_train_val(
            samples, settings.val_fraction, settings.seed, settings.stratify_val
        )
        seen["select_by"] = settings.select_by
        seen["plateau"] = settings.threshold_plateau
        return TrainResult({}, 0.5, 1, {}, [], 0.0)

    monkeypatch.setattr(adapt_module, "train", run)
    samples = _samples({"new": 20, "base": 40}, size=(16, 16))
    new, base = samples[:20], samples[20:]
    adapt_module.adapt({}, new, base, tmp_path, adapt_module.AdaptSettings(minutes=0.1))
    train_set, val = seen["split"]
    assert sum(s.source == adapt_module.NEW for s in val) == 4
    assert sum(s.source == adapt_module.NEW for s in train_set) == 16
    assert sum(s.source == "base" for s in val) == 8
    assert seen["select_by"] == f"source:{adapt_module.NEW}"
    # its threshold: the middle of the new surface's near-best thresholds (ThresholdSweep.best)
    assert seen["plateau"] == 0.01


def test_a_stratified_split_keeps_every_dataset_in_validation():
    from training.loop import split_train_val

    samples = _samples({"big": 40, "small": 3}, size=(16, 16))
    _, val = split_train_val(samples, 0.1, 42, stratify=True)
    assert {s.source for s in val} == {"big", "small"} and len(val) == 4 + 1
    train_set, val_plain = split_train_val(samples, 0.1, 42)
    assert len(val_plain) == 4 and len(train_set) == 39  # the unstratified split is unchanged


def test_soft_skeleton_reuses_each_erosion_pools_the_batch_as_channels_and_gives_the_papers_values_and_gradients():
    import torch.nn.functional as F

    from training.losses import soft_skeleton

    def _erode(x):  # the paper's soft erosion, one channel per image
        across = -F.max_pool2d(-x, (3, 1), stride=1, padding=(1, 0))
        along = -F.max_pool2d(-x, (1, 3), stride=1, padding=(0, 1))
        return torch.minimum(across, along)

    def _dilate(x):
        return F.max_pool2d(x, 3, stride=1, padding=1)

    def paper(x, iterations=10):  # Shit et al. 2021, as written there
        skeleton = F.relu(x - _dilate(_erode(x)))
        for _ in range(iterations):
            x = _erode(x)
            delta = F.relu(x - _dilate(_erode(x)))
            skeleton = skeleton + F.relu(delta - skeleton * delta)
        return skeleton

    torch.manual_seed(0)
    logits = torch.randn(3, 1, 48, 64, requires_grad=True)
    ours = soft_skeleton(torch.sigmoid(logits))
    assert ours.shape == logits.shape and ours.is_contiguous()
    (grad_ours,) = torch.autograd.grad(ours.sum(), logits)
    reference = paper(torch.sigmoid(logits))
    (grad_ref,) = torch.autograd.grad(reference.sum(), logits)
    assert torch.equal(ours, reference)
    # the same gradient, summed in another order where an erosion serves twice
    torch.testing.assert_close(grad_ours, grad_ref, rtol=0, atol=1e-6)
    # probabilities in tenths: ties in most pooling windows go to the same pixel both ways
    tenths = (torch.rand(3, 1, 48, 64) * 10).round().div(10).requires_grad_(True)
    weights = torch.rand(3, 1, 48, 64)
    (grad_ours,) = torch.autograd.grad((soft_skeleton(tenths) * weights).sum(), tenths)
    (grad_ref,) = torch.autograd.grad((paper(tenths) * weights).sum(), tenths)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=0, atol=1e-6)


def test_the_targets_skeleton_from_opencv_equals_the_soft_skeleton_of_a_binary_mask():
    from training.losses import binary_skeleton, soft_skeleton

    masks = [_drawn_crack(width=w) for w in (1, 3, 9)]
    blob = np.zeros((128, 128), bool)
    blob[:5, :40] = True  # touching two borders: erosion ignores what lies outside
    blob[40:60, 122:] = True
    masks.append(blob)
    masks.append(np.random.default_rng(0).random((128, 128)) > 0.5)
    target = torch.from_numpy(np.stack(masks)[:, None].astype(np.float32))
    exact = binary_skeleton(target)
    assert exact.dtype == torch.float32 and exact.shape == target.shape
    assert torch.equal(exact, soft_skeleton(target))
    assert exact[0].sum() > 0 and exact[3].sum() > 0


def test_cldice_takes_the_opencv_skeleton_only_for_a_binary_target(monkeypatch):
    import training.losses as losses

    truth = torch.from_numpy(_drawn_crack(width=3)[None, None].astype(np.float32))
    logits = torch.randn(1, 1, 128, 128)
    calls = []
    real = losses.binary_skeleton
    monkeypatch.setattr(losses, "binary_skeleton", lambda *a: calls.append(1) or real(*a))
    binary = float(cldice_loss(logits, truth))
    soft = float(cldice_loss(logits, truth * 0.7))  # a soft target keeps the pooled skeleton
    assert calls == [1]
    monkeypatch.setattr(losses, "binary_skeleton", losses.soft_skeleton)
    assert binary == pytest.approx(float(cldice_loss(logits, truth)), abs=1e-7)
    assert soft != pytest.approx(binary)
