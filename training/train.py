r"""Train a crack-segmentation model and export it as a model-version folder.

    python -m training.train --config training/configs/unet-mobilenetv2.json \
        --data ../shared/datasets/cfd --out runs/cfd --export models/my-model

Each --data folder contributes its train split (or all pairs, for a flat images/ + masks/
folder). Interrupt and run the same command again to resume from runs/.../last.pt.

Leave-one-dataset-out: give every dataset and `--exclude NAME` (a --data folder's name) to
train without it, then `python -m training.evaluate` on NAME's test split is the zero-shot
figure, what a new tunnel will see.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

import inference
from training.data import load_train_split
from training.evaluate import evaluate_model
from training.export import export_model_version
from training.loop import load_run_config, train


def _machine(device: str | None) -> str:
    """What the run trained on, for the model card."""
    cpu = (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads={torch.get_num_threads()}"
    )
    if (device or "cuda").startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} GPU (torch {torch.__version__}); {cpu}"
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="training config JSON")
    parser.add_argument(
        "--data", type=Path, action="append", required=True, help="dataset folder (repeatable)"
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="NAME",
        help="leave out the --data folder of this name (repeatable): leave-one-dataset-out",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/latest"), help="work folder for checkpoints"
    )
    parser.add_argument("--export", type=Path, help="write the best model here as a model version")
    parser.add_argument("--epochs", type=int, help="override the config's epoch count")
    parser.add_argument("--max-minutes", type=float, help="stop after this much training time")
    parser.add_argument(
        "--schedule-minutes",
        type=float,
        help="timed run: the learning-rate cycle spans this much training time, then it stops",
    )
    parser.add_argument("--workers", type=int, help="data-loading processes (default: config's)")
    parser.add_argument(
        "--echo",
        type=int,
        help="optimizer steps per loaded batch, each repeat flipped/turned (default: config's)",
    )
    parser.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument(
        "--init", type=Path, help="start from this model version's weights (fine-tuning)"
    )
    parser.add_argument(
        "--hard-negatives",
        type=float,
        help="share of crops given drawn joints, stains, bolt holes... (default: config's)",
    )
    parser.add_argument(
        "--balance",
        action="store_true",
        help="every --data folder gives the same share of crops (default: config's)",
    )
    args = parser.parse_args(argv)

    names = {root.name for root in args.data}
    unknown = [name for name in args.exclude if name not in names]
    if unknown:
        parser.error(
            f"--exclude {', '.join(unknown)}: no --data folder of that name "
            f"(have: {', '.join(sorted(names))})"
        )
    args.data = [root for root in args.data if root.name not in args.exclude]
    if not args.data:
        parser.error("--exclude left no --data folder to train on")
    model_config, settings = load_run_config(args.config)
    if args.epochs:
        settings = replace(settings, epochs=args.epochs)
    if args.max_minutes:
        settings = replace(settings, max_minutes=args.max_minutes)
    if args.schedule_minutes:
        settings = replace(settings, schedule_minutes=args.schedule_minutes)
    if args.workers is not None:
        settings = replace(settings, num_workers=args.workers)
    if args.echo is not None:
        if args.echo < 1:
            parser.error("--echo must be 1 or more")
        settings = replace(settings, echo=args.echo)
    if args.balance:
        settings = replace(settings, balance_sources=True)
    if args.hard_negatives is not None:
        settings = replace(settings, hard_negatives=args.hard_negatives)
    init_state = None
    if args.init:
        from inference.predictor import _load_state_dict

        init_state = _load_state_dict(args.init)
    samples, problems = [], []
    for root in args.data:
        loaded, found_problems = load_train_split(root)
        samples += loaded
        problems += found_problems
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if not samples:
        parser.exit(2, "error: no usable image/mask pairs\n")
    print(
        f"training {model_config.name} on {len(samples)} pairs from {', '.join(map(str, args.data))}"
    )

    result = train(
        samples,
        model_config,
        settings,
        args.out,
        device=args.device,
        resume=not args.fresh,
        init_state=init_state,
    )
    print(
        f"best epoch {result.best_epoch}: val F1 {result.best_val.get('f1', 0):.4f} "
        f"at threshold {result.threshold:.2f}; {result.seconds / 60:.1f} min"
    )
    if args.export:
        model_config.threshold = result.threshold
        model_config.provenance = {
            "data": [f"{root} (train split)" for root in args.data],
            **({"excluded": args.exclude} if args.exclude else {}),
            **({"initialised_from": str(args.init)} if args.init else {}),
            "command": "python -m training.train "
            + shlex.join(argv if argv is not None else sys.argv[1:]),
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 1),
            "machine": _machine(args.device),
            "settings": vars(settings),
            "history": result.history,
        }
        model_config.metrics = {"val": {k: round(v, 4) for k, v in result.best_val.items()}}
        export_model_version(result.state_dict, model_config, args.export)
        predictor = inference.load(args.export)
        for root in args.data:
            if (root / "test").is_dir():
                metrics = evaluate_model(predictor, root, "test")
                model_config.metrics[f"{root.name}-test"] = {
                    k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)
                }
                print(
                    f"{root.name} test: "
                    + ", ".join(
                        f"{k} {metrics[k]:.4f}"
                        for k in ("precision", "recall", "f1", "iou", "ods", "ois")
                    )
                )
        export_model_version(result.state_dict, model_config, args.export)
        print(f"exported to {args.export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
