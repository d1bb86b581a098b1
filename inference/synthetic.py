"""Synthetic survey images: concrete-like texture with drawn cracks of known geometry.

Used by the demo and by tests, so both work without any dataset on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class DrawnCrack:
    """A crack drawn into an image: its centreline (x, y px) and width in px."""

    points: np.ndarray
    width_px: float

    @property
    def length_px(self) -> float:
        return float(np.hypot(*np.diff(self.points, axis=0).T).sum())


def concrete_texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Grey lining texture: blotchy low-frequency shade plus fine grain (RGB uint8)."""
    low = cv2.resize(
        rng.normal(0, 1, (max(2, height // 64), max(2, width // 64))).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    grain = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 0.8)
    grey = 150 + 12 * low + 7 * grain
    tint = np.array([1.0, 0.98, 0.94], dtype=np.float32)
    return np.clip(grey[:, :, None] * tint, 0, 255).astype(np.uint8)


def rasterise_polyline(shape: tuple[int, int], points: np.ndarray, width_px: float) -> np.ndarray:
    """Exact mask of pixels whose centre lies within width_px / 2 of the polyline."""
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    r = width_px / 2
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        xa, xb = (
            int(max(0, np.floor(min(x0, x1) - r - 1))),
            int(min(w, np.ceil(max(x0, x1) + r + 2))),
        )
        ya, yb = (
            int(max(0, np.floor(min(y0, y1) - r - 1))),
            int(min(h, np.ceil(max(y0, y1) + r + 2))),
        )
        if xa >= xb or ya >= yb:
            continue
        yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
        dx, dy = x1 - x0, y1 - y0
        seg2 = dx * dx + dy * dy
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / seg2, 0, 1) if seg2 > 0 else 0
        dist = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
        mask[ya:yb, xa:xb] |= dist <= r
    return mask


def wandering_path(
    start, end, rng: np.random.Generator, jitter: float = 0.08, steps: int = 24
) -> np.ndarray:
    """A crack-like path from start to end: a straight line with smooth random sideways wander."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    t = np.linspace(0, 1, steps)
    base = start + t[:, None] * (end - start)
    normal = np.array([-(end - start)[1], (end - start)[0]])
    normal /= np.linalg.norm(normal) or 1
    wander = np.cumsum(rng.normal(0, 1, steps))
    wander -= t * wander[-1]  # pin both ends
    amplitude = jitter * np.linalg.norm(end - start) / (np.abs(wander).max() or 1)
    return base + (wander * amplitude)[:, None] * normal


def survey_image(
    width: int,
    height: int,
    n_cracks: int = 2,
    seed: int = 0,
    widths_px: tuple[float, float] = (1.5, 4.0),
) -> tuple[np.ndarray, np.ndarray, list[DrawnCrack]]:
    """A synthetic survey image with n_cracks dark cracks: (rgb, truth mask, drawn cracks)."""
    rng = np.random.default_rng(seed)
    image = concrete_texture(height, width, rng)
    mask = np.zeros((height, width), dtype=bool)
    cracks = []
    for _ in range(n_cracks):
        margin = 0.1
        a = rng.uniform(
            [width * margin, height * margin], [width * (1 - margin), height * (1 - margin)]
        )
        b = rng.uniform(
            [width * margin, height * margin], [width * (1 - margin), height * (1 - margin)]
        )
        if np.linalg.norm(b - a) < min(width, height) * 0.4:
            b = np.array([width, height]) - a
        points = wandering_path(a, b, rng)
        crack_width = float(rng.uniform(*widths_px))
        crack = rasterise_polyline((height, width), points, crack_width)
        core = rasterise_polyline((height, width), points, max(1.0, crack_width / 2))
        image[crack] = (image[crack] * 0.45).astype(np.uint8)
        image[core] = (image[core] * 0.6).astype(np.uint8)
        mask |= crack
        cracks.append(DrawnCrack(points, crack_width))
    return image, mask, cracks
