"""Average the weights of model versions of one architecture into a new model version.

    python -m training.average runs/a runs/b --out runs/ab

Checkpoints of one run, or a run and the model it was fine-tuned from, often validate better
averaged than alone (a "model soup", Wortsman et al. 2022). Floating-point tensors are
averaged (batch-norm statistics too); integer ones (batch-norm step counters) are taken from
the first model. The new version gets the first model's config with calibration reset
(logit_scale 1, logit_bias 0): choose it on validation and calibrate it with
`python -m training.validate --model runs/ab --data ... --calibrate`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from inference.config import ModelConfig
from inference.predictor import _load_state_dict
from training.export import export_model_version


def average_states(states: list[dict]) -> dict:
    """The element-wise mean of state dicts with the same keys and shapes."""
    first = states[0]
    for other in states[1:]:
        if other.keys() != first.keys():
            raise ValueError("the models do not have the same layers")
        for key, value in other.items():
            if value.shape != first[key].shape:
                raise ValueError(f"{key}: shape {tuple(value.shape)} ≠ {tuple(first[key].shape)}")
    return {
        key: (
            torch.stack([s[key].float() for s in states]).mean(0)
            if value.is_floating_point()
            else value.clone()
        )
        for key, value in first.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.average",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", type=Path, nargs="+", help="model version folders")
    parser.add_argument("--out", type=Path, required=True, help="new model version folder")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("give two or more model folders")
    configs = []
    for folder in args.models:
        path = folder / "config.json"
        if not path.is_file():
            parser.error(f"{folder}: no config.json (not a model version folder)")
        configs.append(ModelConfig.load(path))
    shape = ("architecture", "encoder", "encoder_depth", "decoder_channels", "classes")
    for folder, config in zip(args.models[1:], configs[1:], strict=True):
        if any(getattr(config, k) != getattr(configs[0], k) for k in shape):
            parser.error(f"{folder}: not the same network as {args.models[0]}")
    try:
        state = average_states([_load_state_dict(folder) for folder in args.models])
    except ValueError as exc:
        parser.error(str(exc))
    config = replace(configs[0], logit_scale=1.0, logit_bias=0.0, metrics={})
    config.provenance = {
        "averaged": [str(folder) for folder in args.models],
        "command": "python -m training.average "
        + " ".join(map(str, args.models))
        + f" --out {args.out}",
        "sources": [c.provenance for c in configs],
    }
    export_model_version(state, config, args.out)
    print(f"averaged {len(args.models)} models into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
