"""Worker side of inspections: claim a survey image, segment it, measure its cracks, store them.

Only the Celery tasks import this module: it loads the neural network (torch, OpenCV,
scikit-image), which the web process never needs.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image

from crackportal import jobs, media
from crackportal.inspections import imaging, pyramid, services
from crackportal.inspections.models import (
    Annotation,
    Crack,
    CrackReview,
    InspectionRun,
    SurveyImage,
)
from crackportal.inspections.severity import severity_for_width
from crackportal.modelops import services as modelops
from crackportal.modelops.predictors import get_predictor
from inference.geometry import extract_cracks


class ImageProcessingError(RuntimeError):
    """A permanent problem with one image (retrying will not help)."""


class StageClock:
    """Seconds per stage of processing one image (SurveyImage.stage_seconds)."""

    def __init__(self):
        self.started = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = round(now - self.last, 4)
        self.last = now

    def finished(self) -> dict[str, float]:
        return {**self.laps, "total": round(time.perf_counter() - self.started, 4)}


def _read_rgb(image: SurveyImage) -> np.ndarray:
    Image.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
    try:
        with image.file.open("rb") as fh, Image.open(fh) as im:
            return imaging.rgb8(im)
    except FileNotFoundError:
        raise ImageProcessingError("the stored file is missing") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageProcessingError(f"the image cannot be decoded ({exc})") from None


def _png(array: np.ndarray, mode: str) -> ContentFile:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG", optimize=False, compress_level=3)
    return ContentFile(buffer.getvalue())


def _overlay(mask: np.ndarray) -> np.ndarray:
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[mask] = (255, 40, 40, 255)
    return rgba


def _crack_rows(image: SurveyImage, cracks, version) -> list[Crack]:
    rows = []
    for index, c in enumerate(cracks):
        rows.append(
            Crack(
                image=image,
                index=index,
                polyline_px=c.polyline_px,
                bbox_px=list(c.bbox_px),
                **image.place(c.polyline_px, c.bbox_px),
                length_mm=c.length_mm,
                width_max_mm=c.width_max_mm,
                width_mean_mm=c.width_mean_mm,
                width_p95_mm=c.width_p95_mm,
                resolution_mm=c.mm_per_px,
                area_mm2=c.area_mm2,
                orientation=c.orientation,
                severity=severity_for_width(c.width_max_mm),
                model_version=version,
            )
        )
    return rows


def _replace_cracks(image: SurveyImage, cracks, version) -> None:
    """The image's crack rows replaced by cracks (inside the caller's transaction).

    One writer per image at a time: a duplicate delivery waits, then replaces; never adds.
    """
    SurveyImage.objects.select_for_update().filter(pk=image.pk).first()
    Crack.objects.filter(image=image).delete()
    Crack.objects.bulk_create(_crack_rows(image, cracks, version))


def claim_image(*, image_id: int, worker: str = "") -> bool:
    """Move a queued image (or one whose worker was lost) to processing and count the attempt.

    False when the image is gone, already done or failed (a duplicate message is a no-op),
    or out of attempts: then it is marked failed with the reason.
    """
    claimable = SurveyImage.objects.filter(
        pk=image_id, status__in=services.ACTIVE, attempts__lt=settings.IMAGE_MAX_ATTEMPTS
    )
    if jobs.claim(
        claimable,
        status=SurveyImage.Status.PROCESSING,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        error="",
        worker=worker[:200],
    ):
        return True
    spent = SurveyImage.objects.filter(pk=image_id, status__in=services.ACTIVE).values_list(
        "attempts", flat=True
    )
    if spent:
        services.give_up(image_id=image_id, attempts=spent[0])
    return False


def measure_cracks(image: SurveyImage, rgb, mask, proba, threshold: float):
    """Cracks of one image with their geometry: widths on the probability map and the photo."""
    return extract_cracks(
        mask,
        mm_per_px=image.mm_per_px or settings.DEFAULT_MM_PER_PX,
        proba=proba,
        threshold=threshold,
        image=rgb,
    )


def segment_survey_image(*, image_id: int) -> int:
    """Predict the crack mask of one image, measure its cracks and store them; return the crack count.

    Stored beside the photo: the mask, an overlay and the probability map (8-bit PNG, p × 255),
    so cracks can be measured again without the network. Running it again replaces all of
    them and the image's cracks; it never adds duplicates.
    """
    image = SurveyImage.objects.select_related("run__requested_model").get(pk=image_id)
    clock = StageClock()
    # a reprocess may ask for a model other than the active one
    version = image.run.requested_model or modelops.active_model_version()
    predictor = get_predictor(version)
    clock.lap("prepare")
    rgb = _read_rgb(image)
    clock.lap("decode")
    mask, proba = predictor.predict_mask_and_proba(rgb)
    clock.lap("predict")
    cracks = measure_cracks(image, rgb, mask, proba, predictor.config.threshold)
    clock.lap("geometry")

    if pyramid.needs_pyramid(*rgb.shape[1::-1]):
        # built in a local scratch folder, then stored (filesystem or object storage)
        with tempfile.TemporaryDirectory(prefix="pyramid-") as scratch:
            pyramid.build_dzi(Image.fromarray(rgb), Path(scratch), "photo", "jpg")
            pyramid.build_dzi(Image.fromarray(_overlay(mask)), Path(scratch), "overlay", "png")
            media.publish_tree(Path(scratch), image.pyramid_prefix)
    clock.lap("pyramid")

    files = (image.mask, image.overlay, image.probability)
    old_files = [f.name for f in files if f]
    base = f"run{image.run_id}_img{image.pk}"
    image.mask.save(f"{base}_mask.png", _png(mask.astype(np.uint8) * 255, "L"), save=False)
    image.overlay.save(f"{base}_overlay.png", _png(_overlay(mask), "RGBA"), save=False)
    image.probability.save(f"{base}_proba.png", _png(proba, "L"), save=False)
    clock.lap("encode")
    try:
        with transaction.atomic():
            _replace_cracks(image, cracks, version)
            image.status = SurveyImage.Status.DONE
            image.processed_at = timezone.now()
            image.model_version = version
            image.error = ""
            image.save(
                update_fields=[
                    "mask",
                    "overlay",
                    "probability",
                    "status",
                    "processed_at",
                    "model_version",
                    "error",
                ]
            )
            InspectionRun.objects.filter(pk=image.run_id, model_version__isnull=True).update(
                model_version=version
            )
    except Exception:
        for f in files:
            f.delete(save=False)
        raise
    clock.lap("database")
    # written once the transaction above is timed too
    SurveyImage.objects.filter(pk=image.pk).update(stage_seconds=clock.finished())
    for name in old_files:
        if name not in {f.name for f in files}:
            default_storage.delete(name)
    services.refresh_run_status(run_id=image.run_id)
    return len(cracks)


def _read_png(field_file) -> np.ndarray | None:
    if not field_file:
        return None
    with field_file.open("rb") as fh, Image.open(fh) as im:
        return np.asarray(im.convert("L"))


def remeasure_image(*, image_id: int) -> int:
    """Measure a done image's cracks again from its stored mask, probability map and photo.

    No network: the geometry code alone runs. Images processed before probability maps were
    stored are measured on their mask. The cracks are replaced (track them again afterwards).
    """
    image = SurveyImage.objects.select_related("model_version").get(pk=image_id)
    mask = _read_png(image.mask)
    if mask is None:
        raise ImageProcessingError("no stored mask: segment the image first")
    proba = _read_png(image.probability)
    threshold = float(
        (image.model_version.config if image.model_version else {}).get("threshold", 0.5)
    )
    cracks = measure_cracks(image, _read_rgb(image), mask > 127, proba, threshold)
    with transaction.atomic():
        _replace_cracks(image, cracks, image.model_version)
    return len(cracks)


def measure_from_annotation(*, annotation_id: int) -> int:
    """The image's cracks measured again from its current verified mask (a correction).

    The verified mask replaces the prediction as what the cracks are made of; widths are
    refined on the photo. The new cracks count as reviewed (accepted by the annotator).
    A superseded version does nothing: the newer one's own task measures.
    """
    annotation = Annotation.objects.select_related("image__model_version", "created_by").get(
        pk=annotation_id
    )
    if not annotation.is_current:
        return 0
    image = annotation.image
    mask = _read_png(annotation.mask) > 127
    cracks = measure_cracks(image, _read_rgb(image), mask, None, 0.5)
    with transaction.atomic():
        _replace_cracks(image, cracks, image.model_version)
        Crack.objects.filter(image=image).update(review=Crack.Review.ACCEPTED)
        CrackReview.objects.bulk_create(
            CrackReview(crack=c, decision=Crack.Review.ACCEPTED, reviewer=annotation.created_by)
            for c in Crack.objects.filter(image=image)
        )
    return len(cracks)
