"""Loaded predictors, cached per worker process (worker side: imports the neural network)."""

from __future__ import annotations

import threading

import inference
from crackportal.modelops.models import ModelVersion

_cache_lock = threading.Lock()
_predictors: dict[tuple[int, str], inference.Predictor] = {}


def get_predictor(version: ModelVersion) -> inference.Predictor:
    """A loaded predictor for version, cached per worker process."""
    folder = version.folder  # may look on disk or fetch from storage: once per call
    key = (version.pk, str(folder))
    with _cache_lock:
        predictor = _predictors.get(key)
        if predictor is None:
            predictor = inference.load(folder)
            _predictors.clear()  # keep one model in memory per process
            _predictors[key] = predictor
    return predictor
