"""Crack geometry from a binary mask: components, skeleton graph, polylines, length, width.

Image frame: x to the right (along the tunnel axis, chainage), y down (around the lining).
All measures are in pixels; the `*_mm` properties scale them by `mm_per_px`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from skimage.morphology import skeletonize

_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


@dataclass
class GeometrySettings:
    """Knobs of mask → cracks; defaults suit survey images at ~0.1–1 mm/px."""

    gap_px: int = 3  # fragments closer than this are one crack
    min_area_px: int = 12  # specks smaller than this are dropped
    min_length_px: float = 8.0  # cracks shorter than this are dropped
    simplify_px: float = 1.0  # Douglas–Peucker tolerance of the stored polyline
    longitudinal_max_deg: float = (
        30.0  # angle to the tunnel axis below which a crack is longitudinal
    )
    transverse_min_deg: float = 60.0  # angle above which it is transverse
    network_min_junctions: int = 3  # this many branch points (or any loop) make map cracking


@dataclass
class Crack:
    """One crack measured in image pixels; `*_mm` properties scale by mm_per_px."""

    polyline_px: list[list[list[float]]]  # branches, each a list of [x, y]
    length_px: float
    width_max_px: float
    width_mean_px: float
    width_p95_px: float
    area_px: int
    bbox_px: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    angle_deg: float  # dominant direction to the x axis, 0–90
    orientation: str  # longitudinal | transverse | diagonal | network
    junctions: int
    mm_per_px: float = 1.0
    width_profile_px: list[float] = field(default_factory=list, repr=False)

    @property
    def length_mm(self) -> float:
        return self.length_px * self.mm_per_px

    @property
    def width_max_mm(self) -> float:
        return self.width_max_px * self.mm_per_px

    @property
    def width_mean_mm(self) -> float:
        return self.width_mean_px * self.mm_per_px

    @property
    def width_p95_mm(self) -> float:
        return self.width_p95_px * self.mm_per_px

    @property
    def area_mm2(self) -> float:
        return self.area_px * self.mm_per_px**2


# -- skeleton graph -----------------------------------------------------------------


def _trace_paths(skeleton: np.ndarray) -> tuple[list[list[tuple[int, int]]], dict]:
    """Split a skeleton into pixel paths between nodes; return (paths, node key of each node pixel).

    Nodes are crack tips and junctions; adjacent junction pixels form one junction.
    """
    ys, xs = np.nonzero(skeleton)
    pixels = set(zip(ys.tolist(), xs.tolist(), strict=True))

    def neighbours(p):
        return [
            (p[0] + dy, p[1] + dx) for dy, dx in _NEIGHBOURS if (p[0] + dy, p[1] + dx) in pixels
        ]

    degree = {p: len(neighbours(p)) for p in pixels}
    node_of: dict[tuple, tuple] = {p: p for p, d in degree.items() if d != 2}
    # merge clusters of touching junction pixels into one junction
    for p in [p for p, d in degree.items() if d >= 3]:
        if node_of[p] != p:
            continue
        stack = [p]
        while stack:
            q = stack.pop()
            for r in neighbours(q):
                if degree[r] >= 3 and node_of[r] == r and r != p:
                    node_of[r] = p
                    stack.append(r)
    used: set[tuple] = set()
    paths = []

    def walk(start, first):
        path, prev, cur = [start, first], start, first
        used.add((start, first))
        used.add((first, start))
        while cur not in node_of:
            step = next((q for q in neighbours(cur) if q != prev and (cur, q) not in used), None)
            if step is None:
                break
            used.add((cur, step))
            used.add((step, cur))
            path.append(step)
            prev, cur = cur, step
            if cur == start:
                break
        return path

    for node in node_of:
        for nb in neighbours(node):
            if (node, nb) in used or node_of.get(nb) == node_of[node]:
                continue  # already traced, or inside one junction
            paths.append(walk(node, nb))
    # closed loops with no node at all
    seen = {p for path in paths for p in path} | set(node_of)
    for p in sorted(pixels - seen):
        if p in seen:
            continue
        nbs = neighbours(p)
        node_of[p] = p  # a loop's start acts as its node
        loop = walk(p, nbs[0]) if nbs else [p]
        seen.update(loop)
        paths.append(loop)
    return paths, node_of


def _path_length(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    return float(np.hypot(*np.diff(points, axis=0).T).sum())


def _simplify(path: list[tuple[int, int]], tolerance: float) -> np.ndarray:
    """Douglas–Peucker simplification; returns float (N, 2) points as x, y."""
    pts = np.asarray(path, dtype=np.float32)[:, ::-1]
    if len(pts) < 3:
        return pts
    return cv2.approxPolyDP(pts.reshape(-1, 1, 2), tolerance, False).reshape(-1, 2)


def _node_degrees(paths, node_of) -> dict[tuple, int]:
    degrees: dict[tuple, int] = {}
    for path in paths:
        for end in (path[0], path[-1]):
            key = node_of.get(end, end)
            degrees[key] = degrees.get(key, 0) + 1
    return degrees


def _prune_spurs(paths, node_of, widths_at):
    """Drop short end branches (skeleton noise at crack edges) hanging off a junction."""
    degrees = _node_degrees(paths, node_of)
    kept = []
    for path in paths:
        a, b = (degrees[node_of.get(e, e)] for e in (path[0], path[-1]))
        if (a == 1) != (b == 1) and max(a, b) >= 3:
            junction = path[0] if a >= 3 else path[-1]
            if len(path) - 1 <= max(3.0, 1.5 * widths_at(junction)):
                continue
        kept.append(path)
    return kept


# -- widths -------------------------------------------------------------------------


def _width_profile(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Crack width (px) at skeleton points (row, col) of mask.

    Computed on a 2x upsampled copy, where the distance from a centre pixel to the
    background equals the full width in original pixels for odd and even widths alike.
    """
    up = np.kron(mask.astype(np.uint8), np.ones((2, 2), np.uint8))
    up = np.pad(up, 1)
    dist = cv2.distanceTransform(up, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    r, c = points[:, 0] * 2 + 1, points[:, 1] * 2 + 1
    block = np.stack([dist[r, c], dist[r + 1, c], dist[r, c + 1], dist[r + 1, c + 1]])
    return block.max(axis=0)


# -- orientation ----------------------------------------------------------------------


def _dominant_angle(polylines: list[np.ndarray]) -> tuple[float, float]:
    """Length-weighted dominant direction (degrees to the x axis, 0–90) and its coherence 0–1."""
    vx = vy = total = 0.0
    for pts in polylines:
        d = np.diff(pts, axis=0)
        lengths = np.hypot(d[:, 0], d[:, 1])
        theta = np.arctan2(d[:, 1], d[:, 0])
        vx += float((lengths * np.cos(2 * theta)).sum())
        vy += float((lengths * np.sin(2 * theta)).sum())
        total += float(lengths.sum())
    if total == 0:
        return 0.0, 0.0
    angle = abs(math.degrees(math.atan2(vy, vx) / 2))
    return (180 - angle if angle > 90 else angle), math.hypot(vx, vy) / total


def classify_orientation(
    angle_deg: float, junctions: int, loops: int, settings: GeometrySettings
) -> str:
    """Orientation class relative to the tunnel axis (image x)."""
    if loops > 0 or junctions >= settings.network_min_junctions:
        return "network"
    if angle_deg <= settings.longitudinal_max_deg:
        return "longitudinal"
    if angle_deg >= settings.transverse_min_deg:
        return "transverse"
    return "diagonal"


# -- main entry -------------------------------------------------------------------------


def _measure_component(crack_mask, joined, settings, offset, mm_per_px) -> Crack | None:
    skeleton = skeletonize(joined)
    if not skeleton.any():
        return None
    paths, node_of = _trace_paths(skeleton)
    all_pts = np.argwhere(skeleton)
    widths = _width_profile(crack_mask, all_pts)
    width_at = dict(zip(map(tuple, all_pts.tolist()), widths.tolist(), strict=True))
    paths = _prune_spurs(paths, node_of, lambda p: width_at.get(p, 1.0))

    polylines, length = [], 0.0
    for path in paths:
        pts = _simplify(path, settings.simplify_px)
        polylines.append(pts)
        length += _path_length(pts)
    degrees = _node_degrees(paths, node_of)
    junctions = sum(1 for d in degrees.values() if d >= 3)
    loops = max(0, len(paths) - len(degrees) + 1)  # cycle rank of a connected graph

    profile = np.array([width_at[p] for path in paths for p in path] or widths)
    profile = profile[profile > 0]  # joined gaps carry no width
    if profile.size == 0:
        profile = np.array([1.0])
    angle, _ = _dominant_angle(polylines)
    oy, ox = offset
    ys, xs = np.nonzero(joined)
    return Crack(
        polyline_px=[(pts + [ox, oy]).round(2).tolist() for pts in polylines],
        length_px=length,
        width_max_px=float(profile.max()),
        width_mean_px=float(profile.mean()),
        width_p95_px=float(np.percentile(profile, 95)),
        area_px=int(crack_mask.sum()),
        bbox_px=(
            int(xs.min() + ox),
            int(ys.min() + oy),
            int(xs.max() + ox + 1),
            int(ys.max() + oy + 1),
        ),
        angle_deg=angle,
        orientation=classify_orientation(angle, junctions, loops, settings),
        junctions=junctions,
        mm_per_px=mm_per_px,
        width_profile_px=profile.round(2).tolist(),
    )


def extract_cracks(
    mask: np.ndarray, mm_per_px: float = 1.0, settings: GeometrySettings | None = None
) -> list[Crack]:
    """Turn a boolean crack mask into measured cracks, largest first."""
    settings = settings or GeometrySettings()
    mask = np.ascontiguousarray(mask.astype(bool))
    if not mask.any():
        return []
    mask8 = mask.astype(np.uint8)
    # drop specks before joining so noise does not bridge into cracks
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask8, connectivity=8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < settings.min_area_px)
    small = small[small != 0]
    if small.size:
        mask8[np.isin(labels, small)] = 0
    joined8 = mask8
    if settings.gap_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * settings.gap_px + 1,) * 2)
        joined8 = mask8 | cv2.morphologyEx(mask8, cv2.MORPH_CLOSE, k)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined8, connectivity=8)
    cracks = []
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        # a 1-px margin keeps the skeleton and distance transform clear of the crop edge
        y0, x0 = max(0, y - 1), max(0, x - 1)
        y1, x1 = min(mask.shape[0], y + h + 1), min(mask.shape[1], x + w + 1)
        region = labels[y0:y1, x0:x1] == i
        crack = _measure_component(
            mask8[y0:y1, x0:x1].astype(bool) & region, region, settings, (y0, x0), mm_per_px
        )
        if crack is not None and crack.length_px >= settings.min_length_px:
            cracks.append(crack)
    cracks.sort(key=lambda c: c.length_px, reverse=True)
    return cracks
