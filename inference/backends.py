"""Execution backends: PyTorch eager (CPU or CUDA), ONNX Runtime (CPU) and OpenVINO (CPU).

A backend maps a normalised float32 batch (N, 3, H, W) to crack logits (N, H, W).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import tempfile
import threading
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
    return cache_dir() / f"{digest}.onnx"


def cache_dir() -> Path:
    """The host's cache folder: ONNX exports of read-only model folders, measured timings."""
    return Path(
        os.environ.get("CRACKPORTAL_CACHE", Path(tempfile.gettempdir()) / "crackportal-onnx")
    )


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


# OpenVINO float: how many input sizes get a model compiled for that size, and when bf16 wins
STATIC_SHAPES = 8  # per backend; further sizes run on the model compiled with open sizes
BF16_MARGIN = 0.9  # bf16 is chosen only where it takes at most 90 % of float32's time
_PROBE = (1, 3, 256, 256)  # the input timed when choosing a precision
_MEASURED: dict[str, dict[str, float]] = {}  # host_timings' key -> seconds, this process
TIMINGS_FILE = "cpu-timings.json"  # in cache_dir(): the host's measured timings
TIMINGS_KEPT = 200  # entries kept in it, the newest
# int8 (an F1 change within ±0.003 on every split) is chosen only where it takes at most 75 %
# of the faster float's time
INT8_MARGIN = 0.75


def best_seconds_each(runs: dict, probe: np.ndarray, rounds: int = 4, per_round: int = 3):
    """Seconds per call of each run(probe) in `runs` (name -> run): the best of `rounds`
    rounds after one warm-up round, the runs taking turns within every round.

    In turns, a burst of other work on the host (a package install, another worker starting)
    falls on every candidate alike. Timed one after the other, on a 2-core AVX2 EPYC
    (2026-11-29) a burst during the int8 rounds recorded int8 at 0.84 of float32's time where
    it takes 0.55, and "auto" ran float32 at half the speed, for good: the figures are kept
    per host (host_timings)."""
    import time

    best = dict.fromkeys(runs, float("inf"))
    for round_ in range(rounds + 1):
        for name, run in runs.items():
            started = time.perf_counter()
            for _ in range(per_round):
                run(probe)
            if round_:
                best[name] = min(best[name], (time.perf_counter() - started) / per_round)
    return best


def best_seconds(run, probe: np.ndarray, rounds: int = 4, per_round: int = 3) -> float:
    """Seconds per call of run(probe): the best of `rounds` rounds after one warm-up round."""
    return best_seconds_each({"run": run}, probe, rounds, per_round)["run"]


def probe_input() -> np.ndarray:
    """The input timed when choosing a precision or a backend (fixed, 1 x 3 x 256 x 256)."""
    return np.random.default_rng(0).standard_normal(_PROBE).astype(np.float32)


_CORE = None
_CORE_LOCK = threading.Lock()


def openvino_core():
    """The process's one OpenVINO Core, shared by every OpenVINO backend.

    A Core's CPU plugin sets the thread's alternate signal stack and, when the Core goes,
    puts back the one it found. Two Cores dropped out of order (the float model timed and
    dropped, the int8 one kept) left a freed stack in place, and the next Python signal
    handler (torch's SIGCHLD one, installed by any multi-process data loader) crashed the
    process: the test run ended in a segmentation fault (2026-11-27)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino as ov

            _CORE = ov.Core()
        return _CORE


@functools.cache
def cpu_info(field: str) -> str | None:
    """A field of the first processor in /proc/cpuinfo ("model name", "flags"); None where
    there is no such file or field. Read once per process."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field) and line[len(field) :].lstrip().startswith(":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_name() -> str:
    import platform

    return cpu_info("model name") or platform.processor() or platform.machine()


# what caps the instructions the CPU's kernels use (oneDNN's and OpenVINO's own): a host run
# with one set is a different CPU for timing, as on a CPU without VNNI int8 may lose its lead
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "OV_CPU_MAX_ISA")


def _cpu_key() -> str:
    """The CPU's name, a digest of its instruction-set flags, and any instruction-set cap in
    the environment. Two CPUs can share a name: on 2026-11-27 and 11-29 a 2-core "AMD EPYC"
    with AVX-512 BF16 and VNNI and one with AVX2 only, whose figures differ by 2-4x."""
    flags = hashlib.sha256(" ".join(sorted((cpu_info("flags") or "").split())).encode())
    caps = [f"{name}={os.environ[name]}" for name in ISA_CAPS if os.environ.get(name)]
    return " ".join([_cpu_name(), f"flags:{flags.hexdigest()[:12]}", *caps])


def host_timings(paths: list[Path], measure) -> dict[str, float]:
    """measure()'s seconds for the model file(s) at paths, measured once per host.

    Every worker process on a host then runs the precision chosen from the same figures:
    timed per process, figures near a margin chose bf16 in one worker and int8 in another
    (a 2-core Xeon with AMX, 2026-11-27), so the same image could get two slightly different
    masks. The figures live in cache_dir()/TIMINGS_FILE, keyed by the files (path, size,
    modification time), the thread budget and the CPU (with any ISA_CAPS); delete the file
    to measure again. A lock keeps two processes starting together from both measuring.
    Without a writable cache folder each process measures for itself.
    """
    files = []
    for path in paths:
        stat = Path(path).stat()
        files += [str(Path(path).resolve()), stat.st_size, stat.st_mtime]
    key = json.dumps([*files, cpu_threads(), _cpu_key()])
    if key in _MEASURED:
        return _MEASURED[key]
    store = cache_dir() / TIMINGS_FILE
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        with open(store.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            try:
                known = json.loads(store.read_text())
            except (OSError, ValueError):
                known = {}
            if key not in known:
                known[key] = measure()
                known = dict(list(known.items())[-TIMINGS_KEPT:])
                partial = store.with_name(f".{store.name}.{os.getpid()}")
                partial.write_text(json.dumps(known))
                os.replace(partial, store)
            _MEASURED[key] = known[key]
    except OSError:
        _MEASURED[key] = measure()
    return _MEASURED[key]


def pick_precision(seconds: dict[str, float]) -> str:
    """ "bf16" where it measured at most BF16_MARGIN of float32's time per probe, else "f32"."""
    bf16 = seconds.get("bf16")
    return "bf16" if bf16 is not None and bf16 <= BF16_MARGIN * seconds["f32"] else "f32"


def float_timings(onnx_path: Path, core=None, model=None, timed: dict | None = None, int8=None):
    """Seconds per probe input of a float32 ONNX model on this CPU: float32, and bf16 where the
    CPU has it, and an int8 backend's (OpenVinoInt8Backend) where one is given, all timed in
    turns (best_seconds_each); measured once per host and files (host_timings), so a worker
    that finds them measured compiles nothing here. The float graphs compiled to measure
    them, if it measured, are left in `timed`."""

    def measure() -> dict[str, float]:
        nonlocal core, model
        core = core or openvino_core()
        model = model or core.read_model(str(onnx_path))
        runs = {}
        for p in ("f32", "bf16"):
            compiled = core.compile_model(model, "CPU", _openvino_cpu_config(p))
            # a CPU without native bf16 runs a bf16 request in f32: nothing to time. (Asking
            # the CPU's OPTIMIZATION_CAPABILITIES instead replaces this thread's alternate
            # signal stack with one that does not last: the next Python signal handler,
            # torch's SIGCHLD one, then crashed the process.)
            if compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() != p:
                continue
            if timed is not None:
                timed[p] = compiled
            request = compiled.create_infer_request()
            runs[p] = lambda x, r=request: r.infer({0: x})
        if int8 is not None:
            runs["int8"] = int8
        return best_seconds_each(runs, probe_input())

    return host_timings([Path(onnx_path)] + ([int8.path] if int8 is not None else []), measure)


def stream_parts(batch: int, threads: int) -> list[int]:
    """How a batch of `batch` inputs is cut to run as parallel streams on `threads` threads:
    the part sizes, one part per stream ([batch] alone where it runs whole). One stream per
    thread at most, equal parts but the last."""
    streams = min(batch, threads)
    if streams < 2:
        return [batch]
    step = -(-batch // streams)
    return [min(step, batch - start) for start in range(0, batch, step)]


class _OpenVinoRequests:
    """What both OpenVINO backends share: the process's Core, the model read once, a graph
    compiled for an input shape, infer requests per thread, and the call itself.

    A batch of several inputs runs as parallel streams (stream_parts: on 2 threads, two
    halves at once, one thread each) rather than as one request over every thread: on a
    2-core AVX2 EPYC (2026-11-29) four 384x640 tiles ran 12 % faster that way in int8 (the same
    logits to the bit) and 7 % faster in float32 (logits within 3e-5). A single input
    keeps every thread. Each batch size keeps one way of running (STATIC_SHAPES graphs for
    the parts at most, later sizes run whole), so an input's result never depends on what
    ran before it."""

    def __init__(self, onnx_path: Path):
        self._core = openvino_core()
        self._model = self._core.read_model(str(onnx_path))
        self._lock = threading.Lock()
        self._local = threading.local()  # an infer request serves one thread at a time
        self.timings: dict[str, float] = {}  # seconds per probe, where "auto" measured them
        self._config: dict = {}  # the compile settings (set by the backend)
        self._parts: dict[tuple, list | None] = {}  # batch shape -> part graphs, None: whole
        self._part_graphs: dict[tuple, object] = {}  # (part shape, streams) -> compiled

    def _plan(self, shape: tuple) -> list | None:
        """The graphs a batch of this shape runs on, part by part; None: it runs whole.
        Called under the lock."""
        sizes = stream_parts(shape[0], cpu_threads())
        if len(sizes) < 2:
            return None
        keys = [((size, *shape[1:]), len(sizes)) for size in sizes]
        if len(set(keys) | set(self._part_graphs)) > STATIC_SHAPES:
            return None
        config = {**self._config, "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": len(sizes)}
        for key in keys:
            if key not in self._part_graphs:
                self._part_graphs[key] = self._compile_for(key[0], config)
        return [self._part_graphs[key] for key in keys]

    def _streams(self, shape: tuple) -> list | None:
        """This thread's infer requests for a batch of this shape, one per part; or None."""
        requests = self._requests()
        key = ("parts", shape)
        if key not in requests:
            with self._lock:
                if shape not in self._parts:
                    self._parts[shape] = self._plan(shape)
                plan = self._parts[shape]
            requests[key] = plan and [graph.create_infer_request() for graph in plan]
        return requests[key]

    def _compile_for(self, shape: tuple, config: dict):
        model = self._model.clone()
        model.reshape(list(shape))
        return self._core.compile_model(model, "CPU", config)

    def _requests(self) -> dict:
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {}
        return requests

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        streams = self._streams(batch.shape)
        if streams is None:
            result = self._request(batch.shape).infer({0: batch}, share_inputs=True)
            return np.array(result[0][:, 0])  # a copy: the request reuses its output buffer
        start = 0
        for request in streams:  # each reads its part of the batch in place, while it runs
            size = request.get_input_tensor(0).shape[0]
            request.start_async({0: batch[start : start + size]}, share_inputs=True)
            start += size
        out = []
        for request in streams:
            request.wait()
            out.append(np.array(request.get_output_tensor(0).data[:, 0]))
        return np.concatenate(out)


class OpenVinoBackend(_OpenVinoRequests):
    """OpenVINO on the CPU, from the same ONNX export, on cpu_threads() threads.

    precision "f32" gives ONNX Runtime's logits (to ~1e-5); "bf16" runs the convolutions in
    bfloat16 where the CPU has native bf16 instructions (elsewhere OpenVINO keeps float32 and
    `precision` says so); "fastest" (what `inference.load`'s "auto" asks for) times both on
    this CPU and keeps bf16 only where it is clearly faster. Native bf16 is not always a gain:
    on a 2-core Xeon with AVX-512 BF16 (2026-11-27) it took 1.2-1.5x float32's time, while on
    a 2-core AMD EPYC with AVX-512 BF16 it took half. The model card states what bf16 costs in
    F1 on each test split.

    The first STATIC_SHAPES input sizes it meets each get a model compiled for that size the
    first time (14-16 % faster than the model with open sizes on 320x480-1024x1024 inputs, at
    0.2-0.4 s of compiling); later sizes always run on the model with open sizes. So one size
    always runs on one graph: in bf16 the two graphs round differently (up to 4/255 in
    probability on a 2-core Xeon with AMX, 2026-11-27), and compiling on a size's second
    sight made the same image's second mask differ from its first by a few pixels. A tiled
    predictor meets few sizes: its tiles and the edge tiles.
    """

    def __init__(self, onnx_path: Path, precision: str = "bf16", timed: dict | None = None):
        if precision not in ("f32", "bf16", "fastest"):
            raise ValueError(f"unknown OpenVINO precision {precision!r}")
        super().__init__(onnx_path)
        # the graphs compiled to time the precisions (float_timings), kept for reuse
        timed = {} if timed is None else timed
        if precision == "fastest":
            self.timings = float_timings(Path(onnx_path), self._core, self._model, timed)
            precision = pick_precision(self.timings)
        self._config = _openvino_cpu_config(precision)
        self.compiled = timed.get(precision) or self._core.compile_model(
            self._model, "CPU", self._config
        )
        # what the CPU actually runs: a bf16 request falls back to f32 without native bf16
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.name = "openvino-bf16" if self.precision == "bf16" else "openvino"
        self._static: dict[tuple, object] = {}  # input shape -> model compiled for it
        self._open_sized: set[tuple] = set()  # sizes met after STATIC_SHAPES: the open model

    def _request(self, shape: tuple):
        requests = self._requests()
        if shape in requests:
            return requests[shape]
        with self._lock:
            compiled = self._static.get(shape)
            if compiled is None and shape not in self._open_sized:
                if len(self._static) < STATIC_SHAPES:
                    compiled = self._static[shape] = self._compile_for(shape, self._config)
                else:
                    self._open_sized.add(shape)
        if compiled is None:  # a size met after the first STATIC_SHAPES: open sizes, always
            if None not in requests:
                requests[None] = self.compiled.create_infer_request()
            return requests[None]
        requests[shape] = compiled.create_infer_request()
        return requests[shape]

    @property
    def static_shapes(self) -> list[tuple]:
        return list(self._static)


class OpenVinoInt8Backend(_OpenVinoRequests):
    """OpenVINO on the CPU running a statically quantised (int8) ONNX graph
    (inference/quantize.py), compiled once for each input size it meets: with the sizes
    left open, OpenVINO 2026.4 gave wrong logits from this graph (the largest logit of a
    crack image stayed below -7); with them fixed it agrees with float32 (mean |logit
    difference| 0.14). A tiled predictor meets few sizes: its tiles and the edge tiles."""

    name = "openvino-int8"

    def __init__(self, onnx_path: Path):
        super().__init__(onnx_path)  # the model read once, sized per input
        self.path = Path(onnx_path)
        self._compiled: dict[tuple, object] = {}
        self.precision = "int8"
        self._config = _openvino_cpu_config("bf16")  # bf16 for the layers left in float

    def _request(self, shape: tuple):
        requests = self._requests()
        if shape not in requests:
            with self._lock:
                if shape not in self._compiled:
                    self._compiled[shape] = self._compile_for(shape, self._config)
            requests[shape] = self._compiled[shape].create_infer_request()
        return requests[shape]


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
