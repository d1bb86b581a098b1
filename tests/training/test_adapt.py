"""Issue 18: the portal's adaptation (training/adapt.py) fine-tunes the model it is given."""

from dataclasses import replace
from pathlib import Path

import pytest

from inference.predictor import _load_state_dict
from tests.training.datasets import crop_figures, write_dataset
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


def _train_settings(tmp_path, monkeypatch, *adapt_settings):
    """The TrainSettings each adaptation would train with (training stopped before a step)."""
    import training.adapt as adapt_module

    seen = []

    def train(samples, config, settings, workdir, **kwargs):
        seen.append(settings)
        raise RuntimeError("stop here")

    monkeypatch.setattr(adapt_module, "train", train)
    surface = write_dataset(tmp_path / "surf", 10, {"train": 2})
    samples, _ = load_train_split(surface)
    for settings in adapt_settings:
        with pytest.raises(RuntimeError, match="stop here"):
            adapt({}, samples, [], tmp_path / "run", settings)
    return seen


def test_adapting_peaks_at_its_own_learning_rate_or_the_recipes(tmp_path, monkeypatch):
    seen = _train_settings(tmp_path, monkeypatch, AdaptSettings(), AdaptSettings(lr=None))
    recipe_lr = load_run_config(RECIPE)[1].lr
    # 6e-4 beat the recipe's 3e-4 on both surfaces' left-out train images (README)
    assert [s.lr for s in seen] == [6e-4, recipe_lr] and recipe_lr != 6e-4


def test_adapting_chooses_its_checkpoint_from_the_second_half_of_its_budget(tmp_path, monkeypatch):
    """Four validation images of the new surface once chose epoch 12 of 38 (87.1 % of the
    all-data model against 91.1 % and 93.0 % in the runs beside it): by default the checkpoint
    comes from epochs ending after half the time (TrainSettings.select_from; the loop's own
    test checks the rule), and a setting of 0 lets any epoch be chosen."""
    seen = _train_settings(tmp_path, monkeypatch, AdaptSettings(), AdaptSettings(select_from=0.0))
    assert [s.select_from for s in seen] == [0.5, 0.0]


def test_adapting_keeps_the_recipes_cldice_weight_unless_given_one(tmp_path, monkeypatch):
    seen = _train_settings(
        tmp_path, monkeypatch, AdaptSettings(), AdaptSettings(skeleton_weight=0.0)
    )
    recipe_weight = load_run_config(RECIPE)[1].skeleton_weight
    assert [s.skeleton_weight for s in seen] == [recipe_weight, 0.0] and recipe_weight > 0


def test_the_new_surfaces_crops_keep_its_scale_and_still_get_drawn_lookalikes(
    tmp_path, monkeypatch
):
    """Its own images are already at its survey's scale and light: the plain augmentation
    (scale 0.85-1.25, mild photometry) for them, the survey one for the base; drawn
    look-alikes on both (new_lookalikes), or on the base alone with new_lookalikes off."""
    import training.adapt as adapt_module
    from training.adapt import NEW

    built = []

    def train(samples, config, settings, workdir, **kwargs):
        built.append((config, settings))
        raise RuntimeError("stop here")

    monkeypatch.setattr(adapt_module, "train", train)
    samples, _ = load_train_split(write_dataset(tmp_path / "surf", 10, {"train": 2}))
    for settings in (AdaptSettings(), AdaptSettings(new_lookalikes=False)):
        with pytest.raises(RuntimeError, match="stop here"):
            adapt({}, samples, [], tmp_path / "run", settings)
    found = {}
    for keep, (config, settings) in zip((True, False), built, strict=True):
        assert settings.survey_augment and settings.hard_negatives > 0
        assert settings.plain_sources == (NEW,)
        settings = replace(settings, hard_negatives=1.0, uneven_light=0, frames=0)
        for source in (NEW, "base"):
            found[keep, source] = crop_figures(monkeypatch, config, settings, source, 150)
    lookalikes = {key: drawn for key, (_, drawn) in found.items()}
    assert lookalikes == {
        (True, NEW): 150,
        (True, "base"): 150,
        (False, NEW): 0,
        (False, "base"): 150,
    }
    # at most 1.25x for its own crops (measured 12.0); the survey scale reaches 2x (17.1)
    for keep in (True, False):
        assert found[keep, NEW][0] <= 8 * 1.25 + 2.5 and found[keep, "base"][0] >= 8 * 1.5 + 3


def test_adapting_cuts_crops_of_the_recipes_size_or_its_own(tmp_path, monkeypatch):
    seen = _train_settings(
        tmp_path, monkeypatch, AdaptSettings(crop_size=None), AdaptSettings(crop_size=224)
    )
    assert [s.crop_size for s in seen] == [load_run_config(RECIPE)[1].crop_size, 224]
    with pytest.raises(ValueError, match="crop_size 250: a multiple of 32"):
        _train_settings(tmp_path / "odd", monkeypatch, AdaptSettings(crop_size=250))


def test_adapting_steps_on_batches_of_the_recipes_size_or_its_own(tmp_path, monkeypatch):
    seen = _train_settings(
        tmp_path,
        monkeypatch,
        AdaptSettings(),
        AdaptSettings(batch_size=None),
        AdaptSettings(batch_size=2),
    )
    assert [s.batch_size for s in seen] == [4, load_run_config(RECIPE)[1].batch_size, 2]
    with pytest.raises(ValueError, match="batch_size 1: batch norm needs 2 or more"):
        _train_settings(tmp_path / "one", monkeypatch, AdaptSettings(batch_size=1))
