"""Crack inference: load a model version, predict masks of any size, measure cracks.

Plain Python: imports no Django.
"""

from inference.predictor import ModelLoadError, Predictor, load

__all__ = ["ModelLoadError", "Predictor", "load"]
