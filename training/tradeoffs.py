"""Does int8 quantisation or a lower input resolution pay off? Speed and F1, side by side.

    python -m training.tradeoffs [--model DIR] [--data DIR] [--json FILE]

Variants of the default model on ONNX Runtime: fp32 (the default path), int8 dynamic
quantisation (onnxruntime.quantization.quantize_dynamic), and inputs downscaled to 0.75
and 0.5 (the probability map is upscaled back). F1 and ODS on --data (default: the CFD
test split when present; otherwise synthetic images with drawn cracks), speed on 640x360.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2

import inference
from inference.backends import OnnxBackend, onnx_cache_path
from inference.bench import DEFAULT_MODEL, SHARED, _images
from training.metrics import PixelCounter, ToleranceCounter


def _samples(data: Path | None, n_synthetic: int = 12):
    if data is None and (SHARED / "cfd" / "test").is_dir():
        data = SHARED / "cfd" / "test"
    if data is not None:
        from training.data import load_dataset

        samples, _ = load_dataset(data)
        return [(s.image, s.mask) for s in samples], str(data)
    from inference.synthetic import survey_image

    pairs = [
        survey_image(640, 360, 2, seed=500 + i, widths_px=(2.5, 5))[:2] for i in range(n_synthetic)
    ]
    return pairs, "synthetic"


def _scaled(predictor, scale: float):
    if scale == 1.0:
        return predictor.predict_proba

    def predict(image):
        h, w = image.shape[:2]
        small = cv2.resize(
            image,
            (max(32, round(w * scale)), max(32, round(h * scale))),
            interpolation=cv2.INTER_AREA,
        )
        return cv2.resize(predictor.predict_proba(small), (w, h), interpolation=cv2.INTER_LINEAR)

    return predict


def _evaluate(predict, pairs, threshold):
    pixel, tolerant = PixelCounter(threshold), ToleranceCounter()
    for image, mask in pairs:
        prob = predict(image)
        pixel.update(prob, mask)
        tolerant.update(prob, mask)
    return {**pixel.result(), **tolerant.result()}


def _speed(predict, images) -> float:
    predict(images[0])
    started = time.perf_counter()
    for image in images:
        predict(image)
    return len(images) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.tradeoffs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, help="folder with images/ and masks/")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from onnxruntime.quantization import QuantType, quantize_dynamic

    predictor = inference.load(args.model, backend="onnx")
    fp32_path = onnx_cache_path(args.model)
    int8_path = fp32_path.with_name(fp32_path.stem + ".int8.onnx")
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
    int8 = inference.predictor.Predictor(predictor.config, OnnxBackend(int8_path))
    pairs, source = _samples(args.data)
    speed_images, _ = _images(8, 640, 360)
    threshold = predictor.config.threshold
    rows = []
    for name, pred, scale in [
        ("fp32", predictor, 1.0),
        ("int8 dynamic", int8, 1.0),
        ("fp32, input x0.75", predictor, 0.75),
        ("fp32, input x0.5", predictor, 0.5),
    ]:
        predict = _scaled(pred, scale)
        metrics = _evaluate(predict, pairs, threshold)
        rows.append({"variant": name, "images_per_s": _speed(predict, speed_images), **metrics})
        print(
            f"{name:<20} {rows[-1]['images_per_s']:6.2f} img/s   F1 {metrics['f1']:.4f}   "
            f"IoU {metrics['iou']:.4f}   ODS {metrics['ods']:.4f}",
            flush=True,
        )
    print(f"(quality on {source}; speed on 640x360)")
    if args.json:
        args.json.write_text(json.dumps({"data": source, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
