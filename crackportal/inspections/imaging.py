"""One way to turn a stored photo into pixels: upright (EXIF orientation) and 8-bit RGB.

Segmentation, thumbnails, pyramids and annotation checks all read images through here, so
the overlay and the outlines are drawn for the picture the browser shows (browsers apply
EXIF orientation), and 16-bit, 32-bit and float images are scaled, never clipped to white or
black. The stored original keeps its bytes untouched.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

HIGH_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
ORIENTATION_TAG = 0x0112


def upright_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as shown, from the header alone (no decoding)."""
    orientation = im.getexif().get(ORIENTATION_TAG, 1)
    return (im.height, im.width) if orientation in _TRANSPOSED else im.size


def _scaled_to_8bit(values: np.ndarray) -> np.ndarray:
    """High-bit-depth grey values to 0–255: floats in 0–1 as they are, else the image's range."""
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("the image holds no finite values")
    if values.dtype.kind == "f" and finite.min() >= 0 and finite.max() <= 1:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = np.percentile(finite, [0.01, 99.99])
        if hi <= lo:
            lo, hi = float(finite.min()), float(finite.max()) or 1.0
    scaled = (np.nan_to_num(values, nan=lo) - lo) / max(hi - lo, 1e-12) * 255
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def rgb8(im: Image.Image) -> np.ndarray:
    """The image upright as RGB uint8 (H, W, 3)."""
    im = ImageOps.exif_transpose(im)  # a copy, turned when the EXIF says so
    if im.mode in HIGH_BIT_MODES:
        grey = _scaled_to_8bit(np.asarray(im))
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


def mask_bool(im: Image.Image) -> np.ndarray:
    """A mask image as booleans: 0/1, 0/255, 0/65535, floats, colour on black or strokes on a
    transparent layer (any bit depth)."""
    if im.mode in HIGH_BIT_MODES:
        values = np.asarray(im).astype(np.float64)
    elif im.mode in ("L", "1", "P", "LA"):
        values = np.asarray(im.convert("L")).astype(np.float64)
    else:
        values = np.asarray(im.convert("RGB")).max(axis=2).astype(np.float64)
    if im.mode in ("RGBA", "LA", "PA") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    ):
        # painted on a transparent layer: what shows through is background, whatever colour
        # an editor stored there (often white)
        values[np.asarray(im.convert("RGBA"))[..., 3] == 0] = 0
    top = float(np.nanmax(values)) if values.size else 0.0
    if top <= 1:
        return values >= 0.5
    return values > top / 2
