"""Ground-truth annotations: upload a mask, or confirm a prediction as ground truth."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image, UnidentifiedImageError

from crackportal.inspections.models import Annotation, SurveyImage
from crackportal.inspections.uploads import UploadError
from inference.arrays import binarise_mask


def _png(mask: np.ndarray) -> ContentFile:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(buffer, format="PNG")
    return ContentFile(buffer.getvalue())


def _save(image: SurveyImage, mask: np.ndarray, source: str, user) -> Annotation:
    annotation = Annotation(
        image=image, source=source, crack_pixels=int(mask.sum()), created_by=user
    )
    annotation.mask.save(f"img{image.pk}_{source}.png", _png(mask), save=False)
    try:
        annotation.save()
    except Exception:
        annotation.mask.delete(save=False)
        raise
    return annotation


def upload_annotation(*, image: SurveyImage, stream, user=None) -> Annotation:
    """Store an uploaded ground-truth mask (0/1, 0/255 or colour on black) for image."""
    try:
        with Image.open(stream) as im:
            array = np.asarray(
                im.convert("RGB") if im.mode not in ("L", "1", "P") else im.convert("L")
            )
    except (UnidentifiedImageError, OSError) as exc:
        raise UploadError(f"the mask is not a readable image ({exc})") from None
    if array.shape[:2] != (image.height, image.width):
        raise UploadError(
            f"the mask is {array.shape[1]}×{array.shape[0]} px but the image is {image.width}×{image.height} px"
        )
    return _save(image, binarise_mask(array), Annotation.Source.UPLOADED, user)


def confirm_prediction(*, image: SurveyImage, user=None) -> Annotation:
    """Keep the image's predicted mask as verified ground truth."""
    if not image.mask:
        raise UploadError("this image has no prediction yet")
    with image.mask.open("rb") as fh, Image.open(fh) as im:
        mask = np.asarray(im.convert("L")) > 127
    return _save(image, mask, Annotation.Source.CONFIRMED, user)
