"""Issue 18: the portal's adaptation (training/adapt.py) fine-tunes the model it is given."""

from dataclasses import replace
from pathlib import Path

import pytest

from inference.predictor import _load_state_dict
from tests.training.datasets import write_dataset
from training.adapt import RECIPE, AdaptSettings, adapt
from training.data import load_train_split
from training.loop import load_run_config
from training.widen import decoder_widths

ROOT = Path(__file__).resolve().parents[2]


def test_adapting_keeps_the_start_models_size_whatever_the_recipes_decoder(tmp_path):
    # the shipped zero-shot model is 64-32-16-8; the recipe (the default's) is wider
    start = _load_state_dict(ROOT / "models" / "zero-shot")
    recipe_widths = list(load_run_config(RECIPE)[0].decoder_channels)
    assert decoder_widths(start) == [64, 32, 16, 8] != recipe_widths
    surface = write_dataset(tmp_path / "surf", 10, {"train": 5})
    samples, _ = load_train_split(surface)
    settings = AdaptSettings(minutes=0.02, num_workers=0)
    config, result = adapt(start, samples, [], tmp_path / "run", settings)
    assert list(config.decoder_channels) == [64, 32, 16, 8]
    assert decoder_widths(result.state_dict) == [64, 32, 16, 8]
    assert any(
        not (result.state_dict[k] == v).all() for k, v in start.items() if v.is_floating_point()
    ), "one step of fine-tuning changed nothing"


def test_adapting_peaks_at_its_own_learning_rate_or_the_recipes(tmp_path, monkeypatch):
    import training.adapt as adapt_module

    seen = []

    def train(samples, config, settings, workdir, **kwargs):
        seen.append(settings.lr)
        raise RuntimeError("stop here")

    monkeypatch.setattr(adapt_module, "train", train)
    surface = write_dataset(tmp_path / "surf", 10, {"train": 2})
    samples, _ = load_train_split(surface)
    recipe_lr = load_run_config(RECIPE)[1].lr
    for settings in (AdaptSettings(), AdaptSettings(lr=None)):
        with pytest.raises(RuntimeError, match="stop here"):
            adapt({}, samples, [], tmp_path / "run", settings)
    # 6e-4 beat the recipe's 3e-4 on both surfaces' left-out train images (README)
    assert seen == [6e-4, recipe_lr] and recipe_lr != 6e-4


def test_the_new_surfaces_crops_keep_its_scale_and_get_no_drawn_lookalikes(monkeypatch):
    """Its own images are already at its survey's scale and light: the plain augmentation
    (scale 0.85-1.25, mild photometry, no look-alikes) for them, the survey one for the base."""
    import cv2
    import numpy as np

    import training.loop as loop
    from training.adapt import NEW
    from training.data import Sample

    drawn = []
    real = loop.draw_lookalikes
    monkeypatch.setattr(loop, "draw_lookalikes", lambda *a: drawn.append(1) or real(*a))
    image = np.full((400, 400, 3), 150, np.uint8)
    mask = np.zeros((400, 400), bool)
    mask[160:240, 196:204] = True  # a crack 8 px wide, far from the borders' reflections
    image[mask] = 90
    config, settings = load_run_config(RECIPE)
    assert settings.survey_augment and settings.hard_negatives > 0
    settings = replace(settings, hard_negatives=1.0, uneven_light=0, frames=0)
    settings = replace(settings, plain_sources=(NEW,))
    widest, lookalikes = {}, {}
    for source in (NEW, "base"):
        sample = Sample("a", image, mask, source=source)
        dataset = loop._CropDataset([sample], config, 96, 150, settings)
        np.random.seed(0)
        dataset.transform.set_random_seed(0)
        dataset.plain.set_random_seed(0)
        drawn.clear()
        widths = []
        for i in range(len(dataset)):
            y = np.pad(dataset[i][1][0].numpy().astype(np.uint8), 1)  # the crop's edge is not crack
            if y.any():  # twice its deepest point from the background: width + 1 to 2 px
                depth = cv2.distanceTransform(y, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).max()
                widths.append(2 * depth)
        widest[source], lookalikes[source] = max(widths), len(drawn)
    assert lookalikes == {NEW: 0, "base": 150}
    # at most 1.25x for its own crops (measured 12.0); the survey scale reaches 2x (17.1)
    assert widest[NEW] <= 8 * 1.25 + 2.5 and widest["base"] >= 8 * 1.5 + 3
