"""Deep Zoom (DZI) pyramids, so large survey images reach the browser as tiles, not whole.

Layout (what OpenSeadragon reads): <name>.dzi (XML) and <name>_files/<level>/<col>_<row>.<ext>,
level L showing the image at scale 2**(L - max_level). Built on the workers: OpenCV is
imported there, never by the web process (which only reads the constants below).
"""

from __future__ import annotations

import io
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

TILE_PX = 510
OVERLAP_PX = 1
PYRAMID_MIN_SIDE = 2048  # smaller images are served whole
JPEG_QUALITY = 85


def needs_pyramid(width: int, height: int) -> bool:
    return max(width, height) > PYRAMID_MIN_SIDE


def _half(size: int) -> int:
    return max(1, math.ceil(size / 2))


def _photo_levels(rgb: np.ndarray) -> Iterator[np.ndarray]:
    """The photo (as BGR for OpenCV's encoder) at full size, then halved by area averaging."""
    import cv2

    level = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    while True:
        yield level
        h, w = level.shape[:2]
        if h == w == 1:
            return
        level = cv2.resize(level, (_half(w), _half(h)), interpolation=cv2.INTER_AREA)


def _mask_levels(mask: np.ndarray) -> Iterator[np.ndarray]:
    """The mask at full size, then halved by 2x2 maximum: a 1-px crack stays visible
    however far the viewer zooms out (averaging would fade it away)."""
    level = np.ascontiguousarray(mask, dtype=np.uint8)
    while True:
        yield level
        h, w = level.shape
        if h == w == 1:
            return
        even = np.zeros((h + h % 2, w + w % 2), np.uint8)
        even[:h, :w] = level
        level = np.maximum(
            np.maximum(even[0::2, 0::2], even[1::2, 0::2]),
            np.maximum(even[0::2, 1::2], even[1::2, 1::2]),
        )


def _jpeg(tile: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", tile, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError("JPEG encoding of a pyramid tile failed")
    return data.tobytes()


def mask_image(mask: np.ndarray, colour: tuple[int, int, int]) -> Image.Image:
    """A 0/1 (or boolean) mask as a two-colour palette image: 0 transparent, 1 colour (as
    PNG, a quarter of RGBA's encoding time)."""
    h, w = mask.shape
    image = Image.frombuffer("P", (w, h), mask.astype(np.uint8).tobytes(), "raw", "P", 0, 1)
    image.putpalette([0, 0, 0, *colour])
    image.info["transparency"] = 0
    return image


def _palette_png(colour: tuple[int, int, int]) -> Callable[[np.ndarray], bytes]:
    """Encoder of mask tiles as mask_image PNGs; an empty tile of each size encoded once."""
    empty: dict[tuple[int, int], bytes] = {}

    def encode(tile: np.ndarray) -> bytes:
        blank = not tile.any()
        if blank and tile.shape in empty:
            return empty[tile.shape]
        buffer = io.BytesIO()
        mask_image(tile, colour).save(buffer, format="PNG", compress_level=3)
        if blank:
            empty[tile.shape] = buffer.getvalue()
        return buffer.getvalue()

    return encode


def _write_pyramid(
    levels: Iterator[np.ndarray], encode, out_dir: Path, name: str, fmt: str
) -> Path:
    """Tile every level (largest first) into a scratch folder, swap it in, write the .dzi."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_files = out_dir / f".{name}_files.tmp"
    shutil.rmtree(tmp_files, ignore_errors=True)
    width = height = 0
    max_level = 0
    for index, level_image in enumerate(levels):
        h, w = level_image.shape[:2]
        if index == 0:
            width, height = w, h
            max_level = math.ceil(math.log2(max(width, height)))
        level_dir = tmp_files / str(max_level - index)
        level_dir.mkdir(parents=True)
        for col in range(math.ceil(w / TILE_PX)):
            for row in range(math.ceil(h / TILE_PX)):
                x0, y0 = max(0, col * TILE_PX - OVERLAP_PX), max(0, row * TILE_PX - OVERLAP_PX)
                x1 = min(w, (col + 1) * TILE_PX + OVERLAP_PX)
                y1 = min(h, (row + 1) * TILE_PX + OVERLAP_PX)
                (level_dir / f"{col}_{row}.{fmt}").write_bytes(encode(level_image[y0:y1, x0:x1]))
    final_files = out_dir / f"{name}_files"
    shutil.rmtree(final_files, ignore_errors=True)
    tmp_files.rename(final_files)
    dzi = out_dir / f"{name}.dzi"
    dzi.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="{fmt}" Overlap="{OVERLAP_PX}" '
        f'TileSize="{TILE_PX}"><Size Width="{width}" Height="{height}"/></Image>\n'
    )
    return dzi


def build_dzi(image: Image.Image | np.ndarray, out_dir: Path, name: str) -> Path:
    """Write the JPEG pyramid of a photo (PIL image or RGB uint8 array) under out_dir,
    replacing an older one; return the .dzi path."""
    rgb = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else image
    return _write_pyramid(_photo_levels(rgb), _jpeg, out_dir, name, "jpg")


def build_mask_dzi(
    mask: np.ndarray, out_dir: Path, name: str, colour: tuple[int, int, int] = (255, 40, 40)
) -> Path:
    """Write the PNG pyramid of a crack mask: colour where the mask is set, transparent
    elsewhere (the overlay drawn over the photo's pyramid)."""
    return _write_pyramid(_mask_levels(mask), _palette_png(colour), out_dir, name, "png")
