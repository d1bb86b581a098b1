"""Crack-probability prediction for survey images of any size."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import cv2
import numpy as np
import torch

from inference.arrays import normalise
from inference.backends import (
    OnnxBackend,
    OpenVinoBackend,
    TorchBackend,
    cpu_threads,
    export_onnx,
    onnx_available,
    onnx_cache_path,
    openvino_available,
)
from inference.config import WEIGHTS_FILES, ModelConfig, build_network
from inference.tiling import Tile, blend_window, tile_grid

CONFIG_FILE = "config.json"
BACKENDS = ("auto", "torch", "torch-bf16", "onnx", "openvino", "openvino-bf16", "openvino-int8")


class ModelLoadError(RuntimeError):
    """A model-version folder is missing, incomplete or does not match its config."""


def _weights_path(folder: Path) -> Path:
    """The folder's weights file, the first of WEIGHTS_FILES present."""
    for name in WEIGHTS_FILES:
        if (folder / name).exists():
            return folder / name
    raise ModelLoadError(f"{folder}: no weights file ({' or '.join(WEIGHTS_FILES)})")


def _load_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    path = _weights_path(folder)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(path))
    else:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def pick_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when present, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def clear_border(rows: np.ndarray, first_row: int, height: int, border_px: int) -> None:
    """Zero the image's outer border_px ring in rows (image rows first_row…), in place."""
    if border_px <= 0:
        return
    rows[:, :border_px] = 0
    rows[:, -border_px:] = 0
    top = max(0, border_px - first_row)
    rows[:top] = 0
    bottom = height - border_px - first_row  # index of the first bottom-ring row in rows
    if bottom < len(rows):
        rows[max(bottom, 0) :] = 0


@dataclass
class Predictor:
    """A loaded model version: call `predict_proba` or `predict_mask` on RGB uint8 arrays."""

    config: ModelConfig
    backend: object  # TorchBackend | OnnxBackend | OpenVinoBackend: batch (N, 3, H, W) -> logits (N, H, W)
    batch_size: int = 4
    flip_tta: bool = False
    max_batch_pixels: int = 1_200_000  # bounds the runtime's activations: one 1024² tile per batch

    def _per_batch(self, size: tuple[int, int]) -> int:
        """Tiles of this padded size per batch: batch_size, fewer for big tiles."""
        return max(1, min(self.batch_size, self.max_batch_pixels // (size[0] * size[1])))

    @property
    def backend_name(self) -> str:
        return self.backend.name

    # -- network on one batch -------------------------------------------------
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, H, W) for a normalised batch (N, 3, H, W), H and W multiples of 32."""
        logits = self.backend(batch)
        if self.flip_tta:
            logits = (
                logits + self.backend(np.ascontiguousarray(batch[:, :, :, ::-1]))[:, :, ::-1]
            ) / 2
        # 1 / (1 + exp(-(scale * logit + bias))), calibrated (Platt scaling), in one buffer
        cfg = self.config
        p = np.multiply(logits, np.float32(-cfg.logit_scale), dtype=np.float32)
        p -= np.float32(cfg.logit_bias)
        np.exp(p, out=p)
        p += np.float32(1.0)
        return np.reciprocal(p, out=p)

    def _padded_size(self, h: int, w: int) -> tuple[int, int]:
        m = self.config.multiple
        return h + (-h) % m, w + (-w) % m

    def _batch(self, tiles: list[tuple[np.ndarray, Tile]], size: tuple[int, int]) -> np.ndarray:
        """The network input (N, 3, H, W) for (image, tile) pairs padded to one size."""
        batch = np.empty((len(tiles), 3, *size), dtype=np.float32)
        for slot, (image, tile) in zip(batch, tiles, strict=True):
            crop = image[tile.y0 : tile.y1, tile.x0 : tile.x1]
            ph, pw = size[0] - crop.shape[0], size[1] - crop.shape[1]
            if ph or pw:
                mode = "reflect" if min(crop.shape[:2]) > max(ph, pw) else "edge"
                crop = np.pad(crop, ((0, ph), (0, pw), (0, 0)), mode=mode)
            normalise(crop, self.config.mean, self.config.std, out=slot)
        return batch

    # -- public -----------------------------------------------------------------
    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Crack probability (H, W) float32 in [0, 1] for an RGB uint8 image of any size."""
        return self.predict_proba_many([image])[0]

    def predict_proba_many(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Probabilities for several images, tiles of all of them batched together."""
        images = [self._check(im) for im in images]
        cfg = self.config
        out = [np.zeros(im.shape[:2], dtype=np.float32) for im in images]
        weight = [np.zeros(im.shape[:2], dtype=np.float32) for im in images]
        jobs = []  # (image index, tile, network input size)
        for i, im in enumerate(images):
            h, w = im.shape[:2]
            for tile in tile_grid(h, w, cfg.tile_size, cfg.tile_overlap):
                size = self._padded_size(tile.y1 - tile.y0, tile.x1 - tile.x0)
                jobs.append((i, tile, size))
        # same-size tiles share a batch: sort by size, then cut each size group into batches
        jobs.sort(key=lambda j: j[2])
        for size, same_size in groupby(jobs, key=lambda j: j[2]):
            same_size = list(same_size)
            step = self._per_batch(size)
            for start in range(0, len(same_size), step):
                group = same_size[start : start + step]
                batch = self._batch([(images[i], t) for i, t, _ in group], size)
                for (i, t, _), prob in zip(group, self._run(batch), strict=True):
                    th, tw = t.y1 - t.y0, t.x1 - t.x0
                    if (th, tw) == out[i].shape:  # one tile covers the image: nothing to blend
                        out[i] = prob[:th, :tw].copy()
                        weight[i] = None
                        continue
                    win = blend_window(th, tw, cfg.tile_overlap)
                    out[i][t.y0 : t.y1, t.x0 : t.x1] += prob[:th, :tw] * win
                    weight[i][t.y0 : t.y1, t.x0 : t.x1] += win
        for o, w in zip(out, weight, strict=True):
            if w is not None:
                np.divide(o, w, out=o)
            clear_border(o, 0, o.shape[0], cfg.border_px)
        return out

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        """Boolean crack mask (H, W) at the model's threshold.

        Works through the image one row of tiles at a time and thresholds rows as soon as no
        later tile can touch them, so besides the image and the mask it holds only one band
        of probabilities: a 10000 x 10000 scan needs no full-size float buffers.
        """
        return self._predict_banded(image, keep_proba=False)[0]

    def predict_mask_and_proba(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mask and the probability map as uint8 (0–255, p × 255 rounded), band by band."""
        return self._predict_banded(image, keep_proba=True)

    def _predict_banded(self, image: np.ndarray, keep_proba: bool):
        image = self._check(image)
        h, w = image.shape[:2]
        cfg = self.config
        tiles = tile_grid(h, w, cfg.tile_size, cfg.tile_overlap)
        mask = np.zeros((h, w), dtype=bool)
        proba = np.zeros((h, w), dtype=np.uint8) if keep_proba else None

        def finish(lo: int, hi: int, acc_rows: np.ndarray, wt_rows: np.ndarray) -> None:
            clear_border(acc_rows, lo, h, cfg.border_px)
            mask[lo:hi] = acc_rows >= cfg.threshold * wt_rows
            if proba is not None:
                p = acc_rows / np.maximum(wt_rows, 1e-6)
                proba[lo:hi] = np.clip(np.rint(p * 255), 0, 255).astype(np.uint8)

        band_lo = band_hi = 0
        acc = wt = np.zeros((0, w), dtype=np.float32)
        for y0, row in groupby(tiles, key=lambda t: t.y0):  # tile_grid yields row by row
            row = list(row)
            y1 = max(t.y1 for t in row)
            # rows above y0 are final: no tile of this or a later row reaches them
            if band_hi > band_lo:
                done = min(y0, band_hi) - band_lo
                finish(band_lo, band_lo + done, acc[:done], wt[:done])
            new_acc = np.zeros((y1 - y0, w), dtype=np.float32)
            new_wt = np.zeros((y1 - y0, w), dtype=np.float32)
            keep = band_hi - y0  # overlap rows carried over from the previous band
            if keep > 0:
                new_acc[:keep] = acc[y0 - band_lo :]
                new_wt[:keep] = wt[y0 - band_lo :]
            acc, wt, band_lo, band_hi = new_acc, new_wt, y0, y1
            for t, prob in self._tile_probabilities(image, row):
                th, tw = t.y1 - t.y0, t.x1 - t.x0
                win = blend_window(th, tw, cfg.tile_overlap)
                acc[t.y0 - y0 : t.y1 - y0, t.x0 : t.x1] += prob[:th, :tw] * win
                wt[t.y0 - y0 : t.y1 - y0, t.x0 : t.x1] += win
        if band_hi > band_lo:
            finish(band_lo, band_hi, acc, wt)
        return mask, proba

    def _tile_probabilities(self, image: np.ndarray, tiles: list[Tile]):
        """(tile, probabilities) for tiles of one image, same-size tiles batched together."""
        jobs = sorted(
            ((t, self._padded_size(t.y1 - t.y0, t.x1 - t.x0)) for t in tiles), key=lambda j: j[1]
        )
        for size, same_size in groupby(jobs, key=lambda j: j[1]):
            same_size = [t for t, _ in same_size]
            step = self._per_batch(size)
            for start in range(0, len(same_size), step):
                group = same_size[start : start + step]
                batch = self._batch([(image, t) for t in group], size)
                yield from zip(group, self._run(batch), strict=True)

    @staticmethod
    def _check(image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
        return image[:, :, :3]


def _fastest_cpu_runtime(folder: Path, network) -> object:
    """ "auto" on the CPU with OpenVINO: float32 or bf16, whichever this CPU runs faster (see
    OpenVinoBackend); then the folder's int8 model where it has a current one and it takes at
    most INT8_MARGIN of that time (its F1 cost is in the model card: within ±0.003 of float32
    on every validation and test split of the default). The precisions are timed in turns,
    once per host (backends.best_seconds_each, host_timings): every worker on a host makes
    the same choice, and once they are measured it compiles only the graph it runs (the float
    graph was compiled and dropped when int8 won: 0.5 s and 100 MB of a worker's start on a
    2-core EPYC)."""
    from inference.backends import INT8_MARGIN, OpenVinoInt8Backend, float_timings, pick_precision
    from inference.quantize import StaleInt8Error, check_int8

    float_path = _fresh_onnx(folder, network)
    try:
        int8_path = check_int8(folder)
    except StaleInt8Error:  # a new or adapted model has none until `inference.quantize`
        return OpenVinoBackend(float_path, "fastest")
    timed: dict[str, object] = {}  # graphs compiled to measure, if this process measured
    int8 = OpenVinoInt8Backend(int8_path)
    timings = dict(float_timings(float_path, timed=timed, int8=int8))  # a copy: they are kept
    float_seconds = {p: s for p, s in timings.items() if p != "int8"}
    if timings["int8"] <= INT8_MARGIN * timings[pick_precision(float_seconds)]:
        int8.timings = timings
        return int8
    float_runtime = OpenVinoBackend(float_path, pick_precision(float_seconds), timed)
    float_runtime.timings = timings
    return float_runtime


def _network_of(folder: Path, config: ModelConfig):
    """A function giving the folder's torch network with its weights, built on the first call
    only: a worker whose ONNX export (and int8 model) are current never builds it, which
    spares it importing segmentation-models-pytorch (3 s and 260 MB on a 2-core EPYC)."""

    @functools.cache  # an error is not kept: a second call raises it again
    def network() -> torch.nn.Module:
        try:
            module = build_network(config)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{folder}: config does not describe a network ({exc})") from exc
        state_dict = _load_state_dict(folder)
        try:
            module.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise ModelLoadError(
                f"{folder}: weights do not match {config.architecture}/{config.encoder}"
            ) from exc
        return module

    return network


def _fresh_onnx(folder: Path, network) -> Path:
    """The folder's float32 ONNX export, written again (network() built) when the weights or
    config are newer."""
    onnx_path = onnx_cache_path(folder)
    if onnx_path.exists():
        sources = (folder / CONFIG_FILE, _weights_path(folder))
        if onnx_path.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
            return onnx_path
    export_onnx(network(), onnx_path)  # none yet, or new weights or config
    return onnx_path


def load(
    path: Path | str, device: str | None = None, batch_size: int = 4, backend: str = "auto"
) -> Predictor:
    """Load a model-version folder into a ready predictor; never touches the network.

    backend: "torch", "torch-bf16" (bfloat16 autocast on CUDA), "onnx" (ONNX Runtime),
    "openvino" (float32), "openvino-bf16" (bfloat16 where the CPU has it, else float32),
    "openvino-int8" (the folder's model-int8.onnx from `python -m inference.quantize`), or
    "auto": CUDA torch in float16 when a GPU is present; on the CPU OpenVINO when installed
    (bf16 where it measures clearly faster than float32 on this CPU, else float32; int8 where
    the folder has a current int8 model that runs at least 1/INT8_MARGIN as fast), else ONNX
    Runtime, else torch.
    """
    folder = Path(path)
    if not (folder / CONFIG_FILE).is_file():
        raise ModelLoadError(f"{folder}: not a model version (no {CONFIG_FILE})")
    try:
        config = ModelConfig.load(folder / CONFIG_FILE)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    network = _network_of(folder, config)
    dev = pick_device(device)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if dev.type == "cpu":
        # OpenCV (geometry, tiles) keeps to the network's thread budget: workers sharing a
        # host with INFERENCE_THREADS=1 each would otherwise all fan out over every core
        cv2.setNumThreads(cpu_threads())
    precision = {"openvino": "f32", "openvino-bf16": "bf16"}.get(backend)
    if backend == "auto" and dev.type == "cpu":
        backend = "openvino" if openvino_available() else "onnx" if onnx_available() else "torch"
        precision = "fastest"
    if backend == "openvino" and precision == "fastest":
        return Predictor(config, _fastest_cpu_runtime(folder, network), batch_size=batch_size)
    if backend == "openvino-int8":
        from inference.backends import OpenVinoInt8Backend
        from inference.quantize import StaleInt8Error, check_int8

        try:
            return Predictor(config, OpenVinoInt8Backend(check_int8(folder)), batch_size=batch_size)
        except StaleInt8Error as exc:
            raise ModelLoadError(str(exc)) from exc
    if backend in ("onnx", "openvino", "openvino-bf16"):
        onnx_path = _fresh_onnx(folder, network)
        if backend == "onnx":
            runtime = OnnxBackend(onnx_path)
        else:
            runtime = OpenVinoBackend(onnx_path, precision)
        return Predictor(config, runtime, batch_size=batch_size)
    dtype = torch.bfloat16 if backend == "torch-bf16" else torch.float16
    return Predictor(config, TorchBackend(network(), dev, cuda_dtype=dtype), batch_size=batch_size)
