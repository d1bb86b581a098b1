"""Evaluate a model version on a folder of images/ and masks/.

python -m training.evaluate [--model DIR] --data DIR [--data DIR ...] [--split test] [--json]
    [--threshold T] [--tta] [--lookalikes] [--backend B] [--record NAME]

With one --data: that folder's figures. With several: a cross-dataset table, one row per
dataset (the folder's name) and a mean row; --json then prints {name: figures}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import inference
from inference.predictor import BACKENDS
from training.data import find_pairs, load_pair
from training.metrics import CalibrationCounter, PixelCounter, ToleranceCounter

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"


def _readable(pairs, problems: list[str]):
    """Load each pair; an unreadable one is noted in problems and skipped."""
    for pair in pairs:
        try:
            yield load_pair(pair)
        except ValueError as exc:
            problems.append(str(exc))


def evaluate_model(
    predictor,
    data: Path | str,
    split: str | None = None,
    threshold: float | None = None,
    tolerance_px: float = 2.0,
) -> dict:
    """Metrics of a predictor on every readable pair under data (whole split, in [0, 1])."""
    pairs, problems = find_pairs(data, split)
    threshold = predictor.config.threshold if threshold is None else threshold
    pixel, tolerant = PixelCounter(threshold), ToleranceCounter(tolerance_px)
    calibration = CalibrationCounter()
    started, n = time.monotonic(), 0
    for sample in _readable(pairs, problems):
        prob = predictor.predict_proba(sample.image)
        pixel.update(prob, sample.mask)
        tolerant.update(prob, sample.mask)
        calibration.update(prob, sample.mask)
        n += 1
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    return {
        **pixel.result(),
        **tolerant.result(),
        **calibration.result(),
        "threshold": threshold,
        "images": n,
        "skipped": len(problems),
        "seconds": round(time.monotonic() - started, 2),
    }


def _rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


LOOKALIKE_IMAGES = 40


def evaluate_lookalikes(
    predictor,
    data: Path | str,
    split: str | None = None,
    threshold: float | None = None,
    max_images: int = LOOKALIKE_IMAGES,
) -> dict:
    """False positives on joints, stains, bolt holes... drawn onto the first max_images of data
    (sorted by name; every kind on every image)."""
    from training.lookalikes import LookalikeCounter, lookalike_test_set

    pairs, problems = find_pairs(data, split)
    pairs = sorted(pairs, key=lambda p: p.name)[:max_images]
    counter = LookalikeCounter(predictor.config.threshold if threshold is None else threshold)

    started = time.monotonic()
    samples = ((s.name, s.image, s.mask) for s in _readable(pairs, problems))
    for case in lookalike_test_set(samples):
        counter.update(case, predictor.predict_proba(case.image))
    return {**counter.result(), "lookalike_seconds": round(time.monotonic() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="model-version folder (default: the shipped default model)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        required=True,
        help="folder with images/ and masks/ (or a dataset root with test/); repeat for a "
        "cross-dataset table",
    )
    parser.add_argument(
        "--split", default=None, help="only this split of each dataset root (e.g. test)"
    )
    parser.add_argument(
        "--threshold", type=float, default=None, help="override the model's threshold"
    )
    parser.add_argument(
        "--tta", action="store_true", help="average with a horizontally flipped pass"
    )
    parser.add_argument(
        "--lookalikes",
        action="store_true",
        help="also draw joints, grids, bolt holes, cables, stains and scratches onto the "
        f"first {LOOKALIKE_IMAGES} images and report the false-positive pixel rate on them",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="how the network runs (default auto: as the portal's workers run it)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument(
        "--record", metavar="NAME", help="write the figures into the model card under NAME"
    )
    args = parser.parse_args(argv)
    try:
        predictor = inference.load(args.model, backend=args.backend)
    except inference.ModelLoadError as exc:
        parser.exit(2, f"error: {exc}\n")
    predictor.flip_tta = args.tta
    # "auto" runs what the workers run here: float32, bf16 or int8, whichever this CPU runs
    # fastest (the model card gives each one's figures)
    print(f"the network runs on {predictor.backend_name}", file=sys.stderr, flush=True)
    if len(args.data) > 1:
        if args.record:
            parser.error("--record takes one --data")
        return _table(parser, predictor, args)
    try:
        metrics = _evaluate_one(predictor, args.data[0], args)
    except FileNotFoundError as exc:
        parser.exit(2, f"error: {exc}\n")
    if args.record:
        from training.export import update_card_metrics

        update_card_metrics(args.model, args.record, metrics)
    if args.json:
        print(json.dumps(_rounded(metrics)))
    else:
        for key in ("precision", "recall", "f1", "iou", "ods", "ois"):
            print(f"{key:>10}: {metrics[key]:.4f}")
        print(
            f"{'threshold':>10}: {metrics['threshold']:.2f}   images: {metrics['images']}"
            f"   skipped: {metrics['skipped']}   {metrics['seconds']:.1f} s"
        )
        if args.lookalikes:
            print(
                f"look-alikes: false-positive pixel rate {metrics['lookalike_fp_pixel_rate']:.4f}, "
                f"flagged {metrics['lookalike_flagged_fraction']:.3f} of "
                f"{metrics['lookalike_cases']} cases"
            )
            for kind, k in metrics["lookalike_by_kind"].items():
                print(
                    f"{kind:>12}: fp pixel rate {k['fp_pixel_rate']:.4f}, "
                    f"flagged {k['flagged_fraction']:.3f} ({k['cases']} cases)"
                )
    return 0


def _evaluate_one(predictor, data: Path, args) -> dict:
    metrics = evaluate_model(predictor, data, args.split, args.threshold)
    if args.lookalikes:
        metrics.update(evaluate_lookalikes(predictor, data, args.split, args.threshold))
    return metrics


TABLE_COLUMNS = ("precision", "recall", "f1", "iou", "ods", "ois", "ece")


def _table(parser, predictor, args) -> int:
    """One row per dataset, then the mean of the rows."""
    names = [data.name or str(data) for data in args.data]
    if len(set(names)) < len(names):
        parser.error("two --data folders share a name; the table names rows by folder")
    for data in args.data:
        if not data.is_dir():
            parser.exit(2, f"error: dataset folder not found: {data}\n")
    rows = {}
    for name, data in zip(names, args.data, strict=True):
        try:
            rows[name] = _evaluate_one(predictor, data, args)
        except FileNotFoundError as exc:
            parser.exit(2, f"error: {exc}\n")
        print(f"{name}: done ({rows[name]['images']} images)", file=sys.stderr, flush=True)
    columns = TABLE_COLUMNS + (("lookalike_fp_pixel_rate",) if args.lookalikes else ())
    mean = {k: sum(r[k] for r in rows.values()) / len(rows) for k in columns}
    if args.json:
        print(json.dumps(_rounded({**rows, "mean": mean})))
        return 0
    width = max(len(n) for n in [*names, "mean"])
    header = ["dataset".ljust(width), *(c[:10].rjust(10) for c in columns), "images", "thr"]
    print("  ".join(header))
    for name, r in rows.items():
        cells = [name.ljust(width), *(f"{r[c]:10.4f}" for c in columns)]
        print("  ".join([*cells, f"{r['images']:6d}", f"{r['threshold']:.2f}"]))
    print("  ".join(["mean".ljust(width), *(f"{mean[c]:10.4f}" for c in columns)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
