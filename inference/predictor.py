"""Crack-probability prediction for survey images of any size."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
import torch

from inference.backends import (
    OnnxBackend,
    TorchBackend,
    export_onnx,
    onnx_available,
    onnx_cache_path,
)
from inference.config import ModelConfig, build_network
from inference.tiling import Tile, blend_window, tile_grid

CONFIG_FILE = "config.json"
WEIGHTS_FILES = ("weights.safetensors", "weights.pt")


class ModelLoadError(RuntimeError):
    """A model-version folder is missing, incomplete or does not match its config."""


def _load_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    for name in WEIGHTS_FILES:
        path = folder / name
        if path.exists():
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                tensors = load_file(str(path))
            else:
                tensors = torch.load(path, map_location="cpu", weights_only=True)
            return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    raise ModelLoadError(f"{folder}: no weights file ({' or '.join(WEIGHTS_FILES)})")


def pick_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when present, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Predictor:
    """A loaded model version: call `predict_proba` or `predict_mask` on RGB uint8 arrays."""

    config: ModelConfig
    backend: object  # TorchBackend | OnnxBackend: batch (N, 3, H, W) -> logits (N, H, W)
    batch_size: int = 4
    flip_tta: bool = False

    def __post_init__(self) -> None:
        self._mean = np.asarray(self.config.mean, dtype=np.float32) * 255.0
        self._std = np.asarray(self.config.std, dtype=np.float32) * 255.0

    @property
    def backend_name(self) -> str:
        return self.backend.name

    # -- network on one batch -------------------------------------------------
    def _normalise(self, image: np.ndarray) -> np.ndarray:
        return ((image.astype(np.float32) - self._mean) / self._std).transpose(2, 0, 1)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, H, W) for a normalised batch (N, 3, H, W), H and W multiples of 32."""
        logits = self.backend(batch)
        if self.flip_tta:
            logits = (
                logits + self.backend(np.ascontiguousarray(batch[:, :, :, ::-1]))[:, :, ::-1]
            ) / 2
        return 1.0 / (1.0 + np.exp(-logits, dtype=np.float32))

    def _padded_size(self, h: int, w: int) -> tuple[int, int]:
        m = self.config.multiple
        return h + (-h) % m, w + (-w) % m

    def _prepare_tile(self, image: np.ndarray, tile: Tile, size: tuple[int, int]) -> np.ndarray:
        crop = image[tile.y0 : tile.y1, tile.x0 : tile.x1]
        ph, pw = size[0] - crop.shape[0], size[1] - crop.shape[1]
        if ph or pw:
            mode = "reflect" if min(crop.shape[:2]) > max(ph, pw) else "edge"
            crop = np.pad(crop, ((0, ph), (0, pw), (0, 0)), mode=mode)
        return self._normalise(crop)

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
        for _, same_size in groupby(jobs, key=lambda j: j[2]):
            same_size = list(same_size)
            for start in range(0, len(same_size), self.batch_size):
                group = same_size[start : start + self.batch_size]
                batch = np.stack([self._prepare_tile(images[i], t, s) for i, t, s in group])
                for (i, t, _), prob in zip(group, self._run(batch), strict=True):
                    th, tw = t.y1 - t.y0, t.x1 - t.x0
                    win = blend_window(th, tw, cfg.tile_overlap)
                    out[i][t.y0 : t.y1, t.x0 : t.x1] += prob[:th, :tw] * win
                    weight[i][t.y0 : t.y1, t.x0 : t.x1] += win
        for o, w in zip(out, weight, strict=True):
            np.divide(o, w, out=o)
        return out

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        """Boolean crack mask (H, W) at the model's threshold."""
        return self.predict_proba(image) >= self.config.threshold

    @staticmethod
    def _check(image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
        return image[:, :, :3]


def load(
    path: Path | str, device: str | None = None, batch_size: int = 4, backend: str = "auto"
) -> Predictor:
    """Load a model-version folder into a ready predictor; never touches the network.

    backend: "torch", "onnx", or "auto" (CUDA torch when a GPU is present, else ONNX Runtime
    when installed, else torch on the CPU).
    """
    folder = Path(path)
    if not (folder / CONFIG_FILE).is_file():
        raise ModelLoadError(f"{folder}: not a model version (no {CONFIG_FILE})")
    try:
        config = ModelConfig.load(folder / CONFIG_FILE)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    try:
        network = build_network(config)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{folder}: config does not describe a network ({exc})") from exc
    state_dict = _load_state_dict(folder)
    try:
        network.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"{folder}: weights do not match {config.architecture}/{config.encoder}"
        ) from exc
    dev = pick_device(device)
    if backend not in ("auto", "torch", "onnx"):
        raise ValueError(f"unknown backend {backend!r}")
    if backend == "onnx" or (backend == "auto" and dev.type == "cpu" and onnx_available()):
        onnx_path = onnx_cache_path(folder)
        if (
            not onnx_path.exists()
            or onnx_path.stat().st_mtime < (folder / CONFIG_FILE).stat().st_mtime
        ):
            export_onnx(network, onnx_path)
        return Predictor(config, OnnxBackend(onnx_path), batch_size=batch_size)
    return Predictor(config, TorchBackend(network, dev), batch_size=batch_size)
