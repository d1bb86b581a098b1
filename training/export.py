"""Write a trained network as a model-version folder that `inference.load` reads."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from inference.config import ModelConfig

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "MODEL_CARD.md"
NOTES_FILE = "CARD_NOTES.md"  # hand-written comparisons, appended to the generated card


def _card(config: ModelConfig, notes: str = "") -> str:
    prov = config.provenance
    lines = [
        f"# Model card: {config.name}",
        "",
        f"- Architecture: {config.architecture} with a {config.encoder} encoder "
        f"(segmentation-models-pytorch), trained from scratch (no pretrained weights).",
        f"- Decoder channels: {config.decoder_channels or 'library default'}",
        f"- Output: one crack-probability channel; threshold {config.threshold:.2f} "
        "(chosen on a validation split carved from train).",
        f"- Prediction: tiles of {config.tile_size} px with {config.tile_overlap} px overlap.",
        f"- Exported: {prov.get('exported_at', '')}",
        "",
        "## Data",
        "",
        *[f"- {d}" for d in prov.get("data", [])],
        "",
        "## Command",
        "",
        "```",
        prov.get("command", ""),
        "```",
        "",
        "## Training",
        "",
        f"- Epochs run: {prov.get('epochs_run', '?')}, best epoch: {prov.get('best_epoch', '?')}",
        f"- Training time: {prov.get('train_seconds', 0) / 60:.1f} min on {prov.get('machine', '?')}",
        "",
        "## Metrics",
        "",
        "| split | precision | recall | F1 | IoU | ODS | OIS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, m in config.metrics.items():
        cells = [
            f"{m[k]:.3f}" if k in m else "—"
            for k in ("precision", "recall", "f1", "iou", "ods", "ois")
        ]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    lookalikes = {k: m for k, m in config.metrics.items() if "lookalike_fp_pixel_rate" in m}
    if lookalikes:
        lines += [
            "",
            "Look-alikes (joints, grids, bolt holes, cables, stains, scratches drawn onto the "
            "first 40 test images; `training.evaluate --lookalikes`):",
            "",
            "| split | false-positive pixel rate | look-alikes flagged |",
            "| --- | --- | --- |",
        ]
        for split, m in lookalikes.items():
            lines.append(
                f"| {split} | {m['lookalike_fp_pixel_rate']:.4f} | "
                f"{m.get('lookalike_flagged_fraction', 0):.3f} |"
            )
    text = "\n".join(lines) + "\n"
    return text + ("\n" + notes.strip() + "\n" if notes.strip() else "")


def _notes(folder: Path) -> str:
    path = folder / NOTES_FILE
    return path.read_text() if path.exists() else ""


def export_model_version(
    state_dict: dict[str, torch.Tensor], config: ModelConfig, out_dir: Path | str
) -> Path:
    """Save weights (safetensors), config.json and MODEL_CARD.md into out_dir; return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config.provenance.setdefault(
        "exported_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    # float16 on disk halves the file; the predictor computes in float32 again
    tensors = {
        k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in state_dict.items()
    }
    save_file(tensors, str(out_dir / WEIGHTS_FILE))
    config.save(out_dir / CONFIG_FILE)
    (out_dir / CARD_FILE).write_text(_card(config, _notes(out_dir)))
    return out_dir


def update_card_metrics(model_dir: Path | str, split: str, metrics: dict) -> None:
    """Record metrics of one evaluated split in the folder's config and model card."""
    model_dir = Path(model_dir)
    config = ModelConfig.load(model_dir / CONFIG_FILE)
    config.metrics[split] = {
        k: round(float(v), 4) for k, v in metrics.items() if isinstance(v, int | float)
    }
    config.save(model_dir / CONFIG_FILE)
    (model_dir / CARD_FILE).write_text(_card(config, _notes(model_dir)))
    json.dumps(config.metrics)  # fail loudly here rather than in a later reader
