"""Model-version configuration: what a model folder's config.json holds."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

WEIGHTS_FILES = ("weights.safetensors", "weights.pt")  # a model folder's weights, first found
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelConfig:
    """Architecture, preprocessing and prediction settings of one model version."""

    name: str
    architecture: str = "Unet"  # any segmentation_models_pytorch architecture name
    encoder: str = "mobilenet_v2"
    encoder_depth: int = 5
    decoder_channels: list[int] | None = None
    in_channels: int = 3
    classes: int = 1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    multiple: int = 32  # network input sides must be a multiple of this
    threshold: float = 0.5
    tile_size: int = 512
    tile_overlap: int = 64
    # the outermost border_px rows and columns of an image are never crack: a photo's edge
    # (a scan margin, a dark frame, the step to what lies beyond) is not a crack
    border_px: int = 2
    # calibration (Platt scaling, fitted on validation): p = sigmoid(logit_scale·logit + logit_bias)
    logit_scale: float = 1.0
    logit_bias: float = 0.0
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        data = dict(data)
        for key in ("mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> ModelConfig:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(data)


_fingerprints: dict[tuple, str] = {}


def fingerprint(folder: Path | str) -> str:
    """What a model folder predicts with, as a sha256: its weights file and every setting of
    its config.json but the figures and the history (metrics, provenance), which a re-run
    evaluation rewrites. Cached while the two files keep their size and modification time."""
    folder = Path(folder)
    weights = next((folder / n for n in WEIGHTS_FILES if (folder / n).is_file()), None)
    config = folder / "config.json"
    if weights is None or not config.is_file():
        raise FileNotFoundError(f"{folder}: not a model folder (config.json and weights)")
    key = (str(folder.resolve()),) + tuple(
        (st.st_size, st.st_mtime_ns) for st in (weights.stat(), config.stat())
    )
    if key not in _fingerprints:
        digest = hashlib.sha256(weights.read_bytes())
        settings = asdict(ModelConfig.load(config))
        settings.pop("metrics"), settings.pop("provenance")
        digest.update(json.dumps(settings, sort_keys=True).encode())
        _fingerprints[key] = digest.hexdigest()
    return _fingerprints[key]


def build_network(config: ModelConfig):
    """Build the untrained torch module for a config; never downloads weights."""
    import segmentation_models_pytorch as smp

    kwargs = dict(
        encoder_name=config.encoder,
        encoder_weights=None,
        encoder_depth=config.encoder_depth,
        in_channels=config.in_channels,
        classes=config.classes,
    )
    if config.decoder_channels is not None:
        kwargs["decoder_channels"] = list(config.decoder_channels)
    return smp.create_model(config.architecture, **kwargs)
