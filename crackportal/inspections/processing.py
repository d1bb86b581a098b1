"""Worker side of inspections: claim a survey image, segment it, measure its cracks, store them.

Only the Celery tasks import this module: it loads the neural network (torch, OpenCV,
scikit-image), which the web process never needs.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image

from crackportal import media
from crackportal.inspections import imaging, pyramid, reviews, services
from crackportal.inspections.models import (
    Annotation,
    Crack,
    CrackReview,
    InspectionRun,
    SurveyImage,
)
from crackportal.inspections.severity import severity_for_width
from crackportal.modelops import services as modelops
from crackportal.modelops.models import ModelVersion
from crackportal.modelops.predictors import get_predictor
from inference.geometry import extract_cracks

log = logging.getLogger(__name__)


class ImageProcessingError(RuntimeError):
    """A permanent problem with one image (retrying will not help)."""


class StageClock:
    """Seconds per stage of processing one image (SurveyImage.stage_seconds)."""

    def __init__(self):
        self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = round(now - self.last, 4)
        self.last = now

    def finished(self, **more: float) -> dict[str, float]:
        """The laps (and any more stages timed elsewhere) with their total."""
        laps = {**self.laps, **more}
        return {**laps, "total": round(sum(laps.values()), 4)}


def _read_rgb(image: SurveyImage) -> np.ndarray:
    Image.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
    try:
        with image.file.open("rb") as fh, Image.open(fh) as im:
            return imaging.rgb8(im)
    except FileNotFoundError:
        raise ImageProcessingError("the stored file is missing") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageProcessingError(f"the image cannot be decoded ({exc})") from None


def _png(grey: np.ndarray) -> ContentFile:
    """An 8-bit grey PNG, run-length deflated: a third of zlib's default time on masks and
    probability maps (mostly zero), and smaller."""
    ok, data = cv2.imencode(".png", grey, [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
    if not ok:
        raise ImageProcessingError("the mask could not be encoded as PNG")
    return ContentFile(data.tobytes())


OVERLAY_RGB = (255, 40, 40)


def _overlay_png(mask: np.ndarray) -> ContentFile:
    """The crack overlay: transparent, red where the mask is set (as the pyramid's tiles)."""
    buffer = io.BytesIO()
    pyramid.mask_image(mask, OVERLAY_RGB).save(buffer, format="PNG", compress_level=3)
    return ContentFile(buffer.getvalue())


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


def _replace_cracks(measured: list[tuple[SurveyImage, list, ModelVersion | None]]) -> None:
    """Each image's crack rows replaced by its cracks (inside the caller's transaction).

    The images' rows are locked in pk order first: one writer per image at a time, so a
    duplicate delivery waits, then replaces; never adds.
    """
    ids = sorted(image.pk for image, _, _ in measured)
    list(
        SurveyImage.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk")
    )
    Crack.objects.filter(image_id__in=ids).delete()
    Crack.objects.bulk_create(
        [row for image, cracks, version in measured for row in _crack_rows(image, cracks, version)]
    )


def claim_images(*, image_ids: list[int], worker: str = "") -> list[int]:
    """Move queued images (or ones whose worker was lost) to processing; count the attempt.

    Returns the ids this call won, in pk order. An image gone, already done or failed (a
    duplicate message) is skipped; one out of attempts is marked failed with the reason.
    Rows are locked while claimed (PostgreSQL: FOR UPDATE; SQLite: its transactions take the
    write lock up front), so two deliveries of one batch never both win an image.
    """
    with transaction.atomic():
        won = list(
            SurveyImage.objects.select_for_update()
            .filter(
                pk__in=image_ids,
                status__in=services.ACTIVE,
                attempts__lt=settings.IMAGE_MAX_ATTEMPTS,
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if won:
            SurveyImage.objects.filter(pk__in=won).update(
                status=SurveyImage.Status.PROCESSING,
                attempts=F("attempts") + 1,
                started_at=timezone.now(),
                error="",
                worker=worker[:200],
            )
    lost = set(image_ids) - set(won)
    if lost:
        spent = SurveyImage.objects.filter(pk__in=lost, status__in=services.ACTIVE)
        for image_id, attempts in spent.values_list("pk", "attempts"):
            services.give_up(image_id=image_id, attempts=attempts)
    return won


def claim_image(*, image_id: int, worker: str = "") -> bool:
    """claim_images for one image: True if this call won it."""
    return bool(claim_images(image_ids=[image_id], worker=worker))


def measure_cracks(image: SurveyImage, rgb, mask, proba, threshold: float):
    """Cracks of one image with their geometry: widths on the probability map and the photo."""
    return extract_cracks(
        mask,
        mm_per_px=image.mm_per_px or settings.DEFAULT_MM_PER_PX,
        proba=proba,
        threshold=threshold,
        image=rgb,
    )


@dataclass
class _Segmented:
    """One image predicted, measured and its files stored, waiting for the database write."""

    image: SurveyImage
    cracks: list
    version: ModelVersion
    old_files: list[str]
    clock: StageClock


def _segment_one(image: SurveyImage, version) -> _Segmented:
    """Network, geometry, pyramid and files of one image; the database is written by the caller."""
    clock = StageClock()
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
            pyramid.build_dzi(rgb, Path(scratch), "photo")
            pyramid.build_mask_dzi(mask, Path(scratch), "overlay", OVERLAY_RGB)
            media.publish_tree(Path(scratch), image.pyramid_prefix)
    clock.lap("pyramid")

    files = (image.mask, image.overlay, image.probability)
    old_files = [f.name for f in files if f]
    image.overlay_annotation = None  # the overlay is the prediction again
    base = f"run{image.run_id}_img{image.pk}"
    try:
        image.mask.save(f"{base}_mask.png", _png(mask.astype(np.uint8) * 255), save=False)
        image.overlay.save(f"{base}_overlay.png", _overlay_png(mask), save=False)
        image.probability.save(f"{base}_proba.png", _png(proba), save=False)
    except Exception:
        _delete_new_files(image, old_files)
        raise
    clock.lap("encode")
    return _Segmented(image, cracks, version, old_files, clock)


def _delete_new_files(image: SurveyImage, old_files: list[str]) -> None:
    """The files this attempt stored (not the ones a previous run left), so nothing half-written stays."""
    for f in (image.mask, image.overlay, image.probability):
        if f and f.name not in old_files:
            f.delete(save=False)


def _update_rows(images: list[SurveyImage], fields: list[str]) -> None:
    """Write these fields of each image: one prepared statement run for all rows.

    Django's bulk_update builds a CASE per field and row, ten times slower for a batch.
    """
    meta, quote = SurveyImage._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    sets = ", ".join(f"{quote(c.column)} = %s" for c in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(meta.pk.column)} = %s"
    rows = [
        [c.get_db_prep_save(getattr(image, c.attname), connection) for c in columns] + [image.pk]
        for image in images
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _store_segmented(batch: list[_Segmented]) -> None:
    """The cracks and image rows of a batch, in one transaction (see _replace_cracks)."""
    ids = sorted(s.image.pk for s in batch)
    now = timezone.now()
    for s in batch:
        s.image.model_version = s.version
    with transaction.atomic():
        _replace_cracks([(s.image, s.cracks, s.version) for s in batch])
        # one statement for the batch's own files and model, one for what they share
        _update_rows(
            [s.image for s in batch],
            ["mask", "overlay", "overlay_annotation", "probability", "model_version"],
        )
        SurveyImage.objects.filter(pk__in=ids).update(
            status=SurveyImage.Status.DONE, processed_at=now, error=""
        )
        for run_id, version in {(s.image.run_id, s.version.pk) for s in batch}:
            InspectionRun.objects.filter(pk=run_id, model_version__isnull=True).update(
                model_version_id=version
            )
    for s in batch:  # the instances agree with their rows
        s.image.status, s.image.processed_at, s.image.error = SurveyImage.Status.DONE, now, ""


def segment_survey_images(*, image_ids: list[int]) -> dict[int, BaseException | None]:
    """Segment several images in one go; per image, None when stored or the exception that stopped it.

    Small survey images arrive in batches (services.enqueue_images): the model lookup, the
    database transaction and the run's status are shared by the batch, the network and the
    geometry run image by image (a batched network is no faster on the CPU). One image's
    failure never stops the others. Per image, beside the photo: the mask, an overlay and
    the probability map (8-bit PNG, p × 255), so cracks can be measured again without the
    network. Running it again replaces all of them and the image's cracks; never duplicates.
    """
    images = SurveyImage.objects.select_related("run__requested_model").filter(pk__in=image_ids)
    outcomes: dict[int, BaseException | None] = {}
    active = None
    segmented: list[_Segmented] = []
    for image in images.order_by("pk"):
        try:
            # a reprocess may ask for a model other than the active one
            requested = image.run.requested_model
            if requested is None and active is None:
                active = modelops.active_model_version()
            version = requested or active
            segmented.append(_segment_one(image, version))
            outcomes[image.pk] = None
        except Exception as exc:  # noqa: BLE001 - handed back: the task decides retry or fail
            outcomes[image.pk] = exc
    if not segmented:
        return outcomes
    # an image with a verified mask keeps its cracks measured from it (and their decisions):
    # a model, however new, does not overrule what an inspector verified
    verified = _verified_masks([s.image.pk for s in segmented])
    decided = {pk: reviews.reviewed_before(pk) for pk in verified}
    started = time.perf_counter()
    try:
        _store_segmented(segmented)
    except Exception as exc:  # noqa: BLE001 - nothing of this batch was written
        for s in segmented:
            _delete_new_files(s.image, s.old_files)
            outcomes[s.image.pk] = exc
        return outcomes
    database = round((time.perf_counter() - started) / len(segmented), 4)
    for s in segmented:
        s.image.stage_seconds = s.clock.finished(database=database)
    # written once the transaction above is timed too
    _update_rows([s.image for s in segmented], ["stage_seconds"])
    for s in segmented:
        new = {s.image.mask.name, s.image.overlay.name, s.image.probability.name}
        for name in s.old_files:
            if name not in new:
                default_storage.delete(name)
    for image_id, annotation_id in sorted(verified.items()):
        try:
            _measure_verified(image_id, annotation_id, decided[image_id])
        except Exception:  # noqa: BLE001 - the prediction's cracks stay; said in the log
            log.exception("image %s: measuring its verified mask again failed", image_id)
    for run_id in sorted({s.image.run_id for s in segmented}):
        services.refresh_run_status(run_id=run_id)
    return outcomes


def segment_survey_image(*, image_id: int) -> int:
    """Segment one image (see segment_survey_images); return its crack count, or raise its error."""
    error = segment_survey_images(image_ids=[image_id]).get(image_id)
    if error is not None:
        raise error
    return Crack.objects.filter(image_id=image_id).count()


def _read_png(field_file) -> np.ndarray | None:
    if not field_file:
        return None
    with field_file.open("rb") as fh, Image.open(fh) as im:
        return np.asarray(im.convert("L"))


def remeasure_image(*, image_id: int) -> int:
    """Measure a done image's cracks again from its stored mask, probability map and photo.

    No network: the geometry code alone runs. Images processed before probability maps were
    stored are measured on their mask; an image with a verified mask is measured from that.
    The cracks are replaced, the review work on them kept (track them again afterwards).
    """
    decided = reviews.reviewed_before(image_id)
    verified = _verified_masks([image_id]).get(image_id)
    if verified is not None:  # its cracks are made of a verified mask
        return _measure_verified(image_id, verified, decided)
    image = SurveyImage.objects.select_related("model_version").get(pk=image_id)
    mask = _read_png(image.mask)
    if mask is None:
        raise ImageProcessingError("no stored mask: segment the image first")
    cracks = measure_cracks(
        image, _read_rgb(image), mask > 127, _read_png(image.probability), _threshold(image)
    )
    with transaction.atomic():
        _replace_cracks([(image, cracks, image.model_version)])
        reviews.carry_reviews(image, decided)
    return Crack.objects.filter(image_id=image_id).count()  # merged and split as reviewed


def _verified_masks(image_ids: list[int]) -> dict[int, int]:
    """{image id: its current verified mask's annotation id}, for the images that have one:
    what their cracks are made of, whatever model segments them again."""
    return dict(
        Annotation.objects.filter(image_id__in=image_ids, is_current=True).values_list(
            "image_id", "pk"
        )
    )


def _measure_verified(image_id: int, annotation_id: int, decided: list) -> int:
    """The image's cracks measured from its verified mask, keeping the review work done."""
    measure_from_annotation(annotation_id=annotation_id, kept=decided)
    return Crack.objects.filter(image_id=image_id).count()  # merged and split as reviewed


def _threshold(image: SurveyImage) -> float:
    return float((image.model_version.config if image.model_version else {}).get("threshold", 0.5))


def measure_from_annotation(*, annotation_id: int, kept: list | None = None) -> int:
    """The image's cracks measured again from its current verified mask (a correction).

    The verified mask replaces the prediction as what the cracks are made of; widths are
    refined on the photo. The new cracks count as reviewed (accepted by the annotator).
    A confirmed prediction is measured as the worker measured it (its probability map too),
    so confirming changes no figure, only that each crack has been checked.
    A superseded version does nothing: the newer one's own task measures.
    kept (reviews.reviewed_before, when the same mask is measured again): the review work
    on the cracks before, carried over in the same transaction in place of a new acceptance.
    """
    annotation = Annotation.objects.select_related("image__model_version", "created_by").get(
        pk=annotation_id
    )
    if not annotation.is_current:
        return 0
    image = annotation.image
    mask = _read_png(annotation.mask) > 127
    proba, threshold = None, 0.5
    if annotation.source == Annotation.Source.CONFIRMED:
        proba, threshold = _read_png(image.probability), _threshold(image)
    cracks = measure_cracks(image, _read_rgb(image), mask, proba, threshold)
    # the overlay shows what the cracks are made of: this mask, not the prediction any more
    if image.has_pyramid():
        with tempfile.TemporaryDirectory(prefix="pyramid-") as scratch:
            pyramid.build_mask_dzi(mask, Path(scratch), "overlay", OVERLAY_RGB)
            media.publish_tree(Path(scratch), image.pyramid_prefix, only_its_entries=True)
    old_overlay = image.overlay.name
    image.overlay.save(
        f"run{image.run_id}_img{image.pk}_overlay_v{annotation.version}.png",
        _overlay_png(mask),
        save=False,
    )
    image.overlay_annotation = annotation
    try:
        with transaction.atomic():
            _replace_cracks([(image, cracks, image.model_version)])
            Crack.objects.filter(image=image).update(review=Crack.Review.ACCEPTED)
            if kept is None:
                CrackReview.objects.bulk_create(
                    CrackReview(
                        crack=c, decision=Crack.Review.ACCEPTED, reviewer=annotation.created_by
                    )
                    for c in Crack.objects.filter(image=image)
                )
            else:  # its history as it was: the annotator accepted it once, when verifying
                reviews.carry_reviews(image, kept)
            _update_rows([image], ["overlay", "overlay_annotation"])
    except Exception:
        image.overlay.delete(save=False)
        raise
    if old_overlay and old_overlay != image.overlay.name:
        default_storage.delete(old_overlay)
    return len(cracks)
