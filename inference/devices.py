"""The same model on two devices or backends gives the same masks: drawn cracks compared.

    python -m inference.devices [--a cpu:torch] [--b cuda:torch] [--model DIR] [--json FILE]

Each side is DEVICE:BACKEND (backends: torch, torch-bf16, onnx, openvino, openvino-bf16;
see inference.load). On synthetic survey images with drawn cracks of known width it reports
the IoU between the two masks, each side's F1 against the drawn truth, and the total crack
length each side measures.
A GPU worker is trusted when its masks agree with the CPU's (tests/inference/test_devices.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default"


def _f1(mask: np.ndarray, truth: np.ndarray) -> float:
    hits = np.logical_and(mask, truth).sum()
    return float(2 * hits / max(mask.sum() + truth.sum(), 1))


def compare(
    a: str = "cpu:torch",
    b: str = "cuda:torch",
    model_dir: Path | str = DEFAULT_MODEL,
    images: int = 4,
    size: tuple[int, int] = (640, 360),
) -> dict:
    """Masks of the same drawn cracks from side a and side b (DEVICE:BACKEND each)."""
    import inference
    from inference.geometry import extract_cracks
    from inference.synthetic import survey_image

    predictors = {}
    for side in (a, b):
        device, _, backend = side.partition(":")
        predictors[side] = inference.load(model_dir, device=device, backend=backend or "torch")
    rows = []
    for seed in range(images):
        rgb, truth, _ = survey_image(*size, n_cracks=2, seed=500 + seed, widths_px=(1.5, 5.0))
        mask_a, mask_b = (predictors[s].predict_mask(rgb) for s in (a, b))
        union = np.logical_or(mask_a, mask_b).sum()
        rows.append(
            {
                "iou": float(np.logical_and(mask_a, mask_b).sum() / union) if union else 1.0,
                "differing_pixels": int(np.logical_xor(mask_a, mask_b).sum()),
                "f1_a": _f1(mask_a, truth),
                "f1_b": _f1(mask_b, truth),
                "length_px_a": sum(c.length_mm for c in extract_cracks(mask_a)),
                "length_px_b": sum(c.length_mm for c in extract_cracks(mask_b)),
            }
        )
    return {
        "a": a,
        "b": b,
        "images": rows,
        "iou_min": min(r["iou"] for r in rows),
        "f1_a": float(np.mean([r["f1_a"] for r in rows])),
        "f1_b": float(np.mean([r["f1_b"] for r in rows])),
        "length_px_a": sum(r["length_px_a"] for r in rows),
        "length_px_b": sum(r["length_px_b"] for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.devices", description=__doc__)
    parser.add_argument("--a", default="cpu:torch")
    parser.add_argument("--b", default="cuda:torch")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = compare(args.a, args.b, args.model, args.images)
    print(
        f"{args.a} vs {args.b}: mask IoU min {result['iou_min']:.4f}; F1 against the drawn "
        f"cracks {result['f1_a']:.4f} vs {result['f1_b']:.4f}; measured length "
        f"{result['length_px_a']:.0f} vs {result['length_px_b']:.0f} px"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
