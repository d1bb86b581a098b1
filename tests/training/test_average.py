"""training.average: a model soup of model versions of one network."""

import json

import pytest
import torch

from inference.config import build_network
from inference.predictor import _load_state_dict
from tests.training.test_training_loop import CONFIG
from training import average
from training.export import export_model_version
from training.loop import load_run_config


def _version(folder, seed, **changes):
    config, _ = load_run_config(CONFIG)
    for key, value in changes.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    export_model_version(build_network(config).state_dict(), config, folder)
    return folder


def test_the_average_is_the_mean_of_the_weights_with_calibration_reset(tmp_path):
    a = _version(tmp_path / "a", 1, logit_scale=0.5, logit_bias=-1.0)
    b = _version(tmp_path / "b", 2)
    assert average.main([str(a), str(b), "--out", str(tmp_path / "ab")]) == 0
    sa, sb, sab = (_load_state_dict(f) for f in (a, b, tmp_path / "ab"))
    for key, value in sab.items():
        if value.is_floating_point():
            expected = ((sa[key].float() + sb[key].float()) / 2).half().float()
            assert torch.allclose(value.float(), expected, atol=1e-3), key
        else:
            assert torch.equal(value, sa[key]), key
    config = json.loads((tmp_path / "ab" / "config.json").read_text())
    assert (config["logit_scale"], config["logit_bias"]) == (1.0, 0.0)
    assert config["provenance"]["averaged"] == [str(a), str(b)]


def test_models_of_different_networks_are_refused(tmp_path, capsys):
    config, _ = load_run_config(CONFIG)
    a = _version(tmp_path / "a", 1)
    b = _version(tmp_path / "b", 1, decoder_channels=[c * 2 for c in config.decoder_channels])
    with pytest.raises(SystemExit):
        average.main([str(a), str(b), "--out", str(tmp_path / "ab")])
    assert "not the same network" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        average.main([str(a), str(tmp_path / "missing"), "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
