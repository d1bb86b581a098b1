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


IMAGE_THUMB_PX = 192


def image_thumbnail(image) -> bytes:
    """A JPEG of the whole survey image at most IMAGE_THUMB_PX on its long side, made once and
    kept in storage (thumbs/<run>/<image>.jpg); a JPEG is decoded at a reduced scale (draft).
    FileNotFoundError when there is no stored image; ValueError when it cannot be read."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    if not image.file:
        raise FileNotFoundError("no stored image")
    name = f"thumbs/{image.run_id}/{image.pk}-{image.status}.jpg"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as fh:
            return fh.read()
    try:
        with image.file.open("rb") as fh, Image.open(fh) as im:
            im.draft("RGB", (IMAGE_THUMB_PX * 2, IMAGE_THUMB_PX * 2))  # JPEG: decode at 1/2–1/8
            small = Image.fromarray(rgb8(im))
    except OSError as exc:
        raise ValueError(f"unreadable image: {exc}") from None
    small.thumbnail((IMAGE_THUMB_PX, IMAGE_THUMB_PX))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    data = buffer.getvalue()
    default_storage.save(name, ContentFile(data))
    return data


def area_thumbnail(image, chainage_m: tuple[float, float], arc_m: tuple[float, float]) -> bytes:
    """A JPEG of the part of a survey image that shows a stretch of lining (tunnel metres):
    "before" photos of a place where a crack is new. The crop is padded by a fifth each side."""
    (c0, c1), (a0, a1) = sorted(chainage_m), sorted(arc_m)
    pad_c, pad_a = max((c1 - c0) * 0.2, 0.02), max((a1 - a0) * 0.2, 0.02)
    span_c = image.chainage_end_m - image.chainage_start_m
    span_a = image.arc_end_m - image.arc_start_m
    xs = [(c - image.chainage_start_m) / span_c * image.width for c in (c0 - pad_c, c1 + pad_c)]
    ys = [(a - image.arc_start_m) / span_a * image.height for a in (a0 - pad_a, a1 + pad_a)]
    # a square around the place, so a long thin crack's place still reads as a photo
    side = max(max(xs) - min(xs), max(ys) - min(ys))
    cx, cy = sum(xs) / 2, sum(ys) / 2
    xs, ys = [cx - side / 2, cx + side / 2], [cy - side / 2, cy + side / 2]
    with image.file.open("rb") as fh, Image.open(fh) as im:
        upright = Image.fromarray(rgb8(im))
    box = (
        max(0, int(min(xs))),
        max(0, int(min(ys))),
        min(upright.width, int(max(xs)) + 1),
        min(upright.height, int(max(ys)) + 1),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError("the stretch is outside the image")
    crop = upright.crop(box)
    scale = min(1.0, THUMB_PX / max(crop.size))
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
