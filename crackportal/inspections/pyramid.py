"""Deep Zoom (DZI) pyramids, so large survey images reach the browser as tiles, not whole.

Layout (what OpenSeadragon reads): <name>.dzi (XML) and <name>_files/<level>/<col>_<row>.<ext>,
level L showing the image at scale 2**(L - max_level).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from PIL import Image

TILE_PX = 510
OVERLAP_PX = 1
PYRAMID_MIN_SIDE = 2048  # smaller images are served whole


def needs_pyramid(width: int, height: int) -> bool:
    return max(width, height) > PYRAMID_MIN_SIDE


def build_dzi(image: Image.Image, out_dir: Path, name: str, fmt: str = "jpg") -> Path:
    """Write the pyramid of image under out_dir (replacing an older one); return the .dzi path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_files = out_dir / f".{name}_files.tmp"
    shutil.rmtree(tmp_files, ignore_errors=True)
    width, height = image.size
    max_level = math.ceil(math.log2(max(width, height)))
    mode = "RGB" if fmt == "jpg" else "RGBA"
    level_image = image.convert(mode)
    for level in range(max_level, -1, -1):
        level_dir = tmp_files / str(level)
        level_dir.mkdir(parents=True)
        w, h = level_image.size
        for col in range(math.ceil(w / TILE_PX)):
            for row in range(math.ceil(h / TILE_PX)):
                x0, y0 = max(0, col * TILE_PX - OVERLAP_PX), max(0, row * TILE_PX - OVERLAP_PX)
                x1, y1 = (
                    min(w, (col + 1) * TILE_PX + OVERLAP_PX),
                    min(h, (row + 1) * TILE_PX + OVERLAP_PX),
                )
                tile = level_image.crop((x0, y0, x1, y1))
                path = level_dir / f"{col}_{row}.{fmt}"
                if fmt == "jpg":
                    tile.save(path, quality=85)
                else:
                    tile.save(path, compress_level=3)
        if level:
            level_image = level_image.resize(
                (max(1, math.ceil(w / 2)), max(1, math.ceil(h / 2))),
                Image.Resampling.BILINEAR if fmt == "png" else Image.Resampling.LANCZOS,
            )
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
