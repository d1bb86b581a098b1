"""The shipped default model on synthetic survey images: cracks found, and whole across tile seams."""

from pathlib import Path

import numpy as np
import pytest

import inference
from inference.geometry import extract_cracks
from inference.synthetic import concrete_texture, rasterise_polyline, survey_image

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
    # a horizontal crack crossing several tile boundaries (tiles start every `stride` px)
    x0, x1, y = stride - 300, 3 * stride + 300, stride + 0.4
    points = np.array([[x0, y], [x1, y]])
    crack = rasterise_polyline((size, size), points, 4.0)
    image[crack] = (image[crack] * 0.45).astype(np.uint8)
    mask = predictor.predict_mask(image)
    cracks = [c for c in extract_cracks(mask) if c.length_px > 50]
    assert len(cracks) == 1
    assert cracks[0].length_px == pytest.approx(x1 - x0, rel=0.03)
    assert cracks[0].orientation == "longitudinal"
