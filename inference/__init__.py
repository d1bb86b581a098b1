"""Crack inference: load a model version, predict masks of any size, measure cracks.

Plain Python: imports no Django. The predictor (and torch with it) loads on first use, so
light modules such as `inference.config` can be imported without the network.
"""

__all__ = ["ModelLoadError", "Predictor", "load"]


def __getattr__(name: str):
    if name in __all__:
        from inference import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
