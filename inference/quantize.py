"""Static int8 quantisation of a model version, calibrated on crops of training images.

    python -m inference.quantize [--model models/default] [--data DIR ...] [--crops 8]

Writes `model-int8.onnx` beside the weights: the model's ONNX export with int8 weights (per
output channel, in 7 bits so that a CPU without VNNI runs it without saturating) and uint8
activations whose ranges were measured on --crops 320-px crops of each --data folder's
train/images (random, seed 0; drawn survey images when no folder is given), as
QuantizeLinear/DequantizeLinear pairs (ONNX Runtime's quantize_static, MinMax).
`model-int8.json` records the fingerprint of the files it was made from and the calibration;
`inference.load(..., backend="openvino-int8")` refuses an int8 file made from other weights
or settings. OpenVINO runs it with int8 convolutions, the graph compiled for each input size
(with the sizes left open, OpenVINO 2026.4 gave wrong logits from this graph). The model
card states what it costs in F1 on every test split and what it buys in speed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from inference.arrays import IMAGE_SUFFIXES, normalise
from inference.config import ModelConfig, fingerprint

INT8_FILE = "model-int8.onnx"
INT8_INFO = "model-int8.json"
CROP = 320
WEIGHT_BITS = 7  # int8 weights kept in [-64, 64] (reduce_range): see quantize()


class StaleInt8Error(RuntimeError):
    """The int8 file is missing or was made from other weights or settings."""


def check_int8(folder: Path | str) -> Path:
    """The folder's int8 model if it was made from the folder's current files, else raise."""
    folder = Path(folder)
    path, info = folder / INT8_FILE, folder / INT8_INFO
    hint = f"run `python -m inference.quantize --model {folder}`"
    if not path.is_file() or not info.is_file():
        raise StaleInt8Error(f"{folder}: no int8 model ({INT8_FILE}); {hint}")
    try:
        made_from = json.loads(info.read_text())["fingerprint"]
    except (ValueError, KeyError) as exc:
        raise StaleInt8Error(f"{folder}: {INT8_INFO} is unreadable ({exc}); {hint}") from exc
    if made_from != fingerprint(folder):
        raise StaleInt8Error(
            f"{folder}: {INT8_FILE} was made from other weights or settings; {hint}"
        )
    return path


def _square_crop(image: np.ndarray, rng: random.Random) -> np.ndarray:
    """A random square crop of CROP px (or the largest multiple of 32 the image holds)."""
    h, w = image.shape[:2]
    side = min(CROP, h, w) // 32 * 32
    y, x = rng.randrange(h - side + 1), rng.randrange(w - side + 1)
    return image[y : y + side, x : x + side]


def crops_of_images(
    config: ModelConfig, images: list[np.ndarray], count: int = 40, seed: int = 0
) -> list[np.ndarray]:
    """Normalised (1, 3, S, S) crops of `count` of these RGB images (a training run's own
    images: what a model the portal trained is calibrated on)."""
    rng = random.Random(seed)
    usable = [im for im in images if min(im.shape[:2]) >= 32]
    chosen = rng.sample(usable, min(count, len(usable)))
    if not chosen:
        raise ValueError("no calibration images of at least 32 px")
    return [
        normalise(_square_crop(im, rng), config.mean, config.std)[None].astype(np.float32)
        for im in chosen
    ]


def calibration_crops(
    config: ModelConfig, data: list[Path], per_dataset: int = 8, seed: int = 0
) -> tuple[list[np.ndarray], str]:
    """Normalised (1, 3, S, S) crops (S = 320, or the largest multiple of 32 that a smaller
    image holds) of the train splits' images, and where they came from."""
    rng = random.Random(seed)
    crops, names = [], []
    if data:
        for root in data:
            files = sorted(
                p
                for p in (root / "train" / "images").iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES
            )
            taken = 0
            for path in rng.sample(files, len(files)):
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None or min(image.shape[:2]) < 32:
                    continue  # unreadable or too small: the next one
                crops.append(cv2.cvtColor(_square_crop(image, rng), cv2.COLOR_BGR2RGB))
                taken += 1
                if taken == per_dataset:
                    break
            names.append(f"{root.name} ({taken})")
        source = "train splits: " + ", ".join(names)
    else:
        from inference.synthetic import survey_image

        crops = [survey_image(CROP, CROP, 2, seed=900 + i)[0] for i in range(per_dataset)]
        source = f"{per_dataset} drawn survey images"
    if not crops:
        raise ValueError("no calibration images in the train splits")
    batches = [normalise(c, config.mean, config.std)[None].astype(np.float32) for c in crops]
    return batches, source


def quantize(folder: Path | str, crops: list[np.ndarray], source: str) -> Path:
    """Write folder/model-int8.onnx (and its record) calibrated on crops; return its path."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import inference
    from inference.backends import onnx_cache_path

    folder = Path(folder)
    inference.load(folder, backend="onnx")  # exports (or refreshes) the float32 ONNX
    fp32 = onnx_cache_path(folder)

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.left = iter(crops)

        def get_next(self):
            crop = next(self.left, None)
            return None if crop is None else {"image": crop}

    out = folder / INT8_FILE
    with tempfile.TemporaryDirectory() as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        quantize_static(
            str(prepared),
            str(tmp),
            Crops(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # weights in 7 bits: a CPU without VNNI multiplies uint8 by int8 in pairs summed in
            # 16 bits, which saturate with 8-bit weights. With them, oneDNN capped at AVX-512
            # without VNNI cost the default 0.014 tunnel-lining test F1 (0.5683 -> 0.5541);
            # in 7 bits the masks are the same with and without VNNI (README)
            reduce_range=True,  # WEIGHT_BITS
        )
        try:
            onnx.checker.check_model(str(tmp))
            os.replace(tmp, out)  # a reader never sees half a file
        finally:
            tmp.unlink(missing_ok=True)
    info = {
        "fingerprint": fingerprint(folder),
        "calibration": source,
        "crops": len(crops),
        "weight_bits": WEIGHT_BITS,
    }
    (folder / INT8_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference.quantize",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--model", type=Path, default=root / "models" / "default")
    parser.add_argument(
        "--data", type=Path, action="append", default=[], help="a dataset folder with train/"
    )
    parser.add_argument("--crops", type=int, default=8, help="crops per dataset (8)")
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.exit(2, f"error: {args.model} is not a model folder (no config.json)\n")
    for root_dir in args.data:
        if not (root_dir / "train" / "images").is_dir():
            parser.exit(2, f"error: {root_dir} has no train/images folder\n")
    config = ModelConfig.load(args.model / "config.json")
    crops, source = calibration_crops(config, args.data, args.crops)
    print(f"calibrating on {len(crops)} crops of up to {CROP} px ({source})", flush=True)
    out = quantize(args.model, crops, source)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); use it with --backend openvino-int8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
