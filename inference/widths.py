"""Crack widths measured across the crack: orthogonal profiles along the skeleton normal.

At each skeleton pixel the direction of the crack is estimated from its neighbours along the
path; a profile is sampled across it (bilinear, every `profile_step_px`) on the probability
map when there is one (else on the mask), and the two edges are found where the profile
crosses the threshold, interpolated between samples: a sub-pixel width. A crack narrower
than the network resolves (its probability saturates over ~3 px) is refined on the image:
the darkness profile's area over its depth, the width of an equally dark crisp line.

Zones where a profile cannot see one crack are left out of the maximum: around junctions
(the profile runs into the other branch) and at tips (the round end). The maximum is robust:
despiked, averaged along each branch, then its 95th percentile: never one pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d

_TURNS = np.radians([-16.0, -8.0, 0.0, 8.0, 16.0])
_REMAP_COLS = 256  # points per row of the maps bilinear hands to remap
_NEAR_SAMPLES = 17  # samples of a profile taken first: 4 px at the default step


@dataclass
class Widths:
    """A crack's widths in pixels; profile holds the samples the figures come from."""

    max_px: float
    mean_px: float
    p95_px: float
    profile: np.ndarray


def _normals(path: np.ndarray, half_window: int) -> np.ndarray:
    """Unit normals (dy, dx) at each pixel of a path of (row, col) points."""
    n = len(path)
    idx = np.arange(n)
    ahead = path[np.minimum(idx + half_window, n - 1)]
    behind = path[np.maximum(idx - half_window, 0)]
    tangent = (ahead - behind).astype(np.float64)
    norm = np.hypot(tangent[:, 0], tangent[:, 1])
    norm[norm == 0] = 1.0
    tangent /= norm[:, None]
    return np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)  # rotate 90°


def bilinear(field: np.ndarray, ys: np.ndarray, xs: np.ndarray, outside: float | None = None):
    """field sampled at (ys, xs), bilinear as scipy's map_coordinates(order=1), ten times faster.

    outside=None clamps points beyond the edge to it (mode "nearest"); a number is the value
    there (mode "constant": no interpolation past the last row or column). OpenCV's remap does
    the sampling (float32, exact to ~1e-5 of the field's range) on maps of rows of
    _REMAP_COLS points (a point's value does not depend on the map's shape; a one-column map
    took 2.5 times as long), in blocks of rows its maps allow.
    """
    field = np.ascontiguousarray(field, dtype=np.float32)
    shape = np.shape(ys)
    n = int(np.prod(shape))
    rows = -(-n // _REMAP_COLS)

    def as_map(coords):
        flat = np.zeros(rows * _REMAP_COLS, dtype=np.float32)
        flat[:n] = np.ravel(coords)
        return flat.reshape(rows, _REMAP_COLS)

    my, mx = as_map(ys), as_map(xs)
    border = cv2.BORDER_REPLICATE if outside is None else cv2.BORDER_CONSTANT
    values = np.empty((rows, _REMAP_COLS), dtype=np.float32)
    block = 30_000  # remap's maps stay under 32,767 rows
    for i in range(0, rows, block):
        values[i : i + block] = cv2.remap(
            field, mx[i : i + block], my[i : i + block], cv2.INTER_LINEAR, borderMode=border
        )
    values = values.ravel()[:n].reshape(shape)
    if outside is None:
        return values
    h, w = field.shape
    inside = (ys >= 0) & (ys <= h - 1) & (xs >= 0) & (xs <= w - 1)
    return np.where(inside, values, np.float32(outside))


def _crossing(values: np.ndarray, offsets: np.ndarray, threshold: float, step: float):
    """Distance from the centre sample to the first sample below threshold, interpolated.

    values: (N, M) samples outward from the centre (column 0 is the centre). NaN where the
    profile never leaves the crack within reach.
    """
    below = values < threshold
    first = np.argmax(below, axis=1)
    found = below.any(axis=1) & (first > 0)
    rows = np.arange(len(values))
    j = np.maximum(first, 1)
    inside, outside = values[rows, j - 1], values[rows, j]
    frac = (inside - threshold) / np.maximum(inside - outside, 1e-9)
    distance = offsets[j - 1] + np.clip(frac, 0, 1) * step
    return np.where(found, distance, np.nan)


def _edge_widths(field, centres, normals, threshold, reach_px, step, turns=(0.0,)):
    """Sub-pixel width across the crack at each centre: both threshold crossings of the field.

    Measured along the normal turned by each of `turns` (radians); the narrowest is the
    width across, so a skeleton direction a few degrees off does not widen the crack.
    """
    offsets = np.arange(0, reach_px + step / 2, step)
    turns = np.asarray(turns, dtype=np.float64)
    c, s = np.cos(turns)[:, None], np.sin(turns)[:, None]  # (T, 1) against (N,) normals
    ny = normals[:, 0] * c - normals[:, 1] * s
    nx = normals[:, 0] * s + normals[:, 1] * c
    # every turn and both sides as one row each: (T * 2 * N) profiles, outward along
    sign = np.array([1.0, -1.0])[None, :, None]
    cy = np.broadcast_to(centres[None, None, :, 0], (len(turns), 2, len(centres))).ravel()
    cx = np.broadcast_to(centres[None, None, :, 1], (len(turns), 2, len(centres))).ravel()
    dy, dx = (sign * ny[:, None, :]).ravel(), (sign * nx[:, None, :]).ravel()

    def sample(rows, reach):
        ys = cy[rows, None] + reach[None, :] * dy[rows, None]
        xs = cx[rows, None] + reach[None, :] * dx[rows, None]
        return bilinear(field, ys, xs, outside=0.0)

    # most edges lie near the centre: sample the near part first and go on only where no
    # crossing was found there (the first crossing needs only the samples up to it)
    near = min(len(offsets), _NEAR_SAMPLES)
    sides = _crossing(sample(slice(None), offsets[:near]), offsets, threshold, step)
    far = np.flatnonzero(np.isnan(sides))
    if near < len(offsets) and far.size:
        sides[far] = _crossing(sample(far, offsets), offsets, threshold, step)
    sides = sides.reshape(len(turns), 2, len(centres))
    # the narrowest turn; NaN only where every turn is NaN (np.fmin's rule)
    return np.fmin.reduce(sides[:, 0] + sides[:, 1], axis=0)


def _row_median(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Median of each row's kept values (NaN where none): np.nanmedian's answer, sorted once."""
    kept = np.sort(np.where(keep, values, np.inf), axis=1)
    count = keep.sum(axis=1)
    rows = np.arange(len(kept))
    low = kept[rows, np.maximum(count - 1, 0) // 2]
    high = kept[rows, np.maximum(count, 1) // 2 - (count == 0)]
    return np.where(count > 0, (low + high) / 2, np.nan)


def _darkness_widths(gray, centres, normals, widths, settings) -> np.ndarray:
    """Photometric width: area of the darkness profile over its depth (NaN where too faint)."""
    step = settings.profile_step_px
    reach = np.nanmax(widths) / 2 + 4.0
    offsets = np.arange(-reach, reach + step / 2, step)
    ys = centres[:, 0, None] + offsets[None, :] * normals[:, 0, None]
    xs = centres[:, 1, None] + offsets[None, :] * normals[:, 1, None]
    values = bilinear(gray, ys, xs)
    half = (np.nan_to_num(widths, nan=0.0) / 2)[:, None]
    dist = np.abs(offsets)[None, :]
    flank = (dist >= half + 1.5) & (dist <= half + 4.0)
    inner = dist <= half + 1.5
    background = _row_median(values, flank)
    darkness = background[:, None] - values
    depth = np.max(np.where(inner, darkness, -np.inf), axis=1)
    area = np.sum(np.where(inner, darkness, 0.0), axis=1) * step
    with np.errstate(invalid="ignore", divide="ignore"):
        result = area / depth
    return np.where(depth >= settings.min_contrast, result, np.nan)


def _robust_max(values: np.ndarray, window: int, percentile: float) -> float:
    """A maximum that one pixel cannot make: despiked (median of 5), averaged along the crack
    over `window` samples, then a high percentile of that."""
    despiked = median_filter(values, size=min(5, len(values)), mode="nearest")
    smooth = uniform_filter1d(despiked, size=window, mode="nearest")
    return float(np.percentile(smooth, percentile))


def _excluded(steps: np.ndarray, ends: tuple[float, float]) -> np.ndarray:
    """True for samples within ends[0] of the path's start or ends[1] of its end (arc length)."""
    along = np.concatenate([[0.0], np.cumsum(steps)])
    return (along < ends[0]) | (along > along[-1] - ends[1])


def measure_widths(
    paths: list[list[tuple[int, int]]],
    end_kinds: list[tuple[str, str]],
    field: np.ndarray,
    threshold: float,
    half_width_hint: np.ndarray,
    settings,
    gray: np.ndarray | None = None,
) -> Widths:
    """Widths of one crack from its skeleton paths (row, col pixels in field's frame).

    end_kinds: per path, what each end is: "tip", "junction" or "loop". half_width_hint:
    a rough half-width per path end pair (distance transform), sizing the excluded zones.
    """
    step = settings.profile_step_px
    reach = float(np.max(half_width_hint)) * 2 + 4.0
    robust, samples, kept = [], [], []
    branches = [
        (np.asarray(path, dtype=np.float64), kinds, hints)
        for path, kinds, hints in zip(paths, end_kinds, half_width_hint, strict=True)
        if len(path) >= 2
    ]
    if not branches:
        return Widths(0.0, 0.0, 0.0, np.zeros(0))
    normals_of = [_normals(points, settings.tangent_px) for points, _, _ in branches]
    # every branch's profiles in one sampling (each profile is independent of the others)
    edge = _edge_widths(
        field,
        np.concatenate([points for points, _, _ in branches]),
        np.concatenate(normals_of),
        threshold,
        reach,
        step,
        _TURNS,
    )
    ends = np.cumsum([len(points) for points, _, _ in branches])[:-1]
    for (points, kinds, hints), normals, widths in zip(
        branches, normals_of, np.split(edge, ends), strict=True
    ):
        if gray is not None:
            thin = np.nan_to_num(widths, nan=np.inf) < settings.thin_refine_px
            if thin.any():
                refined = _darkness_widths(
                    gray, points[thin], normals[thin], widths[thin], settings
                )
                widths[thin] = np.fmin(widths[thin], np.maximum(refined, 0.0))
        zone = [
            2.0 * h + 2.0 if kind == "junction" else h + 1.5 if kind == "tip" else 0.0
            for kind, h in zip(kinds, hints, strict=True)
        ]
        steps = np.hypot(*np.diff(points, axis=0).T)
        valid = ~np.isnan(widths) & ~_excluded(steps, tuple(zone))
        samples.append(widths[~np.isnan(widths)])
        if valid.sum() == 0:
            continue
        values = widths[valid]
        kept.append(values)
        window = min(settings.robust_window, len(values))
        robust.append(_robust_max(values, window, settings.robust_percentile))
    if not kept:  # every sample lies in a junction or tip zone: use them all
        kept = [s for s in samples if s.size]
        robust = [float(np.median(s)) for s in kept]
    if not kept:
        return Widths(0.0, 0.0, 0.0, np.zeros(0))
    profile = np.concatenate(kept)
    return Widths(
        max_px=max(robust),
        mean_px=float(profile.mean()),
        p95_px=float(np.percentile(profile, 95)),
        profile=profile,
    )
