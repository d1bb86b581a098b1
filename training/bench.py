"""Training-speed benchmark: seconds per training step and per epoch, default vs the seed config.

    python -m training.bench [--configs unet-mobilenetv2,deeplabv3-mobilenetv2] [--steps 4]
                             [--modes plain,loop-fp32,loop-nhwc,loop] [--batch-size N]

Each config trains for a few steps on the same random batches (its own batch size and crop
size, the same thread count) after one warm-up step; an epoch is crops_per_epoch /
batch_size steps. Modes: "plain" (default) is fp32, NCHW, Dice + BCE: the architectures
compared alike, and the last line is the ratio of the seed's (deeplabv3-mobilenetv2) epoch
time to the default's, measured in this run. "loop" is the step as training.loop runs it:
the config's loss (clDice term included), channels-last (on a CPU the narrow layers at full
resolution NCHW: `training_layout`), bfloat16 autocast where the CPU has bf16 in hardware;
"loop-nhwc" the same with every layer channels-last, as the loop ran it before 2026-11-28
night; "loop-fp32" the step in float32 NCHW, as it ran before that. Modes run in the order
given, and may repeat (`--modes loop-nhwc,loop,loop-nhwc,loop` alternates them on a noisy
machine). Data loading is excluded: it is the same for all. --batch-size replaces each
config's batch size (the adaptation's 4 against the recipe's 8: the seconds per crop are
printed beside the step's).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from inference.config import build_network
from training.loop import cpu_has_native_bf16, load_run_config, train_step, training_layout
from training.losses import dice_bce_loss

MODES = ("plain", "loop-fp32", "loop-nhwc", "loop")

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
BASELINE = "deeplabv3-mobilenetv2"


def step_seconds(
    name: str, steps: int, device: str = "cpu", mode: str = "plain", batch_size: int | None = None
) -> dict:
    """Mean seconds of one optimizer step (forward, loss, backward, AdamW) for a config."""
    config, settings = load_run_config(CONFIG_DIR / f"{name}.json")
    if batch_size:
        settings = replace(settings, batch_size=batch_size)
    torch.manual_seed(0)
    network = build_network(config).to(device).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings.lr)
    size = settings.crop_size
    images = torch.randn(settings.batch_size, 3, size, size, device=device)
    masks = (torch.rand(settings.batch_size, 1, size, size, device=device) > 0.95).float()
    bf16 = mode in ("loop", "loop-nhwc") and (device == "cuda" or cpu_has_native_bf16())
    if mode == "loop":
        network = training_layout(network, device)
    elif mode == "loop-nhwc":
        network = network.to(memory_format=torch.channels_last)
    times = []
    for i in range(steps + 1):
        started = time.perf_counter()
        if mode == "plain":
            optimizer.zero_grad(set_to_none=True)
            dice_bce_loss(network(images), masks).backward()
            optimizer.step()
        else:  # the loop's own step
            train_step(
                network,
                optimizer,
                images,
                masks,
                settings.skeleton_weight,
                bf16,
                mode != "loop-fp32",
            )
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - started)
    per_step = sum(times) / len(times)
    crops = settings.crops_per_epoch or 100  # the loop's epoch without a fixed crop count
    steps_per_epoch = max(1, crops // settings.batch_size)
    return {
        "config": name,
        "mode": mode + (" (bf16)" if bf16 else ""),
        "batch_size": settings.batch_size,
        "crop_size": size,
        "step_s": round(per_step, 3),
        "crop_ms": round(per_step / settings.batch_size * 1000, 1),
        "epoch_s": round(per_step * steps_per_epoch, 1),
        "params_m": round(sum(p.numel() for p in network.parameters()) / 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--configs", default=f"unet-mobilenetv2,{BASELINE}")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per config")
    parser.add_argument(
        "--modes", default="plain", help=f"how each step runs, of {', '.join(MODES)} (plain)"
    )
    parser.add_argument(
        "--batch-size", type=int, metavar="N", help="crops a step (default: each config's own)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    names = [n for n in args.configs.split(",") if n]
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes: one or more of {', '.join(MODES)}")
    if args.batch_size is not None and args.batch_size < 2:
        parser.error("--batch-size: 2 or more (batch norm)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    results = []
    for name in names:
        for mode in modes:
            row = step_seconds(name, args.steps, mode=mode, batch_size=args.batch_size)
            results.append(row)
            print(
                f"{name:26s} {row['mode']:16s} batch {row['batch_size']}×{row['crop_size']}²  "
                f"{row['params_m']:6.2f} M params  {row['step_s']:7.3f} s/step  "
                f"{row['crop_ms']:6.1f} ms/crop  "
                f"{row['epoch_s']:8.1f} s/epoch"
            )
    by_name = {r["config"]: r for r in results if r["mode"] == "plain"}
    if BASELINE in by_name:
        for row in results:
            if row["config"] != BASELINE and row["mode"] == "plain":
                ratio = by_name[BASELINE]["epoch_s"] / row["epoch_s"]
                row["speedup_vs_seed"] = round(ratio, 2)
                print(f"{row['config']} trains {ratio:.1f}× faster per epoch than {BASELINE}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
