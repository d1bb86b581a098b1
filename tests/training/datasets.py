"""Dataset folders of drawn cracks, laid out as ../shared/datasets (split/images, split/masks)."""

from pathlib import Path

import numpy as np
from PIL import Image

from inference.synthetic import survey_image


def write_dataset(root: Path, seed: int, counts: dict[str, int]) -> Path:
    """64x64 images of one drawn crack each: counts maps a split ("train", "test") to its size."""
    for split, n in counts.items():
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(n):
            rgb, mask, _ = survey_image(64, 64, n_cracks=1, seed=seed + i, widths_px=(2.0, 3.0))
            Image.fromarray(rgb).save(root / split / "images" / f"{i}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / split / "masks" / f"{i}.png")
    return root
