"""The training loop on synthetic cracks: it learns, resumes, exports and reloads."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import inference
from inference.config import build_network
from inference.synthetic import survey_image
from training.data import Sample
from training.export import export_model_version
from training.loop import CancelledError, load_run_config, train, validate

CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "unet-tiny.json"


@pytest.fixture(scope="module")
def samples():
    out = []
    for seed in range(8):
        rgb, mask, _ = survey_image(128, 96, n_cracks=2, seed=seed, widths_px=(2.5, 5.0))
        out.append(Sample(f"s{seed}", rgb, mask))
    return out


@pytest.mark.slow
def test_two_epochs_lower_the_validation_loss(samples, tmp_path):
    config, settings = load_run_config(CONFIG)
    torch.manual_seed(settings.seed)
    untrained = build_network(config)
    val = samples[:2]  # the carve-out is deterministic; compare on the same images
    before, _, _ = validate(untrained, val, config, torch.device("cpu"))
    result = train(samples, config, settings, tmp_path)
    trained = build_network(config)
    trained.load_state_dict(result.state_dict)
    after, _, _ = validate(trained, val, config, torch.device("cpu"))
    assert len(result.history) == 2
    assert after < before
    assert all(0 <= row["val_f1"] <= 1 and row["train_loss"] >= 0 for row in result.history)


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(samples, tmp_path):
    config, settings = load_run_config(CONFIG)
    first = train(samples, config, replace(settings, epochs=1), tmp_path)
    resumed = train(samples, config, settings, tmp_path)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0]


@pytest.mark.slow
def test_progress_callback_sees_every_epoch_and_can_cancel(samples, tmp_path):
    config, settings = load_run_config(CONFIG)
    seen = []
    with pytest.raises(CancelledError):
        train(samples, config, settings, tmp_path, progress=lambda r: seen.append(r.epoch) or False)
    assert seen == [1]


@pytest.mark.slow
def test_export_load_predict_round_trip(samples, tmp_path):
    config, settings = load_run_config(CONFIG)
    result = train(samples, config, replace(settings, epochs=1), tmp_path / "work")
    config.threshold = result.threshold
    folder = export_model_version(result.state_dict, config, tmp_path / "version")
    card = (folder / "MODEL_CARD.md").read_text()
    assert (
        "unet-tiny" in card
        and json.loads((folder / "config.json").read_text())["threshold"] == result.threshold
    )
    # float32 ONNX Runtime: the round trip itself (bf16 is compared in test_devices)
    predictor = inference.load(folder, backend="onnx")
    reference = build_network(config).eval()
    reference.load_state_dict(result.state_dict)
    image = samples[0].image
    with torch.inference_mode():
        x = (image.astype(np.float32) - np.array(config.mean) * 255) / (np.array(config.std) * 255)
        expected = torch.sigmoid(
            reference(torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)))
        )[0, 0]
    # weights are stored as float16: outputs agree to within that rounding, inside the image;
    # its outer border_px ring is never crack (the border rule)
    got, b = predictor.predict_proba(image), config.border_px
    np.testing.assert_allclose(got[b:-b, b:-b], expected.numpy()[b:-b, b:-b], atol=5e-3)
    ring = np.ones(got.shape, bool)
    ring[b:-b, b:-b] = False
    assert b == 2 and not got[ring].any()

    # hand-written notes beside the card survive a re-export and a recorded evaluation
    (folder / "CARD_NOTES.md").write_text("## Comparison\n\nseed vs default\n")
    export_model_version(result.state_dict, config, folder)
    from training.export import update_card_metrics

    update_card_metrics(folder, "synthetic", {"f1": 0.5, "lookalike_fp_pixel_rate": 0.25})
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.rstrip().endswith("seed vs default")
    assert "| synthetic | 0.2500 |" in card


@pytest.mark.slow
def test_training_bench_reports_step_and_epoch_times(tmp_path, capsys):
    import json

    from training import bench

    out = tmp_path / "bench.json"
    assert bench.main(["--configs", "unet-tiny", "--steps", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["config"] == "unet-tiny" and row["step_s"] > 0 and row["epoch_s"] >= row["step_s"]
    assert "s/epoch" in capsys.readouterr().out


def test_one_cycle_lr_warms_up_peaks_and_anneals():
    from training.loop import one_cycle_lr

    lrs = [one_cycle_lr(1.0, p / 100) for p in range(101)]
    assert lrs[0] == pytest.approx(1 / 25)
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 10
    assert lrs[-1] < 1e-4
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11], strict=True))
    assert all(a >= b for a, b in zip(lrs[10:-1], lrs[11:], strict=True))
    assert one_cycle_lr(1.0, 7.0) == lrs[-1]  # past the budget it stays at the floor


@pytest.mark.slow
def test_a_timed_run_stops_at_its_budget_whatever_the_epoch_count(samples, tmp_path):
    config, settings = load_run_config(CONFIG)
    settings = replace(settings, epochs=10_000, patience=10_000, schedule_minutes=0.05)
    result = train(samples, config, settings, tmp_path)
    assert 1 <= len(result.history) < 10_000
    assert result.seconds < 0.05 * 60 + 30  # the last epoch finishes its validation, no more


@pytest.mark.slow
def test_a_timed_run_chooses_its_checkpoint_only_after_select_from_of_its_budget(
    samples, tmp_path, monkeypatch
):
    """TrainSettings.select_from: epochs ending earlier than that share of the time budget are
    validated but never chosen. The validation score is made to fall epoch by epoch, so any
    rule but this one would keep the first epoch."""
    import training.loop

    scores = iter(1.0 / n for n in range(1, 10_000))
    monkeypatch.setattr(training.loop, "validate", lambda *args: (0.0, 0.5, {"f1": next(scores)}))
    config, settings = load_run_config(CONFIG)
    budget = 0.05
    settings = replace(
        settings, epochs=10_000, patience=10_000, schedule_minutes=budget, crops_per_epoch=8
    )
    for share in (0.0, 0.5, 1.5):  # past 1: the last epoch, as 1
        result = train(samples, config, replace(settings, select_from=share), tmp_path / f"{share}")
        rows = result.history
        assert len(rows) >= 3
        eligible = [r["epoch"] for r in rows if r["seconds"] >= min(share, 1) * budget * 60]
        assert result.best_epoch == eligible[0]  # the first eligible: the scores only fall
    assert result.best_epoch == len(rows)  # the last epoch, the one that crosses the budget
    assert rows[0]["epoch"] < result.best_epoch
    # patience runs from the first epoch that could be chosen: a short one never stops the
    # run before its checkpoint
    result = train(samples, config, replace(settings, select_from=0.5, patience=1), tmp_path / "p")
    eligible = [r["epoch"] for r in result.history if r["seconds"] >= 0.5 * budget * 60]
    assert eligible and result.best_epoch == eligible[0]
    assert result.history[-1]["epoch"] <= eligible[0] + 1  # then patience stops it


@pytest.mark.slow
def test_loader_workers_do_not_repeat_each_others_augmentation(samples):
    from torch.utils.data import DataLoader

    from training.loop import _CropDataset, _seed_worker

    config, _ = load_run_config(CONFIG)
    same = [samples[0]] * 8  # one image: any difference between crops is the augmentation
    dataset = _CropDataset(same, config, 64, 1)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, worker_init_fn=_seed_worker)
    first, second = (x for x, _ in loader)  # one batch from each worker
    assert not torch.equal(first, second)


def test_training_bench_measures_the_loops_own_step(tmp_path):
    import json

    from training import bench
    from training.loop import cpu_has_native_bf16

    out = tmp_path / "bench.json"
    args = ["--configs", "unet-tiny", "--steps", "1", "--modes", "loop-fp32,loop-nhwc,loop"]
    assert bench.main([*args, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    bf16 = " (bf16)" if cpu_has_native_bf16() else ""
    assert [r["mode"] for r in rows] == ["loop-fp32", f"loop-nhwc{bf16}", f"loop{bf16}"]
    with pytest.raises(SystemExit):
        bench.main(["--configs", "unet-tiny", "--modes", "fast"])


def test_training_bench_steps_on_the_batch_size_it_is_given(tmp_path, capsys):
    import json

    from training import bench

    out = tmp_path / "bench.json"
    args = ["--configs", "unet-tiny", "--steps", "1", "--modes", "loop", "--batch-size", "3"]
    assert bench.main([*args, "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["batch_size"] == 3 and "batch 3×" in capsys.readouterr().out
    assert row["crop_ms"] == pytest.approx(row["step_s"] / 3 * 1000, abs=0.25)  # both rounded
    with pytest.raises(SystemExit):
        bench.main(["--configs", "unet-tiny", "--batch-size", "1"])


def test_dihedral_gives_eight_distinct_views_that_move_image_and_mask_together():
    from training.loop import dihedral

    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    y = x[:, :1].clone()  # a mask equal to the first channel: must stay equal to it
    views = [dihedral(x, y, k) for k in range(8)]
    assert torch.equal(views[0][0], x) and torch.equal(views[0][1], y)
    assert len({tuple(v.flatten().tolist()) for v, _ in views}) == 8
    assert all(torch.equal(v[:, :1], m) for v, m in views)


@pytest.mark.slow
def test_data_echoing_makes_each_loaded_batch_count_twice(samples, tmp_path):
    config, settings = load_run_config(CONFIG)
    settings = replace(settings, epochs=1, crops_per_epoch=16, batch_size=4)

    def optimizer_steps(run_dir, echo):
        train(samples, config, replace(settings, echo=echo), run_dir)
        state = torch.load(run_dir / "last.pt", weights_only=False)["optimizer"]["state"]
        return int(state[0]["step"])

    once, twice = optimizer_steps(tmp_path / "one", 1), optimizer_steps(tmp_path / "two", 2)
    assert once == 16 // 4 and twice == 2 * once


def test_train_refuses_an_echo_below_one(tmp_path, capsys):
    from training import train as train_command

    with pytest.raises(SystemExit):
        train_command.main(["--config", str(CONFIG), "--data", str(tmp_path), "--echo", "0"])
    assert "--echo must be 1 or more" in capsys.readouterr().err


def _fine_tuner(samples, tmp_path, **model_changes):
    """(start weights, fine_tune(**settings changed) -> the fine-tuned state dict), tiny config
    (with model_changes)."""
    config, settings = load_run_config(CONFIG)
    config = replace(config, **model_changes)
    torch.manual_seed(0)
    start = build_network(config).state_dict()

    def fine_tune(**changes) -> dict:
        name = "-".join(f"{k}-{v}" for k, v in changes.items())
        work = tmp_path / name
        return train(
            samples, config, replace(settings, **changes), work, init_state=start
        ).state_dict

    return start, fine_tune


@pytest.mark.slow
def test_an_anchored_fine_tune_stays_nearer_the_weights_it_started_from(samples, tmp_path):
    """L2-SP (TrainSettings.anchor): each step pulls the weights back towards the start's."""
    start, fine_tune = _fine_tuner(samples, tmp_path)

    def drift(anchor: float) -> float:
        state = fine_tune(anchor=anchor)
        return sum(
            float(((state[k] - v) ** 2).sum())
            for k, v in start.items()
            if v.is_floating_point() and "running" not in k
        )

    free, anchored = drift(0.0), drift(20.0)
    assert free > 0
    assert anchored < 0.25 * free


def test_pull_towards_moves_each_parameter_that_share_of_the_way_back():
    from training.loop import pull_towards

    network = torch.nn.Linear(3, 2)
    anchors = [torch.zeros_like(p) for p in network.parameters()]
    before = [p.detach().clone() for p in network.parameters()]
    pull_towards(network, anchors, 0.25)
    for p, b in zip(network.parameters(), before, strict=True):
        assert torch.allclose(p, 0.75 * b)
    pull_towards(network, anchors, 3.0)  # never past the anchor
    assert all(float(p.detach().abs().max()) == 0 for p in network.parameters())


@pytest.mark.slow
def test_a_fine_tune_with_frozen_norm_keeps_the_start_models_statistics(samples, tmp_path):
    """TrainSettings.frozen_norm: the running means and variances stay the start model's,
    while the weights (batch-norm scales and shifts included) still learn."""
    start, fine_tune = _fine_tuner(samples, tmp_path)

    def moved(frozen: bool) -> tuple[float, float]:
        state = fine_tune(frozen_norm=frozen)

        def drift(keys) -> float:
            return sum(float((state[k].float() - start[k].float()).abs().max()) for k in keys)

        stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
        weights = [k for k in start if start[k].is_floating_point() and "running" not in k]
        return drift(stats), drift(weights)

    free_stats, free_weights = moved(False)
    frozen_stats, frozen_weights = moved(True)
    assert free_stats > 0 and free_weights > 0
    assert frozen_stats == 0
    assert frozen_weights > 0


@pytest.mark.slow
def test_a_fine_tune_with_frozen_blocks_holds_the_encoders_first_blocks_as_they_arrived(
    samples, tmp_path
):
    """TrainSettings.frozen_blocks: the first N encoder blocks keep the start model's weights
    and batch-norm statistics; the blocks after them and the decoder still learn."""
    start, fine_tune = _fine_tuner(samples, tmp_path, encoder="mobilenet_v2")
    state = fine_tune(frozen_blocks=2)

    def moved(prefix: str) -> list[str]:
        keys = [k for k in start if k.startswith(prefix) and start[k].is_floating_point()]
        assert keys
        return [k for k in keys if not torch.equal(state[k].float(), start[k].float())]

    assert moved("encoder.features.0.") == [] and moved("encoder.features.1.") == []
    assert moved("encoder.features.2.") and moved("decoder.")
    free = fine_tune(frozen_blocks=0)  # without it the first block learns too
    assert any(
        not torch.equal(free[k], start[k]) for k in start if k.startswith("encoder.features.0.")
    )


def test_frozen_blocks_are_refused_for_an_encoder_without_blocks_or_past_its_last():
    from training.loop import encoder_blocks

    with pytest.raises(ValueError, match="MobileNetV2"):
        encoder_blocks(torch.nn.Linear(2, 2), 1)
    resnet = build_network(load_run_config(CONFIG)[0])
    assert encoder_blocks(resnet, 0) == []
    with pytest.raises(ValueError, match="MobileNetV2"):
        encoder_blocks(resnet, 1)
    network = build_network(replace(load_run_config(CONFIG)[0], encoder="mobilenet_v2"))
    count = len(network.encoder.features)
    assert len(encoder_blocks(network, count)) == count and encoder_blocks(network, 0) == []
    with pytest.raises(ValueError, match=f"has {count} blocks"):
        encoder_blocks(network, count + 1)


def test_freeze_norm_statistics_leaves_the_other_layers_training():
    from training.loop import freeze_norm_statistics

    network = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    network.train()
    freeze_norm_statistics(network)
    assert network[0].training and not network[1].training
    before = network[1].running_mean.clone()
    network(torch.randn(4, 1, 8, 8))
    assert torch.equal(network[1].running_mean, before)


@pytest.mark.slow
def test_a_timed_run_averages_the_weights_of_the_epochs_it_may_choose_from(samples, tmp_path):
    """TrainSettings.average: the mean of the weights at the ends of the epochs select_from
    lets be chosen (each epoch's weights read back from its last.pt), validated once."""
    config, settings = load_run_config(CONFIG)
    budget = 0.05
    settings = replace(
        settings,
        epochs=10_000,
        patience=10_000,
        schedule_minutes=budget,
        crops_per_epoch=8,
        select_from=0.5,
        average=True,
    )
    weights = []

    def keep(report):
        weights.append(torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"])

    result = train(samples, config, settings, tmp_path / "run", progress=keep)
    eligible = [r["epoch"] for r in result.history if r["seconds"] >= 0.5 * budget * 60]
    assert len(eligible) >= 2 and eligible[0] > 1
    assert result.averaged.epochs == len(eligible)
    for key, value in result.averaged.state_dict.items():
        if value.is_floating_point():
            expected = torch.stack([weights[e - 1][key].float() for e in eligible]).mean(0)
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(value, weights[eligible[-1] - 1][key])
    assert not torch.equal(
        result.averaged.state_dict["decoder.blocks.0.conv1.0.weight"],
        result.state_dict["decoder.blocks.0.conv1.0.weight"],
    )
    assert 0.0 <= result.averaged.val["f1"] <= 1.0 and 0.0 < result.averaged.threshold < 1.0
    assert (
        train(samples, config, replace(settings, average=False), tmp_path / "off").averaged is None
    )


@pytest.mark.slow
def test_others_at_end_validates_only_the_deciding_surface_each_epoch(
    samples, tmp_path, monkeypatch
):
    """TrainSettings.others_at_end: with select_by "source:new" every epoch validates the new
    surface's images alone; the chosen checkpoint is validated on all of them once, at the end,
    so its row still has every dataset's figures."""
    import training.loop

    mixed = [replace(s, source="new" if i < 4 else "base") for i, s in enumerate(samples)]
    seen = []
    real = training.loop.validate

    def counting(network, images, *args):
        seen.append(sorted({s.source for s in images}))
        return real(network, images, *args)

    monkeypatch.setattr(training.loop, "validate", counting)
    config, settings = load_run_config(CONFIG)
    settings = replace(
        settings,
        epochs=3,
        crops_per_epoch=8,
        select_by="source:new",
        stratify_val=True,
        val_fraction=0.25,
        others_at_end=True,
    )
    result = train(samples=mixed, config=config, settings=settings, workdir=tmp_path / "end")
    assert seen == [["new"]] * 3 + [["base", "new"]]
    chosen = next(r for r in result.history if r["epoch"] == result.best_epoch)
    assert set(chosen["val_by_source"]) == {"base", "new"}
    assert chosen["val_by_source"]["new"]["f1"] == pytest.approx(result.best_val["f1"])

    seen.clear()
    result = train(mixed, config, replace(settings, others_at_end=False), tmp_path / "every")
    assert seen == [["base", "new"]] * 3


def test_training_layout_keeps_the_narrow_full_resolution_layers_nchw_with_the_same_values():
    from training.loop import narrow_layers, training_layout

    config, _ = load_run_config(CONFIG.parent / "unet-mobilenetv2-cpu-real.json")  # ends in 12
    torch.manual_seed(0)
    plain = build_network(config).train()
    laid_out = build_network(config).train()
    laid_out.load_state_dict(plain.state_dict())
    plain = plain.to(memory_format=torch.channels_last)
    laid_out = training_layout(laid_out, "cpu")
    assert narrow_layers(laid_out) == [laid_out.decoder.blocks[-1], laid_out.segmentation_head]

    seen = {}
    laid_out.decoder.blocks[-1].register_forward_hook(lambda m, a, out: seen.update(last=out))
    laid_out.decoder.blocks[-2].register_forward_hook(lambda m, a, out: seen.update(wide=out))
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    a, b = plain(x), laid_out(x)
    assert seen["last"].is_contiguous()  # NCHW
    assert seen["wide"].is_contiguous(memory_format=torch.channels_last)
    first_conv = laid_out.encoder.features[0][0].weight
    assert first_conv.is_contiguous(memory_format=torch.channels_last)
    assert laid_out.segmentation_head[0].weight.is_contiguous()
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    a.square().mean().backward()
    b.square().mean().backward()
    grads = [
        (p.grad, q.grad) for p, q in zip(plain.parameters(), laid_out.parameters(), strict=True)
    ]
    grads = [(p, q) for p, q in grads if p is not None or q is not None]
    scale = max(float(p.abs().max()) for p, _ in grads)
    for p, q in grads:  # float32 sums in another order: differences of 1e-8, gradients of 1e-3
        torch.testing.assert_close(q, p, rtol=0, atol=1e-4 * scale)

    # a GPU keeps NHWC throughout; a decoder of 16 channels or more has no narrow layers
    on_gpu = training_layout(build_network(config), "cuda")
    assert on_gpu.segmentation_head[0].weight.is_contiguous(memory_format=torch.channels_last)
    wide = replace(config, decoder_channels=[96, 48, 16, 16])
    assert narrow_layers(build_network(wide)) == []
