"""Throughput benchmark: the seed's baseline against the project's default model, same run.

    python -m inference.bench [--model DIR] [--images 16] [--device cpu|cuda] [--repeats N]
                              [--json FILE] [--quick] [--huge SIDE]

(a) baseline: smp DeepLabV3 + mobilenet_v2, fp32, PyTorch eager, whole image padded to a
    multiple of 32 (the seed system's configuration);
(b) the default model through `inference.load` on each backend (tiled predictor).
Each configuration runs in its own process so its peak memory (max RSS) is its own.
Images: 640x360 (CRACK500's size) and one 4096x4096; real photos from ../shared/datasets
when present (resized), synthetic ones otherwise. Geometry time is measured per image.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def _images(n: int, width: int, height: int) -> tuple[list[np.ndarray], str]:
    import cv2

    paths = sorted(SHARED.glob("*/test/images/*.jpg"))[:n] if SHARED.is_dir() else []
    if len(paths) >= n:
        out = [
            cv2.resize(
                cv2.imread(str(p))[:, :, ::-1], (width, height), interpolation=cv2.INTER_AREA
            )
            for p in paths
        ]
        return [np.ascontiguousarray(x) for x in out], "real test images resized"
    from inference.synthetic import survey_image

    return [survey_image(width, height, n_cracks=2, seed=i)[0] for i in range(n)], "synthetic"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time(fn, count: int, min_seconds: float) -> float:
    """Seconds per call of fn, after one warm-up call."""
    fn()
    done, started = 0, time.perf_counter()
    while done < count or time.perf_counter() - started < min_seconds:
        fn()
        done += 1
    return (time.perf_counter() - started) / done


def _baseline_predict(network, image: np.ndarray, device: str = "cpu") -> np.ndarray:
    import torch

    from inference.arrays import normalise, pad_to_multiple
    from inference.config import IMAGENET_MEAN, IMAGENET_STD

    padded, (h, w) = pad_to_multiple(image, 32)
    x = torch.from_numpy(normalise(padded, IMAGENET_MEAN, IMAGENET_STD)[None]).to(device)
    with torch.inference_mode():
        return torch.sigmoid(network(x))[0, 0, :h, :w].cpu().numpy()


def _measure(
    kind: str, model_dir: str, n_small: int, large: int, quick: bool, device: str, queue
) -> None:
    """Child process: time one configuration and report through queue."""
    try:
        import torch

        from inference.backends import cpu_threads

        torch.set_num_threads(cpu_threads())
        small, source = _images(n_small, 640, 360)
        big = _images(1, large, large)[0][0] if large else None
        result = {"config": kind, "images": source, "device": device}
        if device == "cuda":
            result["gpu"] = torch.cuda.get_device_name(0)
        if kind == "baseline":
            from inference.config import ModelConfig, build_network

            network = (
                build_network(
                    ModelConfig(name="seed", architecture="DeepLabV3", encoder="mobilenet_v2")
                )
                .eval()
                .to(device)
            )
            per_image = (
                _time(
                    lambda: [_baseline_predict(network, im, device) for im in small],
                    1,
                    0 if quick else 3,
                )
                / n_small
            )
            if big is not None:
                result["large_s"] = _time(
                    lambda: _baseline_predict(network, big, device), 0 if quick else 1, 0
                )
        else:
            import inference
            from inference.geometry import extract_cracks

            predictor = inference.load(model_dir, device=device, backend=kind)
            result["runs_as"] = predictor.backend_name
            per_image = (
                _time(lambda: predictor.predict_proba_many(small), 1, 0 if quick else 3) / n_small
            )
            if big is not None:
                result["large_s"] = _time(
                    lambda: predictor.predict_proba(big), 0 if quick else 1, 0
                )
            masks = [p >= predictor.config.threshold for p in predictor.predict_proba_many(small)]
            result["geometry_ms_per_image"] = (
                1000 * _time(lambda: [extract_cracks(m) for m in masks], 1, 0) / n_small
            )
        result["images_per_s"] = 1 / per_image
        result["megapixels_per_s"] = 640 * 360 / 1e6 / per_image
        if big is not None:
            result["large_megapixels_per_s"] = large * large / 1e6 / result["large_s"]
        result["peak_rss_mb"] = _peak_rss_mb()
        queue.put(result)
    except Exception as exc:  # reported, not fatal: the other configurations still run
        queue.put({"config": kind, "error": f"{type(exc).__name__}: {exc}"})


def _huge(model_dir: str, size: int, queue) -> None:
    import inference

    predictor = inference.load(model_dir)
    image = np.full((size, size, 3), 150, np.uint8)
    before = _peak_rss_mb()
    started = time.perf_counter()
    predictor.predict_mask(image)
    queue.put(
        {
            "size": size,
            "seconds": time.perf_counter() - started,
            "peak_rss_mb": _peak_rss_mb(),
            "rss_before_mb": before,
        }
    )


def _median_row(results: list[dict]) -> dict:
    """One configuration over its repeats: the median run's figures, with the img/s of every
    run and their spread (max − min over the median)."""
    good = [r for r in results if "images_per_s" in r]
    if not good:
        return results[0]
    good.sort(key=lambda r: r["images_per_s"])
    row = dict(good[len(good) // 2])
    speeds = [r["images_per_s"] for r in good]
    row["images_per_s_runs"] = speeds
    row["spread"] = (max(speeds) - min(speeds)) / row["images_per_s"] if len(speeds) > 1 else 0.0
    return row


def _in_child(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", default=str(DEFAULT_MODEL), help="model-version folder (default: shipped)"
    )
    parser.add_argument("--images", type=int, default=16, help="number of 640x360 images")
    parser.add_argument(
        "--large", type=int, default=4096, help="side of the large image (0 to skip)"
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="backends of the default model to measure (default: torch,onnx,openvino,openvino-bf16,auto "
        "on the CPU; auto is what the portal runs; torch,torch-bf16 on CUDA)",
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="where both models run"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one timed pass each (for smoke tests)"
    )
    parser.add_argument(
        "--huge",
        type=int,
        default=0,
        metavar="SIDE",
        help="also predict one SIDE x SIDE image and report its peak memory (e.g. 10000)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="measure each configuration this many times (interleaved); report the median "
        "and the spread",
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)

    from inference.backends import cpu_threads, onnx_available, openvino_available

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device here")
    chosen = args.backends or (
        "torch,torch-bf16" if args.device == "cuda" else "torch,onnx,openvino,openvino-bf16,auto"
    )
    installed = {"onnx": onnx_available(), "openvino": openvino_available()}
    backends = [
        b
        for b in chosen.split(",")
        if installed.get(b.split("-")[0], True) and (args.device == "cuda" or b != "torch-bf16")
    ]
    print(
        f"machine: {platform.machine()}, {cpu_threads()} threads, Python {platform.python_version()}, "
        f"device {args.device}"
    )
    runs: dict[str, list[dict]] = {kind: [] for kind in ["baseline", *backends]}
    for repeat in range(args.repeats):  # interleaved, so drift in the machine hits all alike
        for kind in runs:
            print(f"measuring {kind} ({repeat + 1} of {args.repeats}) ...", flush=True)
            runs[kind].append(
                _in_child(
                    _measure, kind, args.model, args.images, args.large, args.quick, args.device
                )
            )
    rows = [_median_row(results) for results in runs.values()]
    baseline = rows[0]
    print()
    print(
        f"{'configuration':<38}{'img/s':>9}{'MP/s':>8}{'x base':>8}{'4096² s':>10}{'geom ms':>9}"
        f"{'peak MB':>9}{'spread':>8}"
    )
    for row in rows:
        if "error" in row:
            print(f"{row['config']:<38} failed: {row['error']}")
            continue
        label = (
            "baseline DeepLabV3+MNV2 eager"
            if row["config"] == "baseline"
            else f"default model, {row['config']}"
            + (f" ({row['runs_as']})" if row["config"] == "auto" else "")
        )
        row["ratio_vs_baseline"] = (
            row["images_per_s"] / baseline["images_per_s"] if "images_per_s" in baseline else None
        )
        print(
            f"{label:<38}{row['images_per_s']:>9.2f}{row['megapixels_per_s']:>8.2f}"
            f"{row['ratio_vs_baseline'] or 0:>8.1f}{row.get('large_s', float('nan')):>10.2f}"
            f"{row.get('geometry_ms_per_image', float('nan')):>9.1f}{row['peak_rss_mb']:>9.0f}"
            f"{100 * row.get('spread', 0):>7.0f}%"
        )
    ours = [r for r in rows[1:] if "images_per_s" in r]
    best = max(ours, key=lambda r: r["images_per_s"]) if ours else None
    speedup = (
        best["images_per_s"] / baseline["images_per_s"]
        if best and "images_per_s" in baseline
        else None
    )
    if speedup:
        medians = f"median of {args.repeats} runs each, " if args.repeats > 1 else ""
        print(
            f"\nspeedup vs baseline (best backend: {best['config']}, 640x360, {medians}"
            f"same run): {speedup:.1f}x"
        )
    report = {
        "device": args.device,
        "repeats": args.repeats,
        "machine": platform.machine(),
        "threads": cpu_threads(),
        "images": baseline.get("images"),
        "results": rows,
        "best_backend": best["config"] if best else None,
        "speedup_vs_baseline": speedup,
    }
    if args.huge:
        huge = _in_child(_huge, args.model, args.huge)
        print(
            f"{args.huge}x{args.huge} image: {huge['seconds']:.1f} s, peak RSS {huge['peak_rss_mb']:.0f} MB"
        )
        report["huge"] = huge
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0 if speedup else 1


if __name__ == "__main__":
    sys.exit(main())
