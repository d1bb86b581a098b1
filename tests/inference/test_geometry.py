"""Crack geometry on drawn cracks of known length and width."""

import math

import numpy as np
import pytest

from inference.geometry import extract_cracks
from inference.synthetic import rasterise_polyline


def straight(angle_deg, length=400.0, size=600, offset=0.3):
    c = size / 2
    dx = length / 2 * math.cos(math.radians(angle_deg))
    dy = length / 2 * math.sin(math.radians(angle_deg))
    return np.array([[c - dx, c - dy], [c + dx, c + dy]]) + offset


def drawn_width(mask, width, length):
    """The width the rasteriser really drew: area less the round caps, over the length."""
    return (mask.sum() - math.pi * width**2 / 4) / length


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 12, 20])
@pytest.mark.parametrize("angle", [0, 10, 30, 45, 60, 80, 90])
def test_straight_crack_length_and_width(width, angle):
    points = straight(angle)
    mask = rasterise_polyline((600, 600), points, width)
    (crack,) = extract_cracks(mask)
    assert crack.length_px == pytest.approx(400, rel=0.03)
    truth = drawn_width(mask, width, 400)
    assert abs(crack.width_mean_px - truth) <= max(0.5, 0.1 * truth)
    assert abs(crack.width_max_px - truth) <= max(0.75, 0.12 * truth)


@pytest.mark.parametrize(
    "angle, expected",
    [
        (0, "longitudinal"),
        (12, "longitudinal"),
        (45, "diagonal"),
        (135, "diagonal"),
        (78, "transverse"),
        (90, "transverse"),
    ],
)
def test_orientation_of_clear_cases(angle, expected):
    mask = rasterise_polyline((600, 600), straight(angle), 3)
    (crack,) = extract_cracks(mask)
    assert crack.orientation == expected


def test_curved_crack_length_follows_the_arc():
    radius, sweep = 250.0, math.pi / 2
    t = np.linspace(0, sweep, 200)
    points = np.stack([300 + radius * np.cos(t) - 150, 50 + radius * np.sin(t)], axis=1)
    mask = rasterise_polyline((400, 500), points, 4)
    (crack,) = extract_cracks(mask)
    assert crack.length_px == pytest.approx(radius * sweep, rel=0.03)
    assert crack.width_mean_px == pytest.approx(4, abs=0.5)


def test_branching_crack_is_one_crack_with_all_branches_measured():
    stem = np.array([[50.0, 200.3], [250.0, 200.3]])
    up = np.array([[250.0, 200.3], [400.0, 100.3]])
    down = np.array([[250.0, 200.3], [400.0, 300.3]])
    mask = np.zeros((400, 500), bool)
    for branch in (stem, up, down):
        mask |= rasterise_polyline(mask.shape, branch, 3)
    (crack,) = extract_cracks(mask)
    truth = 200 + 2 * math.hypot(150, 100)
    assert crack.length_px == pytest.approx(truth, rel=0.03)
    assert crack.junctions == 1
    assert len(crack.polyline_px) == 3


def test_tapering_crack_reports_max_and_mean_width():
    mask = np.zeros((200, 700), bool)
    widths = np.linspace(2, 12, 11)
    xs = np.linspace(50, 650, 12)
    for x0, x1, w in zip(xs[:-1], xs[1:], widths, strict=True):
        mask |= rasterise_polyline(mask.shape, np.array([[x0, 100.3], [x1, 100.3]]), w)
    (crack,) = extract_cracks(mask)
    assert crack.length_px == pytest.approx(600, rel=0.03)
    assert crack.width_max_px == pytest.approx(12, abs=0.75)
    assert crack.width_mean_px == pytest.approx(widths.mean(), rel=0.1)
    assert crack.orientation == "longitudinal"


def test_map_cracking_is_classified_as_network():
    mask = np.zeros((500, 500), bool)
    for k in range(4):
        mask |= rasterise_polyline(
            mask.shape, np.array([[60.0 + 120 * k, 50], [60.0 + 120 * k, 450]]), 3
        )
        mask |= rasterise_polyline(
            mask.shape, np.array([[50, 60.0 + 120 * k], [450, 60.0 + 120 * k]]), 3
        )
    (crack,) = extract_cracks(mask)
    assert crack.orientation == "network"


def test_small_gap_is_joined_into_one_crack():
    mask = rasterise_polyline((200, 600), np.array([[50, 100.3], [550, 100.3]]), 3)
    mask[:, 300:302] = False  # a 2-px break from thresholding
    cracks = extract_cracks(mask)
    assert len(cracks) == 1
    assert cracks[0].length_px == pytest.approx(500, rel=0.03)


def test_specks_and_empty_masks_give_no_cracks():
    mask = np.zeros((100, 100), bool)
    assert extract_cracks(mask) == []
    mask[10:12, 10:12] = True
    mask[50, 50:53] = True
    assert extract_cracks(mask) == []


def test_millimetres_scale_with_mm_per_px():
    mask = rasterise_polyline((300, 600), np.array([[100, 150.3], [500, 150.3]]), 4)
    (crack,) = extract_cracks(mask, mm_per_px=0.25)
    assert crack.length_mm == pytest.approx(100, rel=0.03)
    assert crack.width_max_mm == pytest.approx(1.0, abs=0.125)
    assert crack.area_mm2 == pytest.approx(mask.sum() * 0.0625)


def test_polyline_is_in_image_pixels_and_bbox_contains_it():
    mask = rasterise_polyline((300, 600), np.array([[100, 50.3], [500, 250.3]]), 3)
    (crack,) = extract_cracks(mask)
    pts = np.concatenate([np.asarray(b) for b in crack.polyline_px])
    x0, y0, x1, y1 = crack.bbox_px
    assert pts[:, 0].min() >= x0 and pts[:, 0].max() <= x1
    assert pts[:, 1].min() >= y0 and pts[:, 1].max() <= y1
    assert abs(pts[:, 0].min() - 100) < 3 and abs(pts[:, 1].max() - 250) < 3


def test_components_match_opencvs_default_labelling():
    import cv2

    from inference.geometry import _components

    rng = np.random.default_rng(8)
    for _ in range(4):
        blurred = cv2.GaussianBlur(rng.random((120, 170)).astype(np.float32), (0, 0), 2)
        mask8 = (blurred > 0.52).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask8, connectivity=8)
        n2, labels2, stats2 = _components(mask8)
        assert n2 == n and n > 3
        np.testing.assert_array_equal(labels2, labels)
        np.testing.assert_array_equal(stats2, stats)


def _reference_trace(skeleton):
    """The tracing as first written, pixel by pixel with sets: the oracle for _trace_paths."""
    from inference.geometry import _NEIGHBOURS

    ys, xs = np.nonzero(skeleton)
    pixels = set(zip(ys.tolist(), xs.tolist(), strict=True))

    def linked(p):
        out = []
        for dy, dx in _NEIGHBOURS:
            q = (p[0] + dy, p[1] + dx)
            if q not in pixels:
                continue
            if dy and dx and ((p[0] + dy, p[1]) in pixels or (p[0], p[1] + dx) in pixels):
                continue
            out.append(q)
        return out

    adjacent = {p: linked(p) for p in pixels}
    degree = {p: len(n) for p, n in adjacent.items()}
    node_of = {p: p for p, d in degree.items() if d != 2}
    for p in [p for p, d in degree.items() if d >= 3]:
        if node_of[p] != p:
            continue
        stack = [p]
        while stack:
            q = stack.pop()
            for r in adjacent[q]:
                if degree[r] >= 3 and node_of[r] == r and r != p:
                    node_of[r] = p
                    stack.append(r)
    used, paths = set(), []

    def walk(start, first):
        path, prev, cur = [start, first], start, first
        used.update({(start, first), (first, start)})
        while cur not in node_of:
            step = next((q for q in adjacent[cur] if q != prev and (cur, q) not in used), None)
            if step is None:
                break
            used.update({(cur, step), (step, cur)})
            path.append(step)
            prev, cur = cur, step
            if cur == start:
                break
        return path

    for node in node_of:
        for nb in adjacent[node]:
            if (node, nb) in used or node_of.get(nb) == node_of[node]:
                continue
            paths.append(walk(node, nb))
    seen = {p for path in paths for p in path} | set(node_of)
    for p in sorted(pixels - seen):
        if p in seen:
            continue
        nbs = adjacent[p]
        node_of[p] = p
        loop = walk(p, nbs[0]) if nbs else [p]
        seen.update(loop)
        paths.append(loop)
    return paths, node_of


def test_skeleton_tracing_gives_the_paths_of_a_pixel_by_pixel_trace():
    """Link codes worked out for all pixels at once and walks that only follow two-link
    pixels give the same paths, in the same order, as the set-based trace: on the skeletons
    of blotchy masks (junction clusters, loops, spurs, touching the crop edge) and of rings."""
    import cv2
    from skimage.morphology import skeletonize

    from inference.geometry import _trace_paths

    rng = np.random.default_rng(11)
    skeletons = []
    for _ in range(12):
        blurred = cv2.GaussianBlur(rng.random((90, 140)).astype(np.float32), (0, 0), 2.5)
        skeletons.append(skeletonize(blurred > 0.5, method="lee").astype(bool))
    ring = np.zeros((40, 40), np.uint8)
    cv2.circle(ring, (20, 20), 12, 1, 1)  # a closed loop with no node at all
    skeletons.append(ring.astype(bool))
    loops = junctions = 0
    for skeleton in skeletons:
        paths, node_of = _trace_paths(skeleton)
        assert (paths, node_of) == _reference_trace(skeleton)
        loops += sum(len(p) > 2 and p[0] == p[-1] for p in paths)
        junctions += sum(len(p) > 1 for p in paths) > 1
    assert loops >= 3 and junctions >= 6  # the masks really have loops and branches


def test_a_mask_that_is_crack_to_every_edge_is_measured_in_little_memory():
    """A region filling its crop has no background pixel, and OpenCV's distance transform
    then answers a huge sentinel: the width profiles sized from it asked for 6.3 GB on a
    480x320 image of crack everywhere (the worker was killed). The image edge bounds it."""
    import tracemalloc

    tracemalloc.start()
    try:
        cracks = extract_cracks(np.ones((24, 36), bool), mm_per_px=1.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"{peak / 1e6:.0f} MB"
    assert len(cracks) == 1 and cracks[0].width_max_mm <= 36
