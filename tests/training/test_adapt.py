"""Issue 18: the portal's adaptation (training/adapt.py) fine-tunes the model it is given."""

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
