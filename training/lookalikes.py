"""Things on a tunnel lining that are not cracks but look like them.

Segment and formwork joints (long, perfectly straight, bevelled), formwork grids, bolt holes,
cable edges, water stains and scratches. They are drawn onto crack-free parts of an image,
away from every crack pixel, and labelled background: as hard negatives while training
(`draw_lookalikes` on each crop), and as a test set (`lookalike_test_set`) whose
false-positive figure `python -m training.evaluate --lookalikes` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("joint", "grid", "bolt_hole", "cable", "stain", "scratch")
CLEARANCE_PX = 12  # look-alikes keep this far from any crack pixel


def _line_across(h: int, w: int, rng: np.random.Generator, layer: np.ndarray, thickness: int):
    """A straight line through the whole image, near-horizontal or near-vertical."""
    angle = np.deg2rad(rng.uniform(-4, 4) + (90 if rng.random() < 0.5 else 0))
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    length = 2 * (h + w)
    dx, dy = np.cos(angle) * length, np.sin(angle) * length
    p0, p1 = (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy))
    cv2.line(layer, p0, p1, 1.0, thickness, lineType=cv2.LINE_AA)
    return p0, p1, angle


def _joint(h, w, rng):
    dark, light = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    thickness = int(rng.integers(5, 13))
    p0, p1, angle = _line_across(h, w, rng, dark, thickness)
    # the lit edge of the bevel
    off = np.array([-np.sin(angle), np.cos(angle)]) * (thickness / 2 + 1.5)
    cv2.line(
        light,
        (int(p0[0] + off[0]), int(p0[1] + off[1])),
        (int(p1[0] + off[0]), int(p1[1] + off[1])),
        1.0,
        2,
        lineType=cv2.LINE_AA,
    )
    return cv2.GaussianBlur(dark, (0, 0), 1.2), rng.uniform(0.4, 0.65), light * 0.3


def _grid(h, w, rng):
    dark = np.zeros((h, w), np.float32)
    spacing = rng.uniform(70, 160)
    thickness = int(rng.integers(2, 5))
    for vertical in (False, True):
        extent = w if vertical else h
        start = rng.uniform(0, spacing)
        for pos in np.arange(start, extent, spacing):
            p = int(pos)
            a, b = ((p, 0), (p, h)) if vertical else ((0, p), (w, p))
            cv2.line(dark, a, b, 1.0, thickness, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(dark, (0, 0), 0.8), rng.uniform(0.15, 0.35), None


def _bolt_hole(h, w, rng):
    dark = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        r = int(rng.integers(6, 22))
        centre = (int(rng.uniform(r, w - r)), int(rng.uniform(r, h - r)))
        cv2.circle(dark, centre, r, 1.0, -1, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(dark, (0, 0), 1.5), rng.uniform(0.45, 0.7), None


def _cable(h, w, rng):
    dark = np.zeros((h, w), np.float32)
    gap = int(rng.integers(10, 30))
    p0, p1, angle = _line_across(h, w, rng, dark, 2)
    normal = np.array([-np.sin(angle), np.cos(angle)])
    band = np.zeros_like(dark)
    for k in np.linspace(0, gap, 8):
        o = normal * k
        cv2.line(
            band,
            (int(p0[0] + o[0]), int(p0[1] + o[1])),
            (int(p1[0] + o[0]), int(p1[1] + o[1])),
            1.0,
            3,
        )
    shade = np.maximum(dark, 0.45 * band)
    return cv2.GaussianBlur(shade, (0, 0), 1.0), rng.uniform(0.35, 0.6), None


def _stain(h, w, rng):
    dark = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 3))):
        axes = (int(rng.uniform(15, 70)), int(rng.uniform(40, 180)))  # water runs down
        centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        cv2.ellipse(dark, centre, axes, rng.uniform(-15, 15), 0, 360, 1.0, -1)
    return cv2.GaussianBlur(dark, (0, 0), rng.uniform(6, 16)), rng.uniform(0.1, 0.3), None


def _scratch(h, w, rng):
    layer = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 9))):
        length, angle = rng.uniform(25, 110), rng.uniform(0, np.pi)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        a = (int(x), int(y))
        b = (int(x + np.cos(angle) * length), int(y + np.sin(angle) * length))
        cv2.line(layer, a, b, 1.0, 1, lineType=cv2.LINE_AA)
    if rng.random() < 0.7:  # abrasion: lighter than the concrete
        return np.zeros_like(layer), 0.0, layer * rng.uniform(0.2, 0.4)
    return layer, rng.uniform(0.12, 0.25), None


_DRAW = {
    "joint": _joint,
    "grid": _grid,
    "bolt_hole": _bolt_hole,
    "cable": _cable,
    "stain": _stain,
    "scratch": _scratch,
}


def draw_lookalike(
    rgb: np.ndarray, crack_mask: np.ndarray, rng: np.random.Generator, kind: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """rgb with one look-alike drawn away from the cracks: (new rgb, bool region it covers)."""
    h, w = crack_mask.shape
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    dark, strength, light = _DRAW[kind](h, w, rng)
    if crack_mask.any():
        size = 2 * CLEARANCE_PX + 1
        keep_out = cv2.dilate(
            crack_mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        ).astype(bool)
        # fade out towards the cracks instead of a sharp cut that would itself look like an edge
        keep = 1 - cv2.GaussianBlur(keep_out.astype(np.float32), (0, 0), 3)
        keep[keep_out] = 0
        dark *= keep
        if light is not None:
            light *= keep
    out = rgb.astype(np.float32)
    out *= 1 - strength * dark[..., None]
    if light is not None:
        out += (255 - out) * light[..., None]
    effect = dark * strength if light is None else np.maximum(dark * strength, light)
    region = effect > 0.04
    return np.clip(out, 0, 255).astype(np.uint8), region


def draw_lookalikes(
    rgb: np.ndarray, crack_mask: np.ndarray, rng: np.random.Generator, count: int
) -> np.ndarray:
    """Hard-negative augmentation: count look-alikes of random kinds; the mask is unchanged."""
    for _ in range(count):
        rgb, _ = draw_lookalike(rgb, crack_mask, rng)
    return rgb


@dataclass
class LookalikeCase:
    name: str
    kind: str
    image: np.ndarray  # with the look-alike drawn
    crack_mask: np.ndarray  # the image's real cracks (unchanged)
    region: np.ndarray  # the look-alike's pixels (none of them crack)


def lookalike_test_set(
    samples: Iterable[tuple[str, np.ndarray, np.ndarray]], seed: int = 2019
) -> Iterator[LookalikeCase]:
    """One case per (image, kind): every kind drawn on every image, deterministically."""
    for n, (name, rgb, mask) in enumerate(samples):
        for k, kind in enumerate(KINDS):
            rng = np.random.default_rng([seed, n, k])
            image, region = draw_lookalike(rgb, mask.astype(bool), rng, kind)
            if region.any():
                yield LookalikeCase(f"{name}:{kind}", kind, image, mask.astype(bool), region)


class LookalikeCounter:
    """False-positive pixel rate on the look-alikes: predicted-crack pixels ÷ look-alike pixels."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.hits: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.pixels: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.flagged: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.cases: dict[str, int] = dict.fromkeys(KINDS, 0)

    def update(self, case: LookalikeCase, prob: np.ndarray) -> None:
        predicted = (prob >= self.threshold) & case.region
        hits = int(predicted.sum())
        self.hits[case.kind] += hits
        self.pixels[case.kind] += int(case.region.sum())
        self.cases[case.kind] += 1
        self.flagged[case.kind] += int(hits >= 20)  # a user would see a crack there

    def result(self) -> dict:
        kinds = {
            kind: {
                "fp_pixel_rate": self.hits[kind] / max(self.pixels[kind], 1),
                "flagged_fraction": self.flagged[kind] / max(self.cases[kind], 1),
                "cases": self.cases[kind],
            }
            for kind in KINDS
        }
        return {
            "lookalike_fp_pixel_rate": sum(self.hits.values()) / max(sum(self.pixels.values()), 1),
            "lookalike_flagged_fraction": sum(self.flagged.values())
            / max(sum(self.cases.values()), 1),
            "lookalike_cases": sum(self.cases.values()),
            "lookalike_by_kind": kinds,
        }
