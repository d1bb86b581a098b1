"""A GPU worker gives the CPU's masks: the same drawn cracks through both, compared."""

import pytest
import torch

from inference.devices import compare


def _agree(result, iou=0.97):
    assert result["iou_min"] >= iou, result["images"]
    assert abs(result["f1_a"] - result["f1_b"]) <= 0.01
    assert result["length_px_b"] == pytest.approx(result["length_px_a"], rel=0.02)


@pytest.mark.slow
def test_onnx_runtime_and_torch_give_the_same_masks_on_the_cpu():
    from inference.backends import onnx_available

    if not onnx_available():
        pytest.skip("ONNX Runtime is not installed")
    _agree(compare("cpu:torch", "cpu:onnx", images=2), iou=0.99)


@pytest.mark.slow
def test_openvino_bfloat16_gives_the_onnx_masks_on_drawn_cracks():
    """The CPU default (OpenVINO, bf16 where the CPU has it) against float32 ONNX Runtime."""
    from inference.backends import openvino_available

    if not openvino_available():
        pytest.skip("OpenVINO is not installed")
    _agree(compare("cpu:onnx", "cpu:openvino-bf16", images=2), iou=0.99)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("backend", ["torch", "torch-bf16"])
def test_cuda_masks_match_the_cpu_masks_on_drawn_cracks(backend):
    _agree(compare("cpu:torch", f"cuda:{backend}"))


def test_inference_threads_can_be_set_per_worker_process(monkeypatch):
    from inference.backends import cpu_threads

    monkeypatch.setenv("INFERENCE_THREADS", "1")
    assert cpu_threads() == 1
    monkeypatch.setenv("INFERENCE_THREADS", "zero")  # not a count: every core
    assert cpu_threads() >= 1
