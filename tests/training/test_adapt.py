"""Issue 18: the portal's adaptation (training/adapt.py) fine-tunes the model it is given."""

from pathlib import Path

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
