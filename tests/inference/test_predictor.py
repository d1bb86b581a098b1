"""Model-version folders, loading without network, and tiled prediction of any size."""

import json
import os

import numpy as np
import pytest
import torch

import inference
from inference.config import ModelConfig, build_network
from inference.tiling import blend_window, tile_grid
from training.export import export_model_version


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A small untrained Unet exported as a model version (random but deterministic weights)."""
    torch.manual_seed(0)
    config = ModelConfig(
        name="tiny",
        architecture="Unet",
        encoder="resnet18",
        encoder_depth=3,
        decoder_channels=[32, 16, 8],
        tile_size=128,
        tile_overlap=32,
    )
    network = build_network(config)
    return export_model_version(network.state_dict(), config, tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("h, w", [(100, 100), (300, 500), (129, 1000), (1000, 129)])
def test_tiles_cover_the_image_with_overlap(h, w):
    tiles = tile_grid(h, w, 128, 32)
    covered = np.zeros((h, w), int)
    for t in tiles:
        assert t.y1 - t.y0 <= 128 and t.x1 - t.x0 <= 128
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert covered.min() >= 1


def test_blend_window_is_positive_and_peaks_inside():
    win = blend_window(128, 128, 32)
    assert win.min() > 0 and win[64, 64] == 1.0 and win[0, 0] < win[16, 16]


def test_export_writes_config_weights_and_card(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "weights.safetensors", "MODEL_CARD.md"} <= names
    assert json.loads((tiny_model_dir / "config.json").read_text())["architecture"] == "Unet"


def test_load_predicts_probabilities_of_the_image_size(tiny_model_dir):
    predictor = inference.load(tiny_model_dir)
    image = np.random.default_rng(0).integers(0, 255, (77, 91, 3), dtype=np.uint8)
    prob = predictor.predict_proba(image)
    assert prob.shape == (77, 91) and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    assert predictor.predict_mask(image).dtype == bool


def test_tiled_prediction_matches_whole_image_prediction_away_from_seams(tiny_model_dir):
    predictor = inference.load(tiny_model_dir)
    image = np.random.default_rng(1).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    whole = predictor.predict_proba(image)  # fits one tile
    predictor.config.tile_size, predictor.config.tile_overlap = 64, 32
    tiled = predictor.predict_proba(image)
    # an untrained net still sees local context only: tiles agree in the middle
    assert np.abs(whole - tiled)[24:72, 24:72].mean() < 0.05


def test_batching_several_images_gives_the_same_result_as_one_by_one(tiny_model_dir):
    predictor = inference.load(tiny_model_dir)
    rng = np.random.default_rng(2)
    images = [
        rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for h, w in [(200, 300), (128, 128), (50, 400)]
    ]
    together = predictor.predict_proba_many(images)
    for image, prob in zip(images, together, strict=True):
        np.testing.assert_allclose(prob, predictor.predict_proba(image), atol=1e-5)


def test_grey_and_rgba_images_are_accepted(tiny_model_dir):
    predictor = inference.load(tiny_model_dir)
    assert predictor.predict_proba(np.zeros((40, 40), np.uint8)).shape == (40, 40)
    assert predictor.predict_proba(np.zeros((40, 40, 4), np.uint8)).shape == (40, 40)


def test_missing_or_broken_model_folders_fail_clearly(tmp_path, tiny_model_dir):
    with pytest.raises(inference.ModelLoadError, match="not a model version"):
        inference.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(inference.ModelLoadError, match="not valid JSON"):
        inference.load(tmp_path)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["encoder_depth"] = 4
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(inference.ModelLoadError, match="does not describe a network"):
        inference.load(tmp_path)
    config["encoder_depth"], config["decoder_channels"] = 3, [64, 16, 8]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(inference.ModelLoadError, match="no weights file"):
        inference.load(tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(
        (tiny_model_dir / "weights.safetensors").read_bytes()
    )
    with pytest.raises(inference.ModelLoadError, match="do not match"):
        inference.load(tmp_path)


def test_onnx_and_torch_backends_give_the_same_probabilities(tiny_model_dir):
    image = np.random.default_rng(3).integers(0, 255, (150, 260, 3), dtype=np.uint8)
    eager = inference.load(tiny_model_dir, backend="torch")
    onnx = inference.load(tiny_model_dir, backend="onnx")
    assert (eager.backend_name, onnx.backend_name) == ("torch", "onnx")
    np.testing.assert_allclose(onnx.predict_proba(image), eager.predict_proba(image), atol=1e-4)
    assert (tiny_model_dir / "model.onnx").exists()


def test_openvino_float32_gives_onnx_runtime_probabilities(tiny_model_dir):
    image = np.random.default_rng(5).integers(0, 255, (150, 260, 3), dtype=np.uint8)
    onnx = inference.load(tiny_model_dir, backend="onnx")
    openvino = inference.load(tiny_model_dir, backend="openvino")
    assert openvino.backend_name == "openvino" and openvino.backend.precision == "f32"
    np.testing.assert_allclose(openvino.predict_proba(image), onnx.predict_proba(image), atol=1e-4)
    # two calls in a row: the request's output buffer is copied, not shared
    first = openvino.backend(np.zeros((1, 3, 64, 64), np.float32))
    openvino.backend(np.ones((1, 3, 64, 64), np.float32))
    np.testing.assert_array_equal(first, openvino.backend(np.zeros((1, 3, 64, 64), np.float32)))


def test_bf16_is_chosen_only_where_it_measured_clearly_faster():
    from inference.backends import pick_precision

    # a 2-core Xeon with AVX-512 BF16 (2026-11-27): bf16 took 1.4x float32's time
    assert pick_precision({"f32": 0.0100, "bf16": 0.0140}) == "f32"
    assert pick_precision({"f32": 0.0100, "bf16": 0.0095}) == "f32"  # within the margin
    assert pick_precision({"f32": 0.0100, "bf16": 0.0050}) == "bf16"  # an AMD EPYC's figures
    assert pick_precision({"f32": 0.0100}) == "f32"  # no native bf16: not measured


def test_precisions_are_timed_in_turns_so_a_burst_of_other_work_falls_on_each_alike(
    monkeypatch,
):
    """A 2-core AVX2 EPYC (2026-11-29): timed one after the other, while a package install
    shared the cores, int8 measured 0.84 of float32's time where it takes 0.55, and "auto"
    ran float32 at half the speed, for good (the figures are kept per host)."""
    import time

    from inference import backends

    clock = {"now": 0.0}
    busy_until = 1.0  # other work shares the cores for the first second

    def taking(seconds):
        def run(probe):
            clock["now"] += seconds * (3 if clock["now"] < busy_until else 1)

        return run

    monkeypatch.setattr(time, "perf_counter", lambda: clock["now"])
    quiet = {"int8": 0.0143, "f32": 0.026}
    probe = backends.probe_input()
    one_after_the_other = {k: backends.best_seconds(taking(s), probe) for k, s in quiet.items()}
    assert one_after_the_other["int8"] > 0.75 * one_after_the_other["f32"]  # the wrong choice
    clock["now"] = 0.0
    in_turns = backends.best_seconds_each({k: taking(s) for k, s in quiet.items()}, probe)
    assert in_turns == pytest.approx(quiet)


def test_auto_backend_on_cpu_is_openvino_at_the_precision_it_measured_faster(tiny_model_dir):
    predictor = inference.load(tiny_model_dir)
    backend = predictor.backend
    assert predictor.backend_name == (
        "openvino-bf16" if backend.precision == "bf16" else "openvino"
    )
    # float32 is always timed, bf16 where the CPU has it; the faster one by the rule runs
    assert backend.timings["f32"] > 0
    assert backend.precision == (
        "bf16" if backend.timings.get("bf16", 1e9) <= 0.9 * backend.timings["f32"] else "f32"
    )
    # OpenVINO pins its threads to the first cores by default: two worker processes with
    # INFERENCE_THREADS=1 then shared one core (measured: 2 processes ran 1.1-1.4x one)
    assert predictor.backend.compiled.get_property("ENABLE_CPU_PINNING") is False


def test_auto_times_a_model_once_per_host_so_every_worker_runs_the_same_precision(
    tiny_model_dir, tmp_path, monkeypatch
):
    from inference import backends

    monkeypatch.setenv("CRACKPORTAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(backends, "_MEASURED", {})  # a fresh process
    first = inference.load(tiny_model_dir)
    assert (tmp_path / "cache" / backends.TIMINGS_FILE).is_file()

    def measured_again(*args, **kwargs):
        raise AssertionError("a second process measured the same model again")

    monkeypatch.setattr(backends, "_MEASURED", {})  # another worker process on this host
    monkeypatch.setattr(backends, "best_seconds_each", measured_again)
    second = inference.load(tiny_model_dir)
    assert second.backend.timings == first.backend.timings
    assert second.backend_name == first.backend_name
    # new weights (a new ONNX export) are measured afresh
    monkeypatch.setattr(backends, "best_seconds_each", lambda runs, probe: dict.fromkeys(runs, 0.5))
    onnx = backends.onnx_cache_path(tiny_model_dir)
    os.utime(onnx, (onnx.stat().st_atime, onnx.stat().st_mtime + 5))
    third = inference.load(tiny_model_dir)
    assert third.backend.timings["f32"] == 0.5 and third.backend_name == "openvino"
    # a cap on the instruction set (how a CPU without VNNI or AVX-512 is imitated) is another
    # CPU: its own figures, not the uncapped ones
    monkeypatch.setattr(backends, "_MEASURED", {})
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setattr(
        backends, "best_seconds_each", lambda runs, probe: dict.fromkeys(runs, 0.25)
    )
    fourth = inference.load(tiny_model_dir)
    assert fourth.backend.timings["f32"] == 0.25
    # a CPU of the same name with other instructions (a 2-core "AMD EPYC" came with AVX-512
    # BF16 in one session, AVX2 only in another) is another CPU too
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(backends, "_MEASURED", {})
    real = backends.cpu_info
    monkeypatch.setattr(
        backends, "cpu_info", lambda field: "fpu sse2 avx2" if field == "flags" else real(field)
    )
    monkeypatch.setattr(
        backends, "best_seconds_each", lambda runs, probe: dict.fromkeys(runs, 0.125)
    )
    fifth = inference.load(tiny_model_dir)
    assert fifth.backend.timings["f32"] == 0.125


@pytest.mark.parametrize("precision", ["openvino", "openvino-bf16"])
def test_openvino_runs_one_size_on_one_graph_so_an_input_gives_the_same_logits_every_time(
    tiny_model_dir, precision, monkeypatch
):
    from inference.backends import STATIC_SHAPES

    monkeypatch.setenv("INFERENCE_THREADS", "1")  # every batch runs whole, on one request
    backend = inference.load(tiny_model_dir, backend=precision).backend
    batch = np.random.default_rng(3).standard_normal((2, 3, 96, 160)).astype(np.float32)
    first = backend(batch)  # compiled for (2, 3, 96, 160) at first sight
    assert backend.static_shapes == [(2, 3, 96, 160)]
    # in bf16 the graph with open sizes rounds differently: a second graph for the same size
    # made the second mask of one image differ from its first (a few pixels)
    np.testing.assert_array_equal(backend(batch), first)
    opened = backend.compiled.create_infer_request().infer({0: batch})[0][:, 0]
    np.testing.assert_allclose(opened, first, atol=1e-4 if backend.precision == "f32" else 0.1)
    for side in range(STATIC_SHAPES + 2):  # past the bound, sizes run on the open model
        other = np.random.default_rng(side).standard_normal((1, 3, 64, 64 + 32 * side))
        once = backend(other.astype(np.float32))
        assert once.shape == (1, 64, 64 + 32 * side)
        np.testing.assert_array_equal(backend(other.astype(np.float32)), once)
    assert len(backend.static_shapes) == STATIC_SHAPES


def test_a_batch_is_cut_into_one_part_per_thread():
    from inference.backends import stream_parts

    assert stream_parts(4, 2) == [2, 2]
    assert stream_parts(3, 2) == [2, 1]
    assert stream_parts(5, 4) == [2, 2, 1]
    assert stream_parts(2, 16) == [1, 1]
    assert stream_parts(1, 2) == [1]  # a single input keeps every thread
    assert stream_parts(4, 1) == [4]


def test_a_batch_runs_as_parallel_streams_with_the_logits_of_one_request(
    tiny_model_dir, monkeypatch
):
    from inference.backends import STATIC_SHAPES

    monkeypatch.setenv("INFERENCE_THREADS", "2")
    backend = inference.load(tiny_model_dir, backend="openvino").backend
    batch = np.random.default_rng(5).standard_normal((4, 3, 96, 160)).astype(np.float32)
    streamed = backend(batch)
    parts = backend._parts[(4, 3, 96, 160)]
    assert [tuple(graph.input(0).shape) for graph in parts] == [(2, 3, 96, 160)] * 2
    assert {graph.get_property("NUM_STREAMS") for graph in parts} == {2}
    assert backend.static_shapes == []  # no whole-batch graph was compiled for it
    np.testing.assert_array_equal(backend(batch), streamed)  # the same every time
    whole = backend.compiled.create_infer_request().infer({0: batch})[0][:, 0]
    np.testing.assert_allclose(streamed, whole, atol=1e-4)
    # each input's logits are its own: the parts are not mixed up or overwritten
    for i in range(4):
        np.testing.assert_allclose(streamed[i], backend(batch[i : i + 1])[0], atol=1e-4)
    assert backend._parts[(1, 3, 96, 160)] is None  # a single input runs whole
    # an odd batch: parts of 2 and 1, in order
    np.testing.assert_allclose(backend(batch[:3]), streamed[:3], atol=1e-4)
    # past STATIC_SHAPES part graphs, further batch sizes run whole
    for side in range(STATIC_SHAPES):
        other = np.random.default_rng(side).standard_normal((2, 3, 64, 64 + 32 * side))
        assert backend(other.astype(np.float32)).shape == (2, 64, 64 + 32 * side)
    assert len(backend._part_graphs) == STATIC_SHAPES
    assert sum(plan is None for plan in backend._parts.values()) > 1
    monkeypatch.setenv("INFERENCE_THREADS", "1")  # one thread: nothing to share out
    single = inference.load(tiny_model_dir, backend="openvino").backend
    np.testing.assert_allclose(single(batch), streamed, atol=1e-4)
    assert single._parts[(4, 3, 96, 160)] is None


def test_an_unknown_backend_is_refused_with_the_choices(tiny_model_dir):
    with pytest.raises(ValueError, match="openvino-bf16"):
        inference.load(tiny_model_dir, backend="tensorrt")


def test_flip_averaging_keeps_probabilities_in_range(tiny_model_dir):
    predictor = inference.load(tiny_model_dir)
    predictor.flip_tta = True
    prob = predictor.predict_proba(
        np.random.default_rng(4).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    )
    assert prob.shape == (64, 96) and 0 <= prob.min() and prob.max() <= 1


@pytest.mark.parametrize("h, w", [(96, 96), (300, 200), (257, 400)])
def test_band_by_band_mask_equals_the_thresholded_probabilities(tiny_model_dir, h, w):
    predictor = inference.load(tiny_model_dir)
    predictor.config.tile_size, predictor.config.tile_overlap = 64, 24
    predictor.config.threshold = 0.5
    image = np.random.default_rng(h).integers(0, 255, (h, w, 3), dtype=np.uint8)
    proba = predictor.predict_proba(image)
    predictor.config.threshold = float(np.median(proba))  # a threshold that splits the pixels
    expected = proba >= predictor.config.threshold
    mask = predictor.predict_mask(image)
    assert mask.shape == (h, w) and 0.2 < expected.mean() < 0.8
    assert (mask != expected).mean() < 1e-3  # only float rounding at the threshold differs


def test_normalise_by_table_equals_the_arithmetic():
    from inference.arrays import normalise

    image = np.random.default_rng(6).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    expected = (image.astype(np.float32) - np.float32(mean) * 255) / (np.float32(std) * 255)
    out = normalise(image, mean, std)
    assert out.dtype == np.float32 and out.shape == (3, 37, 53)
    np.testing.assert_array_equal(out, expected.transpose(2, 0, 1))
    np.testing.assert_array_equal(normalise(image.astype(np.float32), mean, std), out)
    # written into a slot of a batch; from a crop of an RGBA image (pixels not side by side)
    batch = np.zeros((2, 3, 20, 30), np.float32)
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    slot = batch[1]
    assert normalise(rgba[5:25, 10:40, :3], mean, std, out=slot) is slot
    np.testing.assert_array_equal(batch[1], out[:, 5:25, 10:40])
    assert not batch[0].any()


def test_a_signal_handler_still_runs_after_openvino_models_come_and_go(tiny_model_dir):
    """Each OpenVINO Core set the thread's alternate signal stack and put back the one it
    found when it went; two dropped out of order left a freed stack in place, and the next
    Python signal handler (torch's SIGCHLD one, from any multi-process data loader) crashed
    the process: CI ended in a segmentation fault. Now every backend shares one Core."""
    import subprocess
    import sys

    script = f"""
import os, signal, inference
ran = []
signal.signal(signal.SIGUSR1, lambda *_: ran.append(1))
first = inference.load({str(tiny_model_dir)!r}, backend="openvino")
second = inference.load({str(tiny_model_dir)!r}, backend="openvino-bf16")
del first  # the older one goes first
os.kill(os.getpid(), signal.SIGUSR1)
del second
os.kill(os.getpid(), signal.SIGUSR1)
print("handled", len(ran))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "handled 2" in done.stdout
