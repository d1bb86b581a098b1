r"""The validation figures of model versions: how a shipped model is chosen, never on test.

    python -m training.validate --model runs/a --model runs/b \
        --data ../shared/datasets/cfd --data ../shared/datasets/deepcrack ... [--calibrate]

The validation split is the one training carved from the train splits (same data, seed and
fraction as `training.train`), so figures compare across runs trained on the same --data.
For each model: every dataset's F1 at one threshold chosen for the best mean F1 across the
datasets (the rule training uses). `--calibrate` also fits Platt scaling to the validation
pixels (p = sigmoid(a·logit + b), minimising cross-entropy) and writes a, b and the
threshold re-chosen on the calibrated probabilities into the model's config.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import inference
from training.data import load_train_split
from training.loop import TrainSettings, split_train_val
from training.metrics import ThresholdSweep, best_across


def validation_samples(roots: list[Path], fraction: float, seed: int, stratify: bool = False):
    samples = []
    for root in roots:
        loaded, problems = load_train_split(root)
        for problem in problems:
            print(f"skipped: {problem}", file=sys.stderr)
        samples += loaded
    return split_train_val(samples, fraction, seed, stratify)[1]


def _logits(predictor, image: np.ndarray) -> np.ndarray:
    p = np.clip(predictor.predict_proba(image), 1e-6, 1 - 1e-6).astype(np.float64)
    return np.log(p / (1 - p))


def fit_platt(logits: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the mean cross-entropy of sigmoid(a·logit + b) against truth."""
    from scipy.optimize import minimize

    x, y = logits.astype(np.float64), truth.astype(np.float64)

    def loss_and_grad(params):
        a, b = params
        s = a * x + b
        p = np.exp(-np.logaddexp(0.0, -s))  # sigmoid without overflow
        loss = np.mean(np.logaddexp(0.0, s) - y * s)
        return loss, np.array([np.mean((p - y) * x), np.mean(p - y)])

    result = minimize(loss_and_grad, x0=[1.0, 0.0], jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument(
        "--fraction", type=float, help="validation share (default: the first model's training's)"
    )
    parser.add_argument(
        "--seed", type=int, help="split seed (default: the first model's training's)"
    )
    parser.add_argument("--calibrate", action="store_true", help="fit and store Platt scaling")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from inference.config import ModelConfig

    trained = ModelConfig.load(args.model[0] / "config.json").provenance.get("settings", {})
    if args.fraction is None:
        args.fraction = trained.get("val_fraction", TrainSettings.val_fraction)
    if args.seed is None:
        args.seed = trained.get("seed", TrainSettings.seed)
    val = validation_samples(
        args.data, args.fraction, args.seed, bool(trained.get("stratify_val", False))
    )
    print(f"{len(val)} validation images", file=sys.stderr)
    report = {}
    for folder in args.model:
        predictor = inference.load(folder)
        sweeps, logits, truths = {}, [], []
        for s in val:
            z = _logits(predictor, s.image)
            prob = np.exp(-np.logaddexp(0.0, -z))
            sweeps.setdefault(s.source, ThresholdSweep()).update(prob, s.mask)
            if args.calibrate:
                logits.append(z.ravel()), truths.append(s.mask.ravel())
        threshold, mean, per = best_across(sweeps)
        row = {
            "threshold": threshold,
            "mean_f1": mean["f1"],
            **{k: v["f1"] for k, v in per.items()},
        }
        if args.calibrate:
            a, b = fit_platt(np.concatenate(logits), np.concatenate(truths))
            for sweep in sweeps.values():
                sweep.counts[:] = 0
            for s, z in zip(val, logits, strict=True):
                prob = np.exp(-np.logaddexp(0.0, -(a * z.reshape(s.mask.shape) + b)))
                sweeps[s.source].update(prob, s.mask)
            cal_threshold, cal_mean, _ = best_across(sweeps)
            config_path = Path(folder) / "config.json"
            config = ModelConfig.load(config_path)
            config.logit_scale, config.logit_bias, config.threshold = a, b, cal_threshold
            config.provenance["calibration"] = {
                "method": "Platt scaling on the validation pixels",
                "logit_scale": round(a, 4),
                "logit_bias": round(b, 4),
                "threshold_before": threshold,
                "threshold_after": cal_threshold,
                "mean_f1": round(cal_mean["f1"], 4),
            }
            config.save(config_path)
            row.update(calibrated_threshold=cal_threshold, logit_scale=a, logit_bias=b)
        report[str(folder)] = row
        print(
            f"{folder}: mean F1 {mean['f1']:.4f} at {threshold:.2f} ("
            + ", ".join(f"{k} {v['f1']:.3f}" for k, v in per.items())
            + ")"
            + (
                f"; calibrated a={a:.3f} b={b:.3f}, threshold {cal_threshold:.2f}"
                if args.calibrate
                else ""
            ),
            flush=True,
        )
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
