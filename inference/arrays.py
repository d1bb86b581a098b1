"""Array helpers shared by prediction, training and the portal (numpy and OpenCV, no network).

One home for how an image becomes network input, so training and serving never drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}  # image files a folder holds


def normalise(
    image: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """RGB uint8 (H, W, C) → float32 (C, H, W) standardised by mean/std given on a 0–1 scale,
    written into `out` (C, H, W) when given (a slot of a batch) and returned.

    uint8 images take one 256-entry table lookup per channel (OpenCV's LUT, written straight
    into `out`), the same values as the arithmetic: it runs beside the network on every tile.
    On a 2-core AVX2 EPYC a 384x640 tile takes 0.8 ms this way, 4.4 ms by numpy's take per
    channel and five times that by the arithmetic.
    """
    mean_255 = np.asarray(mean, dtype=np.float32) * 255.0
    std_255 = np.asarray(std, dtype=np.float32) * 255.0
    channels = image.shape[2]
    if out is None:
        out = np.empty((channels, *image.shape[:2]), dtype=np.float32)
    if image.dtype != np.uint8 or channels > 4:
        out[...] = ((image.astype(np.float32) - mean_255) / std_255).transpose(2, 0, 1)
        return out
    table = (np.arange(256, dtype=np.float32)[None, :] - mean_255[:, None]) / std_255[:, None]
    if image.strides[1:] != (channels, 1):  # OpenCV reads whole pixels side by side
        image = np.ascontiguousarray(image)
    for channel, plane in enumerate(cv2.split(image)):
        written = cv2.LUT(plane, table[channel][None], dst=out[channel])
        if not np.may_share_memory(written, out):  # OpenCV wrote elsewhere (out not contiguous)
            out[channel] = written
    return out


def pad_to_multiple(array: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad bottom/right by reflection to a multiple of `multiple`; return array and (h, w)."""
    h, w = array.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        pad = [(0, ph), (0, pw)] + [(0, 0)] * (array.ndim - 2)
        array = np.pad(array, pad, mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    return array, (h, w)


def binarise_mask(mask: np.ndarray) -> np.ndarray:
    """Crack = True, for masks encoded 0/1, 0/255 or as RGB colours on black."""
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.max() <= 1:
        return mask == 1
    return mask > 127
