"""Widths across the crack, junctions left out, 45° lines whole, pieces joined (drawn cracks)."""

import math

import numpy as np
import pytest

from inference.geometry import GeometrySettings, extract_cracks
from inference.geometry_bench import draw, drawn_population, junction_errors
from inference.synthetic import concrete_texture, rasterise_polyline


@pytest.mark.parametrize("shape", ["Y", "X"])
@pytest.mark.parametrize("width", [2.0, 4.0, 8.0, 12.0])
def test_junctions_do_not_widen_the_crack(shape, width):
    errors = []
    for seed in range(4):
        drawn = draw(shape, width, np.random.default_rng(seed))
        (crack,) = extract_cracks(drawn.mask)
        errors.append(crack.width_max_px - width)
    assert np.median(np.abs(errors)) <= 0.35, errors
    assert np.max(np.abs(errors)) <= 0.75, errors


@pytest.mark.parametrize("angle", [45, 135])
@pytest.mark.parametrize("offset", [0.0, 0.13, 0.25, 0.37, 0.5, 0.71])
def test_a_3px_crack_at_exactly_45_degrees_is_whole(angle, offset):
    u = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    c = np.array([210.0 + offset, 210.0 - offset / 2])
    mask = rasterise_polyline((420, 420), np.stack([c - 150 * u, c + 150 * u]), 3.0)
    (crack,) = extract_cracks(mask)
    assert crack.length_px == pytest.approx(300, rel=0.03)
    # at exactly 45° the pixel grid falls the same way all along: compare with what was drawn
    drawn = (mask.sum() - math.pi * 9 / 4) / 300
    assert crack.width_max_px == pytest.approx(drawn, abs=0.35)
    assert crack.junctions == 0 and crack.orientation == "diagonal"


def test_tapering_crack_max_is_the_wide_end_and_mean_is_less():
    drawn = draw("tapering", 9.0, np.random.default_rng(3))
    (crack,) = extract_cracks(drawn.mask)
    assert crack.width_max_px == pytest.approx(9.0, rel=0.12)
    assert crack.width_mean_px < 0.8 * crack.width_max_px


def test_edges_are_found_on_the_probability_map_at_sub_pixel_precision():
    # a 4.6-px band whose probability falls off smoothly: the mask alone says 4 or 5 px
    yy, xx = np.mgrid[0:200, 0:300].astype(np.float64)
    distance = np.abs(yy - 100.3)
    proba = np.clip(0.5 + (2.3 - distance) / 2.0, 0, 1)
    mask = proba >= 0.5
    (crack,) = extract_cracks(mask, proba=proba, threshold=0.5)
    assert crack.width_max_px == pytest.approx(4.6, abs=0.15)
    assert crack.width_mean_px == pytest.approx(4.6, abs=0.15)


def test_a_hairline_the_network_widens_is_measured_on_the_photo():
    rng = np.random.default_rng(0)
    image = concrete_texture(200, 400, rng).astype(np.float32)
    line = np.array([[20.0, 80.4], [380.0, 120.2]])
    thin = rasterise_polyline((200, 400), line, 1.0)
    image[thin] *= 0.35
    image = image.clip(0, 255).astype(np.uint8)
    # what the network does with a hairline: a confident band three pixels wide
    proba = rasterise_polyline((200, 400), line, 3.2).astype(np.float32)
    (crack,) = extract_cracks(proba >= 0.5, proba=proba, threshold=0.5, image=image)
    assert crack.width_max_px <= 1.5
    (unrefined,) = extract_cracks(proba >= 0.5, proba=proba, threshold=0.5)
    assert unrefined.width_max_px >= 2.8


def test_a_faint_line_keeps_its_edge_width():
    rng = np.random.default_rng(1)
    image = concrete_texture(200, 400, rng)  # nothing dark where the "crack" is
    line = np.array([[20.0, 80.4], [380.0, 120.2]])
    proba = rasterise_polyline((200, 400), line, 3.2).astype(np.float32)
    (crack,) = extract_cracks(proba >= 0.5, proba=proba, threshold=0.5, image=image)
    assert crack.width_max_px >= 2.8


def test_pieces_of_one_crack_across_a_gap_are_joined_along_its_direction():
    mask = np.zeros((300, 900), bool)
    mask |= rasterise_polyline(mask.shape, np.array([[50.0, 150.3], [400.0, 170.3]]), 3)
    mask |= rasterise_polyline(mask.shape, np.array([[490.0, 175.4], [850.0, 195.3]]), 3)
    (crack,) = extract_cracks(mask)
    assert crack.pieces == 2
    assert crack.length_px == pytest.approx(math.hypot(800, 45), rel=0.03)
    assert crack.width_max_px == pytest.approx(3.0, abs=0.5)
    off = extract_cracks(mask, settings=GeometrySettings(join_gap_px=0))
    assert len(off) == 2


def test_parallel_and_crossing_neighbours_are_not_joined():
    mask = np.zeros((400, 900), bool)
    mask |= rasterise_polyline(mask.shape, np.array([[50.0, 150.3], [400.0, 150.3]]), 3)
    # side by side, 40 px apart, overlapping in chainage: two cracks
    mask |= rasterise_polyline(mask.shape, np.array([[300.0, 190.3], [700.0, 190.3]]), 3)
    # ends near the first one's tip but runs across it
    mask |= rasterise_polyline(mask.shape, np.array([[460.0, 200.0], [460.0, 390.0]]), 3)
    assert len(extract_cracks(mask)) == 3


def test_the_drawn_population_meets_the_severity_and_accuracy_targets():
    figures = drawn_population(120, seed=7)
    assert figures["max_width_accuracy"] >= 0.90
    assert figures["wrong_class_0.5"] <= 0.12 and figures["wrong_class_0.2"] <= 0.12
    junctions = junction_errors(40, seed=7)
    assert junctions["junction_median_abs_px"] <= 0.25
    assert junctions["junction_p90_abs_px"] <= 0.5


def test_profiles_sampled_near_the_centre_first_give_the_full_profiles_widths(monkeypatch):
    """The edge search samples 4 px of each profile first and the rest only where no edge
    was found: the widths are those of sampling every profile over its whole reach, on a
    field with wide blobs, thin lines and profiles that never leave the crack."""
    import cv2

    from inference import widths

    rng = np.random.default_rng(5)
    field = cv2.GaussianBlur(rng.random((160, 200)).astype(np.float32), (0, 0), 3)
    field = (field - field.min()) / (field.max() - field.min())
    centres = rng.uniform([10, 10], [150, 190], (400, 2))
    angles = rng.uniform(0, np.pi, 400)
    normals = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    args = (field, centres, normals, 0.5, 18.0, 0.25, widths._TURNS)
    near_first = widths._edge_widths(*args)
    monkeypatch.setattr(widths, "_NEAR_SAMPLES", 10_000)
    full = widths._edge_widths(*args)
    np.testing.assert_array_equal(near_first, full)
    found = ~np.isnan(full)
    assert 50 < found.sum() < 400 and (full[found] > 8.0).sum() > 10  # far edges were needed


def test_bilinear_samples_as_scipy_map_coordinates_of_order_1():
    """One value per point whatever the points' shape (maps of several rows and a partial
    last row), clamped at the edge, or a constant outside with outside=..."""
    from scipy.ndimage import map_coordinates

    from inference.widths import bilinear

    rng = np.random.default_rng(3)
    field = rng.random((50, 70)).astype(np.float32) * 255
    for shape in [(7,), (3, 301), (2, 5, 113)]:
        ys = rng.uniform(-3, 52, shape)
        xs = rng.uniform(-3, 72, shape)
        expected = map_coordinates(field, [ys, xs], order=1, mode="nearest")
        got = bilinear(field, ys, xs)
        assert got.shape == shape
        np.testing.assert_allclose(got, expected, atol=0.02)
        inside = (ys >= 0) & (ys <= 49) & (xs >= 0) & (xs <= 69)
        outside = bilinear(field, ys, xs, outside=-1.0)
        np.testing.assert_allclose(outside[inside], expected[inside], atol=0.02)
        assert (outside[~inside] == -1.0).all() and (~inside).any()
