"""Image/mask pair discovery and loading for every dataset layout the project reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inference.arrays import (  # noqa: F401 (re-exported)
    IMAGE_SUFFIXES,
    binarise_mask,
    pad_to_multiple,
)


@dataclass(frozen=True)
class Pair:
    """One image and its ground-truth mask on disk."""

    name: str
    image_path: Path
    mask_path: Path


@dataclass
class Sample:
    """A loaded pair: RGB uint8 image (H, W, 3) and boolean crack mask (H, W)."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    source: str = ""  # which dataset it came from (for balanced sampling)


def _files_by_stem(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def _pairs_in(images_dir: Path, masks_dir: Path) -> tuple[list[Pair], list[str]]:
    images = _files_by_stem(images_dir)
    masks = _files_by_stem(masks_dir)
    pairs, problems = [], []
    for stem, image_path in images.items():
        mask_path = masks.get(stem)
        if mask_path is None:
            problems.append(f"{image_path.name}: no mask named {stem}.* in {masks_dir}")
            continue
        pairs.append(Pair(stem, image_path, mask_path))
    return pairs, problems


def find_pairs(root: Path | str, split: str | None = None) -> tuple[list[Pair], list[str]]:
    """Find image/mask pairs under root in any known layout; return (pairs, problems).

    Layouts: root/images + root/masks; root/<split>/images + root/<split>/masks;
    CamVid-like root/<split> + root/<split>annot.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    candidates = []
    if (root / "images").is_dir() and (root / "masks").is_dir():
        candidates.append((root / "images", root / "masks"))
    splits = [split] if split else ["train", "val", "test"]
    for name in splits:
        if (root / name / "images").is_dir():
            candidates.append((root / name / "images", root / name / "masks"))
        elif (root / name).is_dir() and (root / f"{name}annot").is_dir():
            candidates.append((root / name, root / f"{name}annot"))
    if split and candidates and (root / "images").is_dir():
        candidates = candidates[1:] or candidates  # an explicit split wins over the flat layout
    if not candidates:
        raise FileNotFoundError(
            f"{root}: no images/ + masks/, <split>/images + <split>/masks, or <split> + <split>annot"
        )
    pairs, problems = [], []
    for images_dir, masks_dir in candidates:
        if not masks_dir.is_dir():
            problems.append(f"{images_dir}: no masks folder {masks_dir}")
            continue
        found, found_problems = _pairs_in(images_dir, masks_dir)
        pairs += found
        problems += found_problems
    return pairs, problems


def read_image(path: Path) -> np.ndarray:
    """Read an RGB uint8 image; raise ValueError with the file name if unreadable."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"{Path(path).name}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """Read a ground-truth mask of any encoding as a boolean array."""
    data = np.fromfile(str(path), dtype=np.uint8)
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if mask is None:
        raise ValueError(f"{Path(path).name}: not a readable mask")
    if mask.ndim == 3 and mask.shape[2] == 4:
        mask = mask[:, :, :3]
    return binarise_mask(mask)


def load_pair(pair: Pair) -> Sample:
    """Load one pair; raise ValueError naming the file when it is unreadable or mismatched."""
    image = read_image(pair.image_path)
    mask = read_mask(pair.mask_path)
    if image.shape[:2] != mask.shape:
        raise ValueError(
            f"{pair.name}: image is {image.shape[1]}x{image.shape[0]} "
            f"but mask is {mask.shape[1]}x{mask.shape[0]}"
        )
    return Sample(pair.name, image, mask)


def load_samples(pairs: list[Pair]) -> tuple[list[Sample], list[str]]:
    """Load pairs, skipping (and reporting by name) the broken ones."""
    samples, problems = [], []
    for pair in pairs:
        try:
            samples.append(load_pair(pair))
        except ValueError as exc:
            problems.append(str(exc))
    return samples, problems


def load_train_split(root: Path | str, source: str | None = None) -> tuple[list[Sample], list[str]]:
    """A dataset's train split (all pairs of a flat images/ + masks/ folder), each sample
    marked with its dataset (source, default the folder's name); returns (samples, problems)."""
    root = Path(root)
    samples, problems = load_dataset(root, "train" if (root / "train").is_dir() else None)
    for sample in samples:
        sample.source = source or root.name
    return samples, problems


def load_dataset(root: Path | str, split: str | None = None) -> tuple[list[Sample], list[str]]:
    """Find and load every pair under root; return (samples, problems)."""
    pairs, problems = find_pairs(root, split)
    samples, load_problems = load_samples(pairs)
    return samples, problems + load_problems
