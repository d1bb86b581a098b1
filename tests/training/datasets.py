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


def crop_figures(monkeypatch, config, settings, source: str, crops: int) -> tuple[float, int]:
    """(widest crack, look-alikes drawn) over `crops` training crops of one image from `source`
    with an 8-px crack: how wide the augmentation makes the crack, and whether look-alikes
    were drawn on its crops."""
    import cv2

    import training.loop as loop
    from training.data import Sample
    from training.lookalikes import draw_lookalikes

    drawn = []
    monkeypatch.setattr(loop, "draw_lookalikes", lambda *a: drawn.append(1) or draw_lookalikes(*a))
    image = np.full((400, 400, 3), 150, np.uint8)
    mask = np.zeros((400, 400), bool)
    mask[160:240, 196:204] = True  # a crack 8 px wide, far from the borders' reflections
    image[mask] = 90
    dataset = loop._CropDataset(
        [Sample("a", image, mask, source=source)], config, 96, crops, settings
    )
    np.random.seed(0)
    dataset.transform.set_random_seed(0)
    if dataset.plain is not None:
        dataset.plain.set_random_seed(0)
    widest = 0.0
    for i in range(len(dataset)):
        y = np.pad(dataset[i][1][0].numpy().astype(np.uint8), 1)  # the crop's edge is not crack
        if y.any():  # twice its deepest point from the background: width + 1 to 2 px
            depth = cv2.distanceTransform(y, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).max()
            widest = max(widest, 2 * float(depth))
    return widest, len(drawn)
