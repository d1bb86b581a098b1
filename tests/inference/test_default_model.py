"""The shipped default model on synthetic survey images: cracks found, and whole across tile seams."""

from pathlib import Path

import numpy as np
import pytest

import inference
from inference.geometry import extract_cracks
from inference.synthetic import (
    concrete_texture,
    rasterise_polyline,
    survey_image,
    wandering_path,
)
from training.lookalikes import KINDS, draw_lookalike

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"


@pytest.fixture(scope="module")
def predictor():
    return inference.load(DEFAULT_MODEL)


def test_default_model_finds_drawn_cracks(predictor):
    rgb, truth, _ = survey_image(640, 360, n_cracks=2, seed=5, widths_px=(2.5, 5.0))
    mask = predictor.predict_mask(rgb)
    found = (mask & truth).sum() / truth.sum()
    false = (mask & ~truth).sum() / max(1, mask.sum())
    assert found > 0.6 and false < 0.5


@pytest.mark.slow
def test_crack_across_tile_seams_of_a_6000px_image_is_one_crack_of_the_right_length(predictor):
    size = 6000
    rng = np.random.default_rng(0)
    image = concrete_texture(size, size, rng)
    tile = predictor.config.tile_size
    stride = tile - predictor.config.tile_overlap
    # a horizontal crack crossing several tile boundaries (tiles start every `stride` px);
    # it wanders like a crack: a ruler-straight line of even width is a joint, not a crack
    x0, x1, y = stride - 300, 3 * stride + 300, stride + 0.4
    points = wandering_path((x0, y), (x1, y), np.random.default_rng(1), jitter=0.05, steps=60)
    crack = rasterise_polyline((size, size), points, 4.0)
    image[crack] = (image[crack] * 0.45).astype(np.uint8)
    mask = predictor.predict_mask(image)
    cracks = [c for c in extract_cracks(mask) if c.length_px > 50]
    assert len(cracks) == 1
    drawn_length = np.linalg.norm(np.diff(points, axis=0), axis=1).sum()
    assert cracks[0].length_px == pytest.approx(drawn_length, rel=0.03)
    assert cracks[0].orientation == "longitudinal"


@pytest.mark.parametrize("kind", ["joint", "grid", "bolt_hole", "cable", "stain"])
def test_default_model_leaves_a_drawn_lining_lookalike_alone_and_still_finds_the_cracks(
    predictor, kind
):
    rgb, truth, _ = survey_image(640, 360, n_cracks=2, seed=5, widths_px=(2.5, 5.0))
    image, region = draw_lookalike(rgb, truth, np.random.default_rng([7, KINDS.index(kind)]), kind)
    mask = predictor.predict_mask(image)
    assert (mask & region).sum() / region.sum() < 0.02
    assert (mask & truth).sum() / truth.sum() > 0.9


def test_a_drawn_1px_crack_through_the_model_is_measured_under_1_5px(predictor):
    rng = np.random.default_rng(11)
    image = concrete_texture(420, 420, rng).astype(np.float32)
    line = np.array([[40.0, 60.3], [380.0, 350.6]])
    image[rasterise_polyline((420, 420), line, 1.0)] *= 0.35
    image = image.clip(0, 255).astype(np.uint8)
    mask, proba = predictor.predict_mask_and_proba(image)
    assert (mask == predictor.predict_mask(image)).all()
    cracks = extract_cracks(mask, proba=proba, threshold=predictor.config.threshold, image=image)
    assert cracks and cracks[0].length_px > 400
    assert max(c.width_max_px for c in cracks) <= 1.5
    # the network alone widens it to about three pixels
    alone = extract_cracks(mask, proba=proba, threshold=predictor.config.threshold)
    assert max(c.width_max_px for c in alone) > 2.0
