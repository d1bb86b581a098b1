"""Execution backends: PyTorch eager (CPU or CUDA), ONNX Runtime (CPU) and OpenVINO (CPU).

A backend maps a normalised float32 batch (N, 3, H, W) to crack logits (N, H, W).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

ONNX_FILE = "model.onnx"


def cpu_threads() -> int:
    """Threads for the network on the CPU: INFERENCE_THREADS when set (e.g. 1 per worker
    process when several share a host), else every core this process may use."""
    wanted = os.environ.get("INFERENCE_THREADS", "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


class TorchBackend:
    """PyTorch eager, channels_last: all cores in float32 on CPU; on CUDA autocast to
    float16 (default) or bfloat16 (backend "torch-bf16")."""

    name = "torch"

    def __init__(
        self,
        network: torch.nn.Module,
        device: torch.device,
        cuda_dtype: torch.dtype = torch.float16,
    ):
        self.device = device
        self.cuda_dtype = cuda_dtype
        self.network = network.eval().to(device).to(memory_format=torch.channels_last)
        if device.type == "cpu":
            torch.set_num_threads(cpu_threads())
        else:
            self.name = "torch-bf16" if cuda_dtype == torch.bfloat16 else "torch"
            torch.backends.cudnn.benchmark = True  # image sizes repeat: pick the fastest kernels

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
        if self.device.type == "cpu":
            return self.network(x)[:, 0].numpy()
        with torch.autocast("cuda", dtype=self.cuda_dtype):
            return self.network(x)[:, 0].float().cpu().numpy()


def export_onnx(network: torch.nn.Module, path: Path, opset: int = 17) -> Path:
    """Export a network to ONNX with dynamic batch and image size; written atomically."""
    network = network.eval().float().to("cpu", memory_format=torch.contiguous_format)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            network,
            (torch.zeros(1, 3, 64, 64),),
            str(tmp),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
            opset_version=opset,
            dynamo=False,
        )
    os.replace(tmp, path)
    return path


def onnx_cache_path(model_dir: Path) -> Path:
    """Where a model folder's ONNX export lives: beside the weights if writable, else a cache."""
    model_dir = Path(model_dir)
    if os.access(model_dir, os.W_OK):
        return model_dir / ONNX_FILE
    weights = next((p for p in sorted(model_dir.glob("weights.*"))), None)
    digest = hashlib.sha256(
        weights.read_bytes() if weights else str(model_dir).encode()
    ).hexdigest()[:16]
    cache = Path(
        os.environ.get("CRACKPORTAL_CACHE", Path(tempfile.gettempdir()) / "crackportal-onnx")
    )
    return cache / f"{digest}.onnx"


class OnnxBackend:
    """ONNX Runtime on CPU with all graph optimisations and all cores."""

    name = "onnx"

    def __init__(self, onnx_path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = cpu_threads()
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"image": np.ascontiguousarray(batch, dtype=np.float32)})[0][
            :, 0
        ]


def _openvino_cpu_config(precision: str) -> dict:
    """OpenVINO CPU settings: cpu_threads() threads, latency-first, no pinning to the first
    cores (two worker processes on one host would otherwise share one core)."""
    return {
        "INFERENCE_NUM_THREADS": cpu_threads(),
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": precision,
        "ENABLE_CPU_PINNING": False,
    }


class OpenVinoBackend:
    """OpenVINO on the CPU, from the same ONNX export, on cpu_threads() threads.

    precision "f32" gives ONNX Runtime's logits (to ~1e-5); "bf16" runs the convolutions in
    bfloat16 where the CPU has native bf16 instructions (AVX-512 BF16 or AMX), about twice
    as fast on such CPUs; elsewhere OpenVINO keeps float32 and `precision` says so. The
    model card states what bf16 costs in F1 on each test split.
    """

    def __init__(self, onnx_path: Path, precision: str = "bf16"):
        import threading

        import openvino as ov

        core = ov.Core()
        self.compiled = core.compile_model(
            core.read_model(str(onnx_path)), "CPU", _openvino_cpu_config(precision)
        )
        # what the CPU actually runs: a bf16 request falls back to f32 without native bf16
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.name = "openvino-bf16" if self.precision == "bf16" else "openvino"
        self._local = threading.local()  # an infer request serves one thread at a time

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(result[0][:, 0])  # a copy: the request reuses its output buffer


class OpenVinoInt8Backend:
    """OpenVINO on the CPU running a statically quantised (int8) ONNX graph
    (inference/quantize.py), compiled once for each input size it meets: with the sizes
    left open, OpenVINO 2026.4 gave wrong logits from this graph (the largest logit of a
    crack image stayed below -7); with them fixed it agrees with float32 (mean |logit
    difference| 0.14). A tiled predictor meets few sizes: its tiles and the edge tiles."""

    name = "openvino-int8"

    def __init__(self, onnx_path: Path):
        import threading

        import openvino as ov

        self._core = ov.Core()
        self._model = self._core.read_model(str(onnx_path))  # read once, sized per input
        self._compiled: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # an infer request serves one thread at a time
        self.precision = "int8"

    def _request(self, shape: tuple):
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {}
        if shape not in requests:
            with self._lock:
                if shape not in self._compiled:
                    model = self._model.clone()
                    model.reshape(list(shape))
                    self._compiled[shape] = self._core.compile_model(
                        model,
                        "CPU",
                        _openvino_cpu_config("bf16"),  # for the layers left in float
                    )
            requests[shape] = self._compiled[shape].create_infer_request()
        return requests[shape]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        result = self._request(batch.shape).infer({0: batch})
        return np.array(result[0][:, 0])


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
