"""Verified masks (annotations) of survey images: uploaded, confirmed from the prediction,
or corrected in the browser. Each save is a new version; the newest is the current one."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from crackportal.inspections.imaging import mask_bool, upright_size
from crackportal.inspections.models import Annotation, SurveyImage
from crackportal.inspections.uploads import UploadError


def _png(mask: np.ndarray) -> ContentFile:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(buffer, format="PNG")
    return ContentFile(buffer.getvalue())


def _same_as_current(image: SurveyImage, mask: np.ndarray) -> Annotation | None:
    current = image.annotations.filter(is_current=True).first()
    if current is None or current.crack_pixels != int(mask.sum()):
        return None
    with current.mask.open("rb") as fh, Image.open(fh) as im:
        same = np.array_equal(np.asarray(im.convert("L")) > 127, mask)
    return current if same else None


def _save(image: SurveyImage, mask: np.ndarray, source: str, user) -> Annotation:
    """Store mask as the image's new current version (the same mask again is not a new one)."""
    unchanged = _same_as_current(image, mask)
    if unchanged is not None:
        return unchanged
    annotation = Annotation(
        image=image, source=source, crack_pixels=int(mask.sum()), created_by=user
    )
    annotation.mask.save(f"img{image.pk}_{source}.png", _png(mask), save=False)
    try:
        with transaction.atomic():
            SurveyImage.objects.select_for_update().filter(pk=image.pk).first()
            last = image.annotations.order_by("-version").values_list("version", flat=True).first()
            image.annotations.filter(is_current=True).update(is_current=False)
            annotation.version = (last or 0) + 1
            annotation.is_current = True
            annotation.save()
    except Exception:
        annotation.mask.delete(save=False)
        raise
    return annotation


# no survey photo is mostly crack: a mask that says so is inverted or filled by mistake
MAX_CRACK_SHARE = 0.5


def upload_annotation(
    *, image: SurveyImage, stream, user=None, source: str = Annotation.Source.UPLOADED
) -> Annotation:
    """Store an uploaded ground-truth mask (0/1, 0/255 or colour on black) for image."""
    try:
        with Image.open(stream) as im:
            # the size from the header first: a huge mask is refused before it is decoded
            width, height = upright_size(im)
            if (height, width) != (image.height, image.width):
                raise UploadError(
                    f"the mask is {width}×{height} px but the image is {image.width}×{image.height} px"
                )
            mask = mask_bool(ImageOps.exif_transpose(im))
    except UploadError:
        raise
    except Image.DecompressionBombError:
        raise UploadError(
            "the mask is far larger than any survey image; nothing was stored"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UploadError(f"the mask is not a readable image ({exc})") from None
    if mask.mean() > MAX_CRACK_SHARE:
        # cracks drawn black on white, or a fill: measured, it is one crack as big as the image
        raise UploadError(
            f"the mask marks {mask.mean():.0%} of the image as crack: cracks must be white (or "
            "any colour) on black. Is it inverted? Nothing was stored"
        )
    return _save(image, mask, source, user)


def confirm_prediction(*, image: SurveyImage, user=None) -> Annotation:
    """Keep the image's predicted mask as verified ground truth."""
    if not image.mask:
        raise UploadError("this image has no prediction yet")
    with image.mask.open("rb") as fh, Image.open(fh) as im:
        mask = np.asarray(im.convert("L")) > 127
    return _save(image, mask, Annotation.Source.CONFIRMED, user)
