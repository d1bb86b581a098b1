"""A wider decoder started from a trained narrower one: the same logits, then it learns."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from inference.config import build_network
from inference.synthetic import survey_image
from training.data import Sample
from training.loop import load_run_config, train
from training.widen import decoder_widths, widen_state

CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "unet-tiny.json"


def _trained_like(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """network's state with every float tensor random: no channel is special by accident."""
    gen = torch.Generator().manual_seed(3)
    state = {}
    for key, value in network.state_dict().items():
        if value.is_floating_point():
            value = (
                torch.rand(value.shape, generator=gen) + 0.5
                if "running_var" in key
                else (torch.randn(value.shape, generator=gen) * 0.2)
            )
        state[key] = value
    return state


@pytest.mark.parametrize("wider", [[48, 24, 8], [32, 24, 12], [32, 16, 8]])
def test_the_widened_network_computes_the_trained_ones_logits(wider):
    config, _ = load_run_config(CONFIG)
    narrow = build_network(config).eval()
    narrow.load_state_dict(_trained_like(narrow))
    wide = build_network(replace(config, decoder_channels=wider)).eval()
    wide.load_state_dict(widen_state(narrow.state_dict(), wide))
    assert decoder_widths(wide.state_dict()) == wider
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = narrow(x)
        assert wide(x).sub(expected).abs().max() <= 1e-5 * expected.abs().max()
        wide.train()
        narrow.train()
        assert torch.allclose(wide(x), narrow(x), atol=1e-5)


def test_weights_that_do_not_fit_are_refused_by_name():
    config, _ = load_run_config(CONFIG)
    narrow = build_network(config)
    with pytest.raises(ValueError, match="cannot be widened"):
        widen_state(
            narrow.state_dict(), build_network(replace(config, decoder_channels=[16, 16, 8]))
        )
    with pytest.raises(ValueError, match="do not fit"):
        widen_state(
            narrow.state_dict(),
            build_network(replace(config, encoder_depth=4, decoder_channels=[32, 16, 8, 8])),
        )


@pytest.mark.slow
def test_fine_tuning_into_a_wider_decoder_trains_its_new_channels(tmp_path):
    config, settings = load_run_config(CONFIG)
    narrow = build_network(config)
    state = _trained_like(narrow)
    samples = []
    for seed in range(4):
        rgb, mask, _ = survey_image(96, 96, n_cracks=2, seed=seed, widths_px=(2.5, 5.0))
        samples.append(Sample(f"s{seed}", rgb, mask))
    wider = replace(config, decoder_channels=[48, 24, 12])
    result = train(samples, wider, replace(settings, epochs=1), tmp_path, init_state=state)
    weight = result.state_dict["decoder.blocks.1.conv1.0.weight"]
    assert weight.shape == (24, 48 + 64, 3, 3)
    assert (
        widen_state(state, build_network(wider))["decoder.blocks.1.conv1.0.weight"][:16, 32:48]
        .abs()
        .sum()
        == 0
    )  # the old channels read the new ones with weight zero at the start...
    assert weight[:16, 32:48].abs().sum() > 0  # ...and training made them count
