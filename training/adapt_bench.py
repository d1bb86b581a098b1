r"""How much does adapting to a new surface buy? The portal's adaptation, measured.

    python -m training.adapt_bench --data ../shared/datasets/tunnel-lining \
        [--images 20] [--minutes 15] [--model models/zero-shot] [--exclude NAME] [--json FILE]
        [--backend B] [--share 0.5] [--anchor 0] [--frozen-norm] [--frozen-blocks N]
        [--select-from 0.5] [--average] [--skeleton-weight W] [--crop-size PX]
        [--batch-size 4] [--base-images 30]

Starts from a model that never saw DIR's dataset (default: models/zero-shot, trained without
tunnel-lining and concrete-uav; refused if its provenance names DIR), fine-tunes it with
`training.adapt.adapt` (the code behind the portal's "Adapt to tunnels") on --images train
images of DIR plus a share of the other datasets beside DIR (minus --exclude), for --minutes
of training, and prints DIR's test F1 / IoU / ODS before and after, beside the all-data
model's (models/default). And what it forgot, two ways: the base datasets' validation F1 of
the start model (validated before the first step) beside the chosen checkpoint's, on the
images the run held back, each at the threshold its new surface chose; and, where the run
never looked, up to --base-images train images of each base dataset that it did not draw,
before and after, each model at its own threshold. Targets (issue 18, 2-core CPU, 20 images,
15 minutes): F1 up by at least 0.15, and at least 90 % of the all-data model's F1.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

import inference
from inference.backends import openvino_available
from inference.config import ModelConfig
from inference.predictor import BACKENDS
from training.adapt import NEW, AdaptSettings, adapt, base_share, judge
from training.data import Sample, load_train_split
from training.evaluate import evaluate_model
from training.export import export_model_version

ROOT = Path(__file__).resolve().parent.parent
GAIN_TARGET, SHARE_TARGET = 0.15, 0.90


def base_figures(by_source: dict) -> dict[str, float]:
    """The base datasets' F1 from a validation row's by-source figures (the new surface's out)."""
    return {k: v["f1"] for k, v in by_source.items() if k != NEW}


def unseen_base(
    base: list[Sample], settings: AdaptSettings, per_dataset: int
) -> dict[str, list[Sample]]:
    """Up to per_dataset of each base dataset's images that the adaptation did not draw."""
    drawn = {(s.source, s.name) for s in base_share(base, settings)}
    unseen: dict[str, list[Sample]] = {}
    for s in sorted(base, key=lambda s: (s.source or "", s.name)):
        group = unseen.setdefault(s.source or "base", [])
        if (s.source, s.name) not in drawn and len(group) < per_dataset:
            group.append(s)
    return {source: images for source, images in unseen.items() if images}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.adapt_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="the new surface's dataset")
    parser.add_argument("--images", type=int, default=20, help="its train images used (20)")
    parser.add_argument("--minutes", type=float, default=15.0, help="training time (15)")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "zero-shot")
    parser.add_argument("--reference", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--share",
        type=float,
        default=AdaptSettings.new_share,
        help="share of training crops cut from DIR's images (default %(default)s; the rest "
        "from the base datasets)",
    )
    parser.add_argument(
        "--anchor",
        type=float,
        default=AdaptSettings.anchor,
        help="pull of the weights back towards the start model's, per unit of learning rate "
        "(L2-SP; default %(default)s: off)",
    )
    parser.add_argument(
        "--frozen-norm",
        action="store_true",
        help="keep the start model's batch-norm statistics (default: they follow the new mix)",
    )
    parser.add_argument(
        "--frozen-blocks",
        type=int,
        default=AdaptSettings.frozen_blocks,
        metavar="N",
        help="hold the encoder's first N blocks as the start model has them: shorter steps, "
        "more epochs (default %(default)s: every layer learns)",
    )
    parser.add_argument(
        "--select-from",
        type=float,
        default=AdaptSettings.select_from,
        help="choose the checkpoint only from epochs ending after this share of the time "
        "(default %(default)s: the second half; 0: any epoch)",
    )
    parser.add_argument(
        "--average",
        action="store_true",
        help="also measure the mean of the weights of the epochs --select-from lets be chosen "
        "(stochastic weight averaging), beside the chosen checkpoint",
    )
    parser.add_argument(
        "--skeleton-weight",
        type=float,
        default=AdaptSettings.skeleton_weight,
        help="weight of the clDice term in the adaptation's steps (default: the recipe's)",
    )
    parser.add_argument(
        "--crop-size",
        type=int,
        default=AdaptSettings.crop_size,
        metavar="PX",
        help="side of the training crops (default: the recipe's)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=AdaptSettings.batch_size,
        metavar="N",
        help="crops in each optimizer step (default %(default)s; the recipe's is 8)",
    )
    parser.add_argument(
        "--base-images",
        type=int,
        default=30,
        help="base train images per dataset, not drawn by the run, measured before and after "
        "(what was forgotten; default %(default)s, 0: none)",
    )
    parser.add_argument("--out", type=Path, help="export the adapted model here")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="how every model runs (default: OpenVINO float32 where installed, else auto): one "
        "runtime for all three, as auto may run the all-data model in int8 and the others not",
    )
    args = parser.parse_args(argv)

    name = args.data.name
    if not (args.data / "test").is_dir():
        parser.exit(2, f"error: {args.data} has no test split\n")
    start_config = ModelConfig.load(args.model / "config.json")
    seen = " ".join(start_config.provenance.get("data", []))
    if f"/{name} " in f"{seen} " or f"/{name}/" in seen or seen.startswith(f"{name} "):
        parser.exit(
            2, f"error: {args.model} was trained on {name}: give --model one that was not\n"
        )
    new_all, problems = load_train_split(args.data)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    new = random.Random(args.seed).sample(
        sorted(new_all, key=lambda s: s.name), min(args.images, len(new_all))
    )
    base = []
    for root in sorted(p for p in args.data.parent.iterdir() if (p / "train").is_dir()):
        if root.name != name and root.name not in args.exclude:
            base += load_train_split(root)[0]
    print(
        f"adapting {args.model} to {name}: {len(new)} images, {len(base)} base images from "
        f"{', '.join(sorted({s.source for s in base}))}; {args.minutes:g} min",
        flush=True,
    )

    backend = args.backend or ("openvino" if openvino_available() else "auto")
    start = inference.load(args.model, backend=backend)
    before = evaluate_model(start, args.data, "test")
    reference = evaluate_model(inference.load(args.reference, backend=backend), args.data, "test")
    from inference.predictor import _load_state_dict

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        # the options of the same name in AdaptSettings
        tried = {
            name: getattr(args, name)
            for name in (
                "anchor",
                "frozen_norm",
                "frozen_blocks",
                "select_from",
                "average",
                "skeleton_weight",
                "crop_size",
                "batch_size",
            )
        }
        settings = AdaptSettings(
            minutes=args.minutes, seed=args.seed, new_share=args.share, **tried
        )
        config, result = adapt(
            _load_state_dict(args.model),
            new,
            base,
            Path(work) / "run",
            settings,
            validate_start=True,
        )
        out = args.out or Path(work) / "adapted"
        config.name = f"{start_config.name}-adapted-{name}"
        config.provenance = {
            "initialised_from": str(args.model),
            "data": [
                f"{len(new)} train images of {args.data}",
                "base: " + ", ".join(sorted({s.source for s in base})),
            ],
            "command": "python -m training.adapt_bench "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "train_seconds": round(result.seconds, 1),
        }
        export_model_version(result.state_dict, config, out)
        adapted = inference.load(out, backend=backend)
        after = evaluate_model(adapted, args.data, "test")
        # the surface's other train images: validation figures for choosing settings (never test)
        names = {s.name for s in new}
        rest = [s for s in new_all if s.name not in names]
        rest_before = judge(start, rest) if rest else None
        rest_after = judge(adapted, rest) if rest else None
        # forgetting where the run never looked: base train images it did not draw, each model
        # at its own threshold (the one it would run with everywhere)
        unseen_images = unseen_base(base, settings, args.base_images)
        unseen = {
            source: (judge(start, images)["f1"], judge(adapted, images)["f1"], len(images))
            for source, images in unseen_images.items()
        }
        averaged = None
        if result.averaged is not None:
            config.threshold = result.averaged.threshold
            export_model_version(result.averaged.state_dict, config, Path(work) / "averaged")
            mean_model = inference.load(Path(work) / "averaged", backend=backend)
            averaged = {
                "epochs": result.averaged.epochs,
                "threshold": result.averaged.threshold,
                "test": evaluate_model(mean_model, args.data, "test"),
                "other_train": judge(mean_model, rest) if rest else None,
                "base_unseen": {
                    source: judge(mean_model, images)["f1"]
                    for source, images in unseen_images.items()
                },
            }
    wall = time.monotonic() - started
    # forgetting: the base datasets' validation F1 at the checkpoint the new surface chose,
    # against the start model's on the same images (each at the new surface's threshold)
    chosen = next((r for r in result.history if r["epoch"] == result.best_epoch), {})
    base_val = base_figures(chosen.get("val_by_source", {}))
    base_start = base_figures(result.start_val.get("by_source", {}))

    keys = ("f1", "iou", "ods")
    print(f"\n{name} test split ({before['images']} images)   F1      IoU     ODS")
    for label, m in (
        ("before (start model)", before),
        ("after adapting", after),
        ("all-data model", reference),
    ):
        print(f"{label:<28}" + "  ".join(f"{m[k]:.4f}" for k in keys))
    if rest_after is not None:
        print(
            f"\n{name}'s other {len(rest)} train images (not test; for choosing settings)"
            f"\nbefore (start model)        "
            + "  ".join(f"{rest_before[k]:.4f}" for k in keys)
            + "\nafter adapting              "
            + "  ".join(f"{rest_after[k]:.4f}" for k in keys)
        )
    if base_val:
        print("\nbase datasets' validation F1 (the images the run held back), mean and each:")
        for label, figures in (
            ("start model", base_start),
            (f"chosen checkpoint (epoch {result.best_epoch})", base_val),
        ):
            if figures:
                print(
                    f"{label:<36}{mean(figures.values()):.4f}  ("
                    + ", ".join(f"{k} {v:.3f}" for k, v in sorted(figures.items()))
                    + ")"
                )
    if unseen:
        print(
            f"\nbase datasets' other train images (up to {args.base_images} each, never drawn by "
            "the run; each model at its own threshold)\n"
            f"{'':<16}start   after   change"
        )
        for source, (f1_start, f1_after, n) in sorted(unseen.items()):
            print(
                f"{source:<16}{f1_start:.4f}  {f1_after:.4f}  {f1_after - f1_start:+.4f}  ({n} images)"
            )
        mean_start = mean(v[0] for v in unseen.values())
        mean_after = mean(v[1] for v in unseen.values())
        print(f"{'mean':<16}{mean_start:.4f}  {mean_after:.4f}  {mean_after - mean_start:+.4f}")
    if averaged is not None:
        print(
            f"\nthe mean of the last {averaged['epochs']} epochs' weights (thr "
            f"{averaged['threshold']:.2f}) beside the chosen checkpoint (epoch {result.best_epoch}):"
            f"\n{'':<28}F1      IoU     ODS"
        )
        rows = [("test, chosen", after), ("test, mean", averaged["test"])]
        if rest_after is not None:
            rows += [
                ("other train, chosen", rest_after),
                ("other train, mean", averaged["other_train"]),
            ]
        for label, m in rows:
            print(f"{label:<28}" + "  ".join(f"{m[k]:.4f}" for k in keys))
        if unseen:  # mean_after: the chosen checkpoint's, from the table above
            print(
                f"{'base never drawn, chosen':<28}{mean_after:.4f}\n{'base never drawn, mean':<28}"
                f"{mean(averaged['base_unseen'].values()):.4f}"
            )
        share_mean = averaged["test"]["f1"] / reference["f1"] if reference["f1"] else 0.0
        print(f"share of the all-data model's F1, mean weights: {share_mean:.1%}")
    gain = after["f1"] - before["f1"]
    share = after["f1"] / reference["f1"] if reference["f1"] else 0.0
    print(
        f"\nF1 gain {gain:+.3f} (target ≥ +{GAIN_TARGET})  {'ok' if gain >= GAIN_TARGET else 'MISSED'}"
    )
    print(
        f"share of the all-data model's F1 {share:.1%} (target ≥ {SHARE_TARGET:.0%})  "
        f"{'ok' if share >= SHARE_TARGET else 'MISSED'}"
    )
    print(
        f"training {result.seconds / 60:.1f} min, {len(result.history)} epochs; wall {wall / 60:.1f} min"
    )
    if args.json:
        figures = {
            "dataset": name,
            "images": len(new),
            "minutes": args.minutes,
            "share": args.share,
            **tried,
            "before": {k: before[k] for k in keys},
            "after": {k: after[k] for k in keys},
            "all_data": {k: reference[k] for k in keys},
            "other_train_images": len(rest),
            "other_train_before": rest_before and {k: rest_before[k] for k in keys},
            "other_train_after": rest_after and {k: rest_after[k] for k in keys},
            "chosen_epoch": result.best_epoch,
            "base_validation_f1": base_val,
            "base_validation_mean": mean(base_val.values()) if base_val else None,
            "base_validation_f1_start": base_start,
            "base_validation_mean_start": mean(base_start.values()) if base_start else None,
            "base_unseen": {
                source: {"images": n, "start": f1_start, "after": f1_after}
                for source, (f1_start, f1_after, n) in unseen.items()
            },
            "averaged": averaged
            and {
                "epochs": averaged["epochs"],
                "threshold": averaged["threshold"],
                "test": {k: averaged["test"][k] for k in keys},
                "other_train": averaged["other_train"]
                and {k: averaged["other_train"][k] for k in keys},
                "base_unseen": averaged["base_unseen"],
            },
            "f1_gain": gain,
            "share_of_all_data": share,
            "train_seconds": result.seconds,
            "wall_seconds": wall,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
