"""Static int8 of a model version (inference/quantize.py) and its OpenVINO backend."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import inference
from inference.backends import cpu_info
from inference.predictor import ModelLoadError
from inference.quantize import INT8_FILE, INT8_INFO, check_int8
from inference.quantize import main as quantize_main
from inference.synthetic import survey_image

pytest.importorskip("openvino")
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "default"


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> Path:
    """A copy of the shipped default quantised on 4 drawn survey images."""
    folder = tmp_path_factory.mktemp("int8") / "default"
    folder.mkdir()
    for name in ("config.json", "weights.safetensors"):
        shutil.copy(SHIPPED / name, folder / name)
    assert quantize_main(["--model", str(folder), "--crops", "4"]) == 0
    return folder


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_the_int8_model_finds_the_drawn_cracks_the_float_model_finds(quantized):
    info = json.loads((quantized / INT8_INFO).read_text())
    assert info["crops"] == 4 and "drawn survey images" in info["calibration"]
    int8 = inference.load(quantized, backend="openvino-int8")
    f32 = inference.load(quantized, backend="openvino")
    assert int8.backend_name == "openvino-int8"
    # two image sizes: the graph is compiled for each size it meets
    for width, height, seed in ((640, 360, 11), (480, 320, 12)):
        image, truth, _ = survey_image(width, height, 2, seed=seed, widths_px=(2.5, 5.0))
        ours, theirs = int8.predict_mask(image), f32.predict_mask(image)
        assert theirs.sum() > 500  # the float model sees the cracks
        assert _iou(ours, theirs) >= 0.97  # 0.99 measured; with open sizes 0.2-0.4
        assert _iou(ours, truth) >= 0.9 * _iou(theirs, truth)


def test_int8_batches_run_in_streams_with_the_logits_of_one_request(quantized, monkeypatch):
    monkeypatch.setenv("INFERENCE_THREADS", "2")
    int8 = inference.load(quantized, backend="openvino-int8")
    images = [survey_image(320, 192, 2, seed=s)[0] for s in range(4)]
    streamed = int8.predict_proba_many(images)
    assert len(int8.backend._parts[(4, 3, 192, 320)]) == 2  # two halves, side by side
    monkeypatch.setenv("INFERENCE_THREADS", "1")
    whole = inference.load(quantized, backend="openvino-int8")
    for ours, theirs in zip(streamed, whole.predict_proba_many(images), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-3)  # 0 measured: the same bits
    assert whole.backend._parts[(4, 3, 192, 320)] is None


def test_an_int8_file_made_from_other_files_is_refused(quantized, tmp_path):
    folder = tmp_path / "changed"
    shutil.copytree(quantized, folder)
    check_int8(folder)  # the copy is current
    config = json.loads((folder / "config.json").read_text())
    config["tile_overlap"] = config["tile_overlap"] + 32  # another prediction setting
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="made from other weights or settings"):
        inference.load(folder, backend="openvino-int8")
    (folder / INT8_FILE).unlink()
    with pytest.raises(ModelLoadError, match="no int8 model.*inference.quantize"):
        inference.load(folder, backend="openvino-int8")


def test_the_shipped_default_ships_a_current_int8_model():
    """New default weights must come with their int8 file (python -m inference.quantize)."""
    assert check_int8(SHIPPED) == SHIPPED / INT8_FILE


@pytest.mark.parametrize("which", ["made here", "shipped"])
def test_int8_weights_stay_in_7_bits_so_a_cpu_without_vnni_does_not_saturate(quantized, which):
    import onnx
    from onnx import numpy_helper

    folder = quantized if which == "made here" else SHIPPED
    model = onnx.load(str(folder / INT8_FILE))
    weights = [
        numpy_helper.to_array(t)
        for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.INT8
    ]
    assert sum(w.size for w in weights) > 100_000  # the convolutions' weights, not only zero points
    # two uint8 activations times weights of at most 64 sum to 2 * 255 * 64 = 32,640 <= 32,767
    assert min(int(w.min()) for w in weights) >= -64 and max(int(w.max()) for w in weights) <= 64
    assert json.loads((folder / INT8_INFO).read_text())["weight_bits"] == 7


PROBABILITIES = """
import sys, numpy as np, inference
from inference.synthetic import survey_image
predictor = inference.load(sys.argv[1], backend="openvino-int8")
rgb = survey_image(480, 320, n_cracks=2, seed=5, widths_px=(1.5, 4.0))[0]
np.save(sys.argv[2], predictor.predict_proba(rgb))
"""


@pytest.mark.skipif(
    "avx512_vnni" not in (cpu_info("flags") or "").split(),
    reason="needs a CPU with AVX-512 VNNI to run with and without",
)
def test_int8_gives_the_same_probabilities_with_and_without_vnni(quantized, tmp_path):
    # oneDNN capped at AVX-512 without VNNI multiplies in pairs summed in 16 bits: with 8-bit
    # weights those saturated (the default lost 0.014 tunnel-lining test F1 there)
    import subprocess
    import sys

    from inference.backends import ISA_CAPS

    runs = {}
    for cap in ("", "AVX512_CORE"):
        env = {k: v for k, v in os.environ.items() if k not in ISA_CAPS}
        env["CRACKPORTAL_CACHE"] = str(tmp_path / f"cache{cap}")
        if cap:
            env.update(ONEDNN_MAX_CPU_ISA=cap, DNNL_MAX_CPU_ISA=cap)
        out = tmp_path / f"proba{cap}.npy"
        subprocess.run(
            [sys.executable, "-c", PROBABILITIES, str(quantized), str(out)],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=300,
        )
        runs[cap] = np.load(out)
    np.testing.assert_array_equal(runs[""], runs["AVX512_CORE"])


def test_quantize_refuses_a_folder_that_is_no_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        quantize_main(["--model", str(tmp_path)])
    assert exit_.value.code == 2 and "not a model folder" in capsys.readouterr().err


def test_auto_runs_a_current_int8_model_where_it_measured_clearly_faster(quantized, tmp_path):
    from inference.backends import INT8_MARGIN, pick_precision

    predictor = inference.load(quantized)  # "auto"
    timings = dict(predictor.backend.timings)
    int8_seconds = timings.pop("int8")
    float_seconds = timings[pick_precision(timings)]  # float32 or bf16, the faster by its rule
    assert int8_seconds > 0 and float_seconds > 0
    clearly_faster = int8_seconds <= INT8_MARGIN * float_seconds
    assert (predictor.backend_name == "openvino-int8") == clearly_faster
    # a stale int8 file is passed over without an error: the float model runs
    folder = tmp_path / "changed"
    shutil.copytree(quantized, folder)
    config = json.loads((folder / "config.json").read_text())
    config["tile_overlap"] = config["tile_overlap"] + 32
    (folder / "config.json").write_text(json.dumps(config))
    stale = inference.load(folder)
    assert (
        stale.backend_name in ("openvino", "openvino-bf16") and "int8" not in stale.backend.timings
    )


@pytest.mark.parametrize("int8_seconds, runs", [(0.01, "openvino-int8"), (0.029, "openvino")])
def test_a_worker_with_current_exports_and_timings_builds_only_the_runtime_it_runs(
    quantized, tmp_path, monkeypatch, int8_seconds, runs
):
    """Start-up: once a host has the ONNX export and the timings, "auto" neither builds the
    torch network (segmentation-models-pytorch's import: seconds) nor, when int8 wins,
    compiles the float graph it would drop."""
    from inference import backends, predictor

    folder = tmp_path / "model"
    shutil.copytree(quantized, folder)
    inference.load(folder, backend="openvino")  # the first worker on the host: exports ONNX
    seconds = {"f32": 0.03, "int8": int8_seconds}  # no bf16: float32 is the float choice

    def known(paths, measure):  # every figure already measured on this host, in turns
        assert [Path(p).name for p in paths] == ["model.onnx", "model-int8.onnx"]
        return dict(seconds)

    def never(*args, **kwargs):
        raise AssertionError("built at start-up though nothing needed it")

    monkeypatch.setattr(backends, "host_timings", known)
    monkeypatch.setattr(predictor, "build_network", never)
    if runs == "openvino-int8":
        monkeypatch.setattr(predictor, "OpenVinoBackend", never)
    started = inference.load(folder)
    assert started.backend_name == runs
    assert started.backend.timings == seconds
    mask = started.predict_mask(survey_image(160, 96, n_cracks=1, seed=4)[0])
    assert mask.shape == (96, 160)
    # new weights: the export is stale, so the network is built again (and refused here)
    (folder / "weights.safetensors").touch()
    with pytest.raises(AssertionError, match="built at start-up"):
        inference.load(folder)
