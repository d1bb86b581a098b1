"""Loaded predictors, cached per worker process (worker side: imports the neural network)."""

from __future__ import annotations

import logging
import os
import threading

import inference
from crackportal.modelops.models import UNRECORDED, ModelFilesChanged, ModelVersion

logger = logging.getLogger(__name__)
_cache_lock = threading.Lock()
_predictors: dict[tuple[int, str], inference.Predictor] = {}


def get_predictor(version: ModelVersion) -> inference.Predictor:
    """A loaded predictor for version, cached per worker process."""
    folder = version.folder  # may look on disk or fetch from storage: once per call
    found = version.replaced_by(folder)  # nothing there: inference.load says what is missing
    if found is not None:
        registered = (
            "before fingerprints were kept"
            if version.fingerprint == UNRECORDED
            else f"as {version.fingerprint[:8]}"
        )
        raise ModelFilesChanged(
            f"model version {version.name!r} cannot run: the files in {folder} are not the "
            f"ones it was registered with ({registered}; now {found[:8]}), a newer model was "
            "put in its place; process with the active model"
        )
    key = (version.pk, str(folder))
    with _cache_lock:
        predictor = _predictors.get(key)
        if predictor is None:
            predictor = inference.load(folder, backend=_backend_for(folder))
            _predictors.clear()  # keep one model in memory per process
            _predictors[key] = predictor
    return predictor


def _backend_for(folder) -> str:
    """INFERENCE_BACKEND (default "auto"); "openvino-int8" runs a model only where its folder
    has a current int8 file (python -m inference.quantize), others on "auto", with a warning:
    a freshly trained or adapted model has none."""
    backend = os.environ.get("INFERENCE_BACKEND", "").strip() or "auto"
    if backend == "openvino-int8":
        from inference.quantize import StaleInt8Error, check_int8

        try:
            check_int8(folder)
        except StaleInt8Error as exc:
            logger.warning("%s: running this model on the default backend", exc)
            return "auto"
    return backend
