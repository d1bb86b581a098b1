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
            predictor = _load(folder)
            _predictors.clear()  # keep one model in memory per process
            _predictors[key] = predictor
    return predictor


def _load(folder) -> inference.Predictor:
    """The model on INFERENCE_BACKEND (default "auto"). "openvino-int8" needs a current int8
    file beside the weights (python -m inference.quantize); a freshly trained or adapted model
    has none and runs on "auto", with a warning, instead of failing."""
    from inference.quantize import StaleInt8Error

    backend = os.environ.get("INFERENCE_BACKEND", "").strip() or "auto"
    try:
        return inference.load(folder, backend=backend)
    except StaleInt8Error as exc:
        logger.warning("%s: running this model on the default backend", exc)
        return inference.load(folder)
