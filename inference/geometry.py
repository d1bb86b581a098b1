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

from inference.widths import measure_widths

_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
# the neighbour offsets each 8-bit link code stands for (bit k: _NEIGHBOURS[k])
_LINKS = [[d for k, d in enumerate(_NEIGHBOURS) if code >> k & 1] for code in range(256)]


@dataclass
class GeometrySettings:
    """Knobs of mask → cracks; defaults suit survey images at ~0.1–1 mm/px."""

    gap_px: int = 3  # fragments closer than this are one crack (morphological closing)
    # pieces of one crack that a mask breaks apart: a tip joins the tip of another piece when
    # it lies within join_gap_px along the crack's direction (both tips facing each other
    # within join_angle_deg); 0 turns joining off
    join_gap_px: float = 150.0
    join_angle_deg: float = 30.0
    min_area_px: int = 12  # specks smaller than this are dropped
    min_length_px: float = 8.0  # cracks shorter than this are dropped
    simplify_px: float = 1.0  # Douglas–Peucker tolerance of the stored polyline
    longitudinal_max_deg: float = 30.0  # angle to the tunnel axis below which it is longitudinal
    transverse_min_deg: float = 60.0  # angle above which it is transverse
    network_min_junctions: int = 3  # this many branch points (or any loop) make map cracking
    # widths: profiles across the crack along the skeleton normal
    tangent_px: int = 4  # half-window of the skeleton direction estimate
    profile_step_px: float = 0.25  # sampling step along the normal
    robust_window: int = 25  # samples averaged along the crack before the maximum is taken
    robust_percentile: float = 95.0  # of the averaged profile: the robust maximum
    # an edge width below this is refined on the image's darkness profile (the network's
    # probability saturates over ~3 px for any crack thinner than that)
    thin_refine_px: float = 4.0
    min_contrast: float = 12.0  # grey levels: fainter lines keep the edge width
    resolution_px: float = 1.0  # narrower than this is reported as below the resolution


@dataclass
class Crack:
    """One crack measured in image pixels; `*_mm` properties scale by mm_per_px.

    Widths are measured across the crack (orthogonal profiles, sub-pixel edges), junction
    and tip zones left out; width_max_px is a robust maximum (see inference.widths).
    """

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
    pieces: int = 1  # mask components joined into this crack
    loops: int = 0

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

    Nodes are crack tips and junctions; adjacent junction pixels form one junction. Pixels
    are linked by m-adjacency (4-neighbours, and diagonals without a 4-path between them).
    """
    ys, xs = np.nonzero(skeleton)
    coords = list(zip(ys.tolist(), xs.tolist(), strict=True))
    pixels = set(coords)
    # each pixel's links as 8 bits (in _NEIGHBOURS order), for all pixels at once
    padded = np.pad(skeleton.astype(bool), 1)
    near = {(dy, dx): padded[ys + 1 + dy, xs + 1 + dx] for dy, dx in _NEIGHBOURS}
    code = np.zeros(len(ys), dtype=np.intp)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        link = near[dy, dx]
        if dy and dx:
            # m-adjacency: a diagonal neighbour counts only when no shared 4-neighbour links
            # the two, so a staircase (a line at 45°) is a chain, not junctions and loops
            link = link & ~near[dy, 0] & ~near[0, dx]
        code |= link.astype(np.intp) << bit
    code_of = dict(zip(coords, code.tolist(), strict=True))
    # each pixel's neighbours, worked out once (in the set's order, which the tracing follows)
    adjacent = {p: [(p[0] + dy, p[1] + dx) for dy, dx in _LINKS[code_of[p]]] for p in pixels}
    neighbours = adjacent.__getitem__
    degree = {p: len(n) for p, n in adjacent.items()}
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
        # every pixel that is not a node has exactly two links: the way on is the one not
        # come from, until a node (the start included: a loop ends where it began)
        path, prev, cur = [start, first], start, first
        while cur not in node_of:
            a, b = neighbours(cur)
            prev, cur = cur, (b if a == prev else a)
            path.append(cur)
        # a path is entered only at its two ends: marking them keeps it from being traced
        # again from its other end
        used.update(((start, first), (first, start), (prev, cur), (cur, prev)))
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


# -- one mask component -----------------------------------------------------------------


def _components(mask8: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components (count, labels, stats) by Grana's block-based algorithm: the
    same labels as OpenCV's default, in half its time on a sparse crack mask."""
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask8, 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    return n, labels, stats


@dataclass
class _Piece:
    """A measured component, with what joining needs: its tips and their outward directions."""

    crack: Crack
    tips: list[tuple[np.ndarray, np.ndarray]]  # (x, y) point, unit direction pointing out
    profile: np.ndarray


def _end_kind(path, node_of, degrees) -> tuple[str, str]:
    kinds = []
    for end in (path[0], path[-1]):
        degree = degrees.get(node_of.get(end, end), 1)
        kinds.append("tip" if degree == 1 else "junction" if degree >= 3 else "loop")
    return kinds[0], kinds[1]


def _tip_direction(path, at_start: bool) -> np.ndarray:
    """Outward unit direction (x, y) at one end of a path, from up to 12 px of it."""
    pts = np.asarray(path if at_start else path[::-1], dtype=np.float64)[:, ::-1]
    inner = pts[min(12, len(pts) - 1)]
    d = pts[0] - inner
    return d / (np.hypot(*d) or 1.0)


def _measure_component(sources: _Sources, box, labels, index, settings, mm_per_px):
    """Skeleton, polylines, length and widths of one component of the joined mask."""
    y0, x0, y1, x1 = box
    region = labels[y0:y1, x0:x1] == index
    crack_mask = sources.mask[y0:y1, x0:x1] & region
    # Lee's thinning: Zhang–Suen erases stretches of 2-px-thick diagonal lines
    skeleton = skeletonize(region, method="lee").astype(bool)
    if not skeleton.any():
        return None
    # half-widths of the joined region: its skeleton (junctions included) lies inside it
    # a region filling its crop (a mask that is crack up to every image edge) has no
    # background pixel: OpenCV's distances are then a huge sentinel, and the width profiles
    # sized from them asked for gigabytes. Padded, the image's edge is its edge.
    pad = 1 if region.all() else 0
    half = cv2.distanceTransform(
        np.pad(region, pad).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
    )[pad : pad + region.shape[0], pad : pad + region.shape[1]]
    paths, node_of = _trace_paths(skeleton)
    paths = _prune_spurs(paths, node_of, lambda p: 2.0 * half[p])
    if not paths:
        return None
    degrees = _node_degrees(paths, node_of)

    # widths on a window with room for the profiles beyond the crack's edges
    margin = int(2 * half.max() + 10)
    fy0, fx0 = max(0, y0 - margin), max(0, x0 - margin)
    fy1 = min(sources.mask.shape[0], y1 + margin)
    fx1 = min(sources.mask.shape[1], x1 + margin)
    field, threshold = sources.field(fy0, fx0, fy1, fx1)
    gray = sources.gray[fy0:fy1, fx0:fx1].astype(np.float32) if sources.gray is not None else None
    shift = (y0 - fy0, x0 - fx0)
    widths = measure_widths(
        [[(r + shift[0], c + shift[1]) for r, c in path] for path in paths],
        [_end_kind(path, node_of, degrees) for path in paths],
        field,
        threshold,
        np.array([[half[path[0]], half[path[-1]]] for path in paths]),
        settings,
        gray,
    )

    polylines, length = [], 0.0
    for path in paths:
        pts = _simplify(path, settings.simplify_px)
        polylines.append(pts)
        length += _path_length(pts)
    junctions = sum(1 for d in degrees.values() if d >= 3)
    loops = max(0, len(paths) - len(degrees) + 1)  # cycle rank of a connected graph
    tips = []
    for path in paths:
        for at_start, end in ((True, path[0]), (False, path[-1])):
            if degrees.get(node_of.get(end, end), 1) == 1 and len(path) > 1:
                point = np.array([end[1] + x0, end[0] + y0], dtype=np.float64)
                tips.append((point, _tip_direction(path, at_start)))
    ys, xs = np.nonzero(region)
    angle, _ = _dominant_angle(polylines)
    crack = Crack(
        polyline_px=[(pts + [x0, y0]).round(2).tolist() for pts in polylines],
        length_px=length,
        width_max_px=widths.max_px,
        width_mean_px=widths.mean_px,
        width_p95_px=widths.p95_px,
        area_px=int(crack_mask.sum()),
        bbox_px=(
            int(xs.min() + x0),
            int(ys.min() + y0),
            int(xs.max() + x0 + 1),
            int(ys.max() + y0 + 1),
        ),
        angle_deg=angle,
        orientation=classify_orientation(angle, junctions, loops, settings),
        junctions=junctions,
        mm_per_px=mm_per_px,
        width_profile_px=widths.profile.round(2).tolist(),
        loops=loops,
    )
    return _Piece(crack, tips, widths.profile)


# -- continuity: pieces of one crack across the gaps a mask leaves ------------------------


def _join_candidates(pieces: list[_Piece], settings) -> list[tuple[float, int, int, int, int]]:
    """(cost, piece a, tip a, piece b, tip b) for tip pairs that face each other across a gap."""
    cos_max = math.cos(math.radians(settings.join_angle_deg))
    tips = [(i, k, p, d) for i, piece in enumerate(pieces) for k, (p, d) in enumerate(piece.tips)]
    if len(tips) < 2:
        return []
    points = np.array([t[2] for t in tips])
    out = []
    for i, k, p, d in tips:
        gap = points - p
        dist = np.hypot(gap[:, 0], gap[:, 1])
        for b in np.flatnonzero((dist <= settings.join_gap_px) & (dist > 0)):
            j, m, q, e = tips[b]
            if j <= i:
                continue
            towards = gap[b] / dist[b]
            # each tip points at the other, and the two pieces run the same way
            if towards @ d >= cos_max and -(towards @ e) >= cos_max and -(d @ e) >= cos_max:
                out.append((float(dist[b]) * (2.0 - towards @ d - (-(d @ e))), i, k, j, m))
    return sorted(out)


def _merge(group: list[_Piece], bridges: list[np.ndarray], settings, mm_per_px) -> Crack:
    cracks = [p.crack for p in group]
    polylines = [np.asarray(b, dtype=np.float64) for c in cracks for b in c.polyline_px]
    polylines += bridges
    profile = np.concatenate([p.profile for p in group]) if group else np.zeros(0)
    junctions = sum(c.junctions for c in cracks)
    loops = sum(c.loops for c in cracks)
    angle, _ = _dominant_angle(polylines)
    return Crack(
        polyline_px=[np.round(pl, 2).tolist() for pl in polylines],
        length_px=sum(c.length_px for c in cracks) + sum(_path_length(b) for b in bridges),
        width_max_px=max(c.width_max_px for c in cracks),
        width_mean_px=float(profile.mean()) if profile.size else 0.0,
        width_p95_px=float(np.percentile(profile, 95)) if profile.size else 0.0,
        area_px=sum(c.area_px for c in cracks),
        bbox_px=(
            min(c.bbox_px[0] for c in cracks),
            min(c.bbox_px[1] for c in cracks),
            max(c.bbox_px[2] for c in cracks),
            max(c.bbox_px[3] for c in cracks),
        ),
        angle_deg=angle,
        orientation=classify_orientation(angle, junctions, loops, settings),
        junctions=junctions,
        mm_per_px=mm_per_px,
        width_profile_px=profile.round(2).tolist(),
        pieces=sum(c.pieces for c in cracks),
        loops=loops,
    )


def join_pieces(pieces: list[_Piece], settings, mm_per_px: float) -> list[Crack]:
    """Join pieces whose tips face each other across a gap into one crack (each tip once)."""
    if settings.join_gap_px <= 0 or len(pieces) < 2:
        return [p.crack for p in pieces]
    parent = list(range(len(pieces)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    used: set[tuple[int, int]] = set()
    bridges: dict[int, list[np.ndarray]] = {}
    for _, i, k, j, m in _join_candidates(pieces, settings):
        if (i, k) in used or (j, m) in used or find(i) == find(j):
            continue  # a tip joins once; never close a loop through joins
        used |= {(i, k), (j, m)}
        ri, rj = find(i), find(j)
        parent[max(ri, rj)] = min(ri, rj)
        bridge = np.stack([pieces[i].tips[k][0], pieces[j].tips[m][0]])
        bridges.setdefault(min(ri, rj), []).extend(bridges.pop(max(ri, rj), []) + [bridge])
    groups: dict[int, list[_Piece]] = {}
    for i, piece in enumerate(pieces):
        groups.setdefault(find(i), []).append(piece)
    return [
        group[0].crack
        if len(group) == 1
        else _merge(group, bridges.get(root, []), settings, mm_per_px)
        for root, group in groups.items()
    ]


# -- main entry -------------------------------------------------------------------------


@dataclass
class _Sources:
    """What widths are measured on: the mask, and the probability map and image when known."""

    mask: np.ndarray  # bool (H, W), specks removed
    proba: np.ndarray | None  # (H, W) float in 0..1 or uint8 in 0..255
    threshold: float
    gray: np.ndarray | None  # (H, W) uint8

    def field(self, y0, x0, y1, x1) -> tuple[np.ndarray, float]:
        """The window of the field whose threshold crossings are the crack's edges."""
        if self.proba is None:
            return self.mask[y0:y1, x0:x1].astype(np.float32), 0.5
        window = self.proba[y0:y1, x0:x1].astype(np.float32)
        if self.proba.dtype == np.uint8:
            window /= 255.0
        return window, self.threshold


def _gray(image: np.ndarray | None) -> np.ndarray | None:
    if image is None:
        return None
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def extract_cracks(
    mask: np.ndarray,
    mm_per_px: float = 1.0,
    settings: GeometrySettings | None = None,
    *,
    proba: np.ndarray | None = None,
    threshold: float = 0.5,
    image: np.ndarray | None = None,
) -> list[Crack]:
    """Turn a boolean crack mask into measured cracks, longest first.

    proba (the network's probability map, float 0..1 or uint8 0..255, thresholded at
    `threshold` to give mask) places the edges at sub-pixel precision; image (RGB or grey)
    refines cracks thinner than the network resolves. Without them the mask is measured.
    """
    settings = settings or GeometrySettings()
    mask = np.ascontiguousarray(mask.astype(bool))
    if not mask.any():
        return []
    mask8 = mask.astype(np.uint8)
    # drop specks before joining so noise does not bridge into cracks
    n, labels, stats = _components(mask8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < settings.min_area_px)
    small = small[small != 0]
    if small.size:
        drop = np.zeros(n, dtype=bool)
        drop[small] = True
        mask8[drop[labels]] = 0
    joined8 = mask8
    if settings.gap_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * settings.gap_px + 1,) * 2)
        joined8 = mask8 | cv2.morphologyEx(mask8, cv2.MORPH_CLOSE, k)
    sources = _Sources(mask8.astype(bool), proba, threshold, _gray(image))
    n, labels, stats = _components(joined8)
    pieces = []
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        # a 1-px margin keeps the skeleton and distance transform clear of the crop edge
        box = (
            max(0, y - 1),
            max(0, x - 1),
            min(mask.shape[0], y + h + 1),
            min(mask.shape[1], x + w + 1),
        )
        piece = _measure_component(sources, box, labels, i, settings, mm_per_px)
        if piece is not None:
            pieces.append(piece)
    cracks = [
        c for c in join_pieces(pieces, settings, mm_per_px) if c.length_px >= settings.min_length_px
    ]
    cracks.sort(key=lambda c: c.length_px, reverse=True)
    return cracks
