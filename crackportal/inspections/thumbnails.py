"""Small JPEG crops of a crack from its survey image, with the crack outlined."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from crackportal.inspections.imaging import rgb8

THUMB_PX = 320


def crack_thumbnail(crack, margin_px: int = 24) -> bytes:
    """A JPEG of the crack's bounding box (plus margin), scaled to fit THUMB_PX, polyline drawn in red."""
    x0, y0, x1, y1 = crack.bbox_px
    with crack.image.file.open("rb") as fh, Image.open(fh) as im:
        upright = Image.fromarray(rgb8(im))  # the pixels the crack was found in
    box = (
        max(0, x0 - margin_px),
        max(0, y0 - margin_px),
        min(upright.width, x1 + margin_px),
        min(upright.height, y1 + margin_px),
    )
    crop = upright.crop(box)
    scale = min(1.0, THUMB_PX / max(crop.size))
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
    draw = ImageDraw.Draw(crop)
    for branch in crack.polyline_px:
        points = [((x - box[0]) * scale, (y - box[1]) * scale) for x, y in branch]
        if len(points) > 1:
            draw.line(points, fill=(255, 40, 40), width=2)
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
