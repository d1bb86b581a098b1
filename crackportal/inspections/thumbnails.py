"""Small JPEGs from survey images: a crack with its outline, a place of the lining, a whole image."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from crackportal.inspections.imaging import rgb8

THUMB_PX = 320


def _upright(image) -> Image.Image:
    """The survey image's pixels as the crack was found in them (upright, 8-bit RGB)."""
    with image.file.open("rb") as fh, Image.open(fh) as im:
        return Image.fromarray(rgb8(im))


def _crop(upright: Image.Image, x0, y0, x1, y1) -> tuple[Image.Image, tuple, float]:
    """The box (clipped to the image) scaled to fit THUMB_PX: (crop, box, scale)."""
    box = (
        max(0, int(x0)),
        max(0, int(y0)),
        min(upright.width, int(x1)),
        min(upright.height, int(y1)),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError("the place is outside the image")
    crop = upright.crop(box)
    scale = min(1.0, THUMB_PX / max(crop.size))
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
    return crop, box, scale


def _jpeg(im: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def crack_thumbnail(crack, margin_px: int = 24) -> bytes:
    """A JPEG of the crack's bounding box (plus margin), scaled to fit THUMB_PX, polyline drawn in red."""
    x0, y0, x1, y1 = crack.bbox_px
    crop, box, scale = _crop(
        _upright(crack.image), x0 - margin_px, y0 - margin_px, x1 + margin_px, y1 + margin_px
    )
    draw = ImageDraw.Draw(crop)
    for branch in crack.polyline_px:
        points = [((x - box[0]) * scale, (y - box[1]) * scale) for x, y in branch]
        if len(points) > 1:
            draw.line(points, fill=(255, 40, 40), width=2)
    return _jpeg(crop)


IMAGE_THUMB_PX = 192


def image_thumbnail(image) -> bytes:
    """A JPEG of the whole survey image at most IMAGE_THUMB_PX on its long side, made once and
    kept in storage (thumbs/<run>/<image>.jpg); a JPEG is decoded at a reduced scale (draft).
    FileNotFoundError when there is no stored image; ValueError when it cannot be read."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    if not image.file:
        raise FileNotFoundError("no stored image")
    name = f"thumbs/{image.run_id}/{image.pk}.jpg"  # the photo: whatever its status
    try:  # made before: one read, no existence check first
        with default_storage.open(name, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        pass
    try:
        with image.file.open("rb") as fh, Image.open(fh) as im:
            im.draft("RGB", (IMAGE_THUMB_PX * 2, IMAGE_THUMB_PX * 2))  # JPEG: decode at 1/2–1/8
            small = Image.fromarray(rgb8(im))
    except OSError as exc:
        raise ValueError(f"unreadable image: {exc}") from None
    small.thumbnail((IMAGE_THUMB_PX, IMAGE_THUMB_PX))
    data = _jpeg(small, quality=80)
    default_storage.save(name, ContentFile(data))
    return data


def area_thumbnail(image, chainage_m: tuple[float, float], arc_m: tuple[float, float]) -> bytes:
    """A JPEG of the part of a survey image that shows a stretch of lining (tunnel metres):
    "before" photos of a place where a crack is new. The crop is padded by a fifth each side."""
    (c0, c1), (a0, a1) = sorted(chainage_m), sorted(arc_m)
    pad_c, pad_a = max((c1 - c0) * 0.2, 0.02), max((a1 - a0) * 0.2, 0.02)
    (x0, y0), (x1, y1) = (
        image.m_to_px(c0 - pad_c, a0 - pad_a),
        image.m_to_px(c1 + pad_c, a1 + pad_a),
    )
    # a square around the place, so a long thin crack's place still reads as a photo
    side = max(abs(x1 - x0), abs(y1 - y0))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    crop, _, _ = _crop(
        _upright(image), cx - side / 2, cy - side / 2, cx + side / 2 + 1, cy + side / 2 + 1
    )
    return _jpeg(crop)
