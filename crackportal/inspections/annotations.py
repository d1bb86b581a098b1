"""Ground-truth annotations: upload a mask, or confirm a prediction as ground truth."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from crackportal.inspections.imaging import mask_bool, upright_size
from crackportal.inspections.models import Annotation, SurveyImage
from crackportal.inspections.uploads import UploadError


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
    return _save(image, mask, Annotation.Source.UPLOADED, user)


def confirm_prediction(*, image: SurveyImage, user=None) -> Annotation:
    """Keep the image's predicted mask as verified ground truth."""
    if not image.mask:
        raise UploadError("this image has no prediction yet")
    with image.mask.open("rb") as fh, Image.open(fh) as im:
        mask = np.asarray(im.convert("L")) > 127
    return _save(image, mask, Annotation.Source.CONFIRMED, user)
