"""Writes for inspections: create runs, take uploads, segment images, keep run status."""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.base import File
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from crackportal import jobs
from crackportal.inspections.models import Crack, InspectionRun, SurveyImage, UploadArchive
from crackportal.inspections.placement import (
    INCREASING,
    MANIFEST_MAX_BYTES,
    Layout,
    Placement,
    merge_manifests,
)
from crackportal.inspections.severity import severity_for_width
from crackportal.inspections.uploads import (
    Footprint,
    IncomingFile,
    UploadError,
    check_image,
    clean_file_name,
    clean_text,
    expand_zip,
)

log = logging.getLogger(__name__)
ACTIVE = (SurveyImage.Status.PENDING, SurveyImage.Status.QUEUED, SurveyImage.Status.PROCESSING)


@dataclass
class UploadResult:
    """What happened to each file of an upload."""

    accepted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # images without a manifest row
    unused_manifest_rows: list[str] = field(default_factory=list)  # rows without an image
    deferred: list[str] = field(default_factory=list)  # big zips unpacked by a worker


def create_run(*, tunnel, date, label: str = "", created_by=None) -> InspectionRun:
    return InspectionRun.objects.create(
        tunnel=tunnel, date=date, label=label, created_by=created_by
    )


def _store_image(
    run: InspectionRun,
    incoming: IncomingFile,
    placement: Placement,
    result: UploadResult,
    sender: ImageSender,
) -> SurveyImage | None:
    name = clean_file_name(incoming.name)
    try:
        checked = check_image(incoming, settings.MAX_IMAGE_BYTES, settings.MAX_IMAGE_PIXELS)
    except UploadError as exc:
        SurveyImage.objects.create(
            run=run,
            original_name=name,
            size_bytes=incoming.size,
            status=SurveyImage.Status.FAILED,
            error=str(exc),
        )
        result.failed.append((name, str(exc)))
        return None
    # sha256 is never blank here: the run-and-file unique index answers, not a scan of the run
    existing = (
        run.images.filter(sha256=checked.sha256)
        .exclude(sha256="")
        .values_list("original_name", flat=True)
    )
    if existing:
        result.duplicates.append(f"{name} (same file as {existing[0]})")
        return None
    try:
        footprint = placement.footprint(name, checked.width, checked.height)
    except UploadError as exc:
        _record_failed(run, name, str(exc), incoming.size, result)
        return None
    image = SurveyImage(
        run=run,
        original_name=name,
        sha256=checked.sha256,
        size_bytes=checked.size_bytes,
        width=checked.width,
        height=checked.height,
        status=SurveyImage.Status.PENDING,
        **footprint.__dict__,
    )
    incoming.stream.seek(0)
    # the stored name carries no user text: the shown name is original_name
    suffix = PurePosixPath(name).suffix.lower()[:10]
    image.file.save(f"run{run.pk}_{checked.sha256[:16]}{suffix}", File(incoming.stream), save=False)
    try:
        with transaction.atomic():
            image.save()
            # each file is committed (and sent, small ones in batches) as it comes, so
            # processing starts mid-upload
            transaction.on_commit(lambda: sender.add(image.pk, checked.width * checked.height))
    except IntegrityError:  # the same file raced in through a parallel upload
        image.file.delete(save=False)
        result.duplicates.append(f"{name} (uploaded twice at once)")
        return None
    except Exception:
        image.file.delete(save=False)  # nothing half-written stays behind
        raise
    result.accepted.append(name)
    return image


def _record_failed(run, name: str, why: str, size: int, result: UploadResult) -> None:
    """A file that was refused: listed with its reason on the run page, nothing stored."""
    SurveyImage.objects.create(
        run=run,
        original_name=clean_text(name, 255),  # shown, never used as a path
        size_bytes=size,
        status=SurveyImage.Status.FAILED,
        error=why,
    )
    result.failed.append((name, why))


def upload_survey(
    *,
    run: InspectionRun,
    files: list[IncomingFile],
    manifest: IncomingFile | None = None,
    start_chainage_m: float | None = None,
    direction: str = INCREASING,
) -> UploadResult:
    """Store every good file of an upload (images and zips), record bad ones as failed, enqueue the rest.

    Call it outside a transaction: every file commits on its own. A manifest that cannot be
    used rejects the upload before anything is stored (UploadError). Files without a
    manifest row are laid out from start_chainage_m (default: after the inspection's images
    so far) in the given direction; the result lists them, and every manifest row unused.
    A big zip (over ZIP_INLINE_MAX_MEMBERS members or ZIP_INLINE_MAX_BYTES) is stored as it
    is and unpacked by a worker (expand_archive), so no upload depends on one request's time.
    """
    result = UploadResult()
    images: list[IncomingFile] = []
    separate = [manifest] if manifest is not None else []
    zipped: list[tuple[str, IncomingFile]] = []
    big_zips: list[IncomingFile] = []
    for incoming in files:
        if incoming.name.lower().endswith(".zip"):
            if _is_big_zip(incoming):
                big_zips.append(incoming)
                continue
            try:
                contents = expand_zip(
                    incoming.stream, settings.MAX_IMAGE_BYTES, settings.MAX_ZIP_BYTES
                )
            except UploadError as exc:
                _record_failed(run, incoming.name, str(exc), incoming.size, result)
                continue
            images += contents.files
            for member, why in contents.problems:
                _record_failed(run, f"{incoming.name}: {member}", why, 0, result)
            if contents.manifest is not None:
                zipped.append((incoming.name, contents.manifest))
        elif incoming.name.lower().endswith(".csv"):
            separate.append(incoming)
        else:
            images.append(incoming)
    footprints, conflicts = merge_manifests(separate, zipped)  # refuses a broken manifest
    result.warnings += conflicts
    InspectionRun.objects.filter(pk=run.pk).update(
        status=InspectionRun.Status.PROCESSING, finished_at=None
    )
    for archive in big_zips:
        _defer_archive(run, archive, separate, start_chainage_m, direction, result)
    _store_images(
        run, images, Placement(footprints, Layout.for_run(run, start_chainage_m, direction)),
        result, report_unused=not big_zips,
    )  # fmt: skip
    refresh_run_status(run_id=run.pk)
    return result


def _store_images(run, images, placement: Placement, result: UploadResult, report_unused=True):
    """Store each image where placement puts it; then say what the manifest did not place."""
    sender = ImageSender()
    for incoming in images:
        try:
            _store_image(run, incoming, placement, result, sender)
        except Exception as exc:  # one file's storage problem never drops the files after it
            jobs.log.error("storing %r failed", incoming.name, exc_info=exc)
            _record_failed(run, incoming.name, jobs.error_text(exc), incoming.size, result)
    transaction.on_commit(sender.flush)
    result.unplaced = placement.layout.unplaced if placement.footprints is not None else []
    result.unused_manifest_rows = placement.unused_rows() if report_unused else []
    if result.unplaced:
        result.warnings.append(
            f"not in the manifest, laid out along the chainage ({len(result.unplaced)}): "
            + ", ".join(result.unplaced)
        )
    if placement.shared_rows:
        result.warnings.append(
            "different files with the same name share one manifest row (check where they "
            f"lie and correct them on their image pages): {', '.join(placement.shared_rows)}"
        )
    if result.unused_manifest_rows:
        result.warnings.append(
            f"manifest rows without a file in this upload ({len(result.unused_manifest_rows)}): "
            + ", ".join(result.unused_manifest_rows)
        )


def _is_big_zip(incoming: IncomingFile) -> bool:
    """More members or bytes than one request should unpack (a bad zip is judged inline)."""
    try:
        incoming.stream.seek(0)
        with zipfile.ZipFile(incoming.stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    finally:
        incoming.stream.seek(0)
    return (
        len(members) > settings.ZIP_INLINE_MAX_MEMBERS
        or sum(m.file_size for m in members) > settings.ZIP_INLINE_MAX_BYTES
    )


def _defer_archive(run, incoming, separate, start_chainage_m, direction, result) -> None:
    """Store a big zip as it is and queue its unpacking (the run page shows its progress)."""
    manifest_csv = ""
    if separate:
        separate[0].stream.seek(0)
        manifest_csv = separate[0].stream.read(MANIFEST_MAX_BYTES).decode("utf-8-sig")
    archive = UploadArchive(
        run=run,
        name=clean_text(incoming.name, 255),
        size_bytes=incoming.size,
        manifest_csv=manifest_csv,
        start_chainage_m=start_chainage_m,
        direction=direction,
    )
    incoming.stream.seek(0)
    archive.file.save(f"run{run.pk}_upload.zip", File(incoming.stream), save=False)
    archive.save()
    transaction.on_commit(lambda: _enqueue_archive(archive.pk))
    result.deferred.append(archive.name)
    result.warnings.append(
        f"{archive.name} is large: it is unpacked in the background; the run page shows its "
        "progress and lists every file it could not take"
    )


def _enqueue_archive(archive_id: int) -> None:
    from crackportal.inspections.tasks import expand_archive_task

    try:
        expand_archive_task.delay(archive_id)
    except Exception:  # broker unreachable: the sweeper sends it again
        log.warning("could not send archive %s to the broker; it stays pending", archive_id)


def expand_archive(*, archive_id: int) -> bool:
    """Unpack a stored big zip into the run's images (worker side); False if already taken."""
    claimable = UploadArchive.objects.filter(
        pk=archive_id, status__in=[UploadArchive.Status.PENDING, UploadArchive.Status.PROCESSING]
    )
    if not jobs.claim(claimable, status=UploadArchive.Status.PROCESSING, error=""):
        return False
    archive = UploadArchive.objects.select_related("run").get(pk=archive_id)
    run, result = archive.run, UploadResult()
    with archive.file.open("rb") as fh:
        try:
            contents = expand_zip(fh, settings.MAX_IMAGE_BYTES, settings.MAX_ZIP_BYTES)
        except UploadError as exc:
            _record_failed(run, archive.name, str(exc), archive.size_bytes, result)
            contents = None
    if contents is not None:
        for member, why in contents.problems:
            _record_failed(run, f"{archive.name}: {member}", why, 0, result)
        separate = (
            [IncomingFile("manifest.csv", io.BytesIO(archive.manifest_csv.encode()), 0)]
            if archive.manifest_csv
            else []
        )
        zipped = [(archive.name, contents.manifest)] if contents.manifest else []
        try:
            footprints, conflicts = merge_manifests(separate, zipped)
        except UploadError as exc:
            footprints, conflicts = None, [f"the manifest inside {archive.name} was ignored: {exc}"]
        result.warnings += conflicts
        UploadArchive.objects.filter(pk=archive_id).update(members=len(contents.files))
        placement = Placement(
            footprints, Layout.for_run(run, archive.start_chainage_m, archive.direction)
        )
        progress = _ArchiveProgress(archive_id)
        _store_images(run, progress.watch(contents.files), placement, result, report_unused=False)
        if footprints:
            present = set(run.images.values_list("original_name", flat=True))
            unused = sorted(set(footprints) - present)
            if unused:
                result.warnings.append(
                    f"manifest rows without a file in this upload ({len(unused)}): "
                    + ", ".join(unused)
                )
    archive.file.delete(save=False)  # its images are stored; the zip itself is not kept
    UploadArchive.objects.filter(pk=archive_id).update(
        status=UploadArchive.Status.DONE,
        accepted=len(result.accepted),
        warnings=result.warnings,
        file="",
        finished_at=timezone.now(),
    )
    refresh_run_status(run_id=run.pk)
    return True


class _ArchiveProgress:
    """Counts an archive's stored members on its row as they go (every 25)."""

    def __init__(self, archive_id: int):
        self.archive_id = archive_id

    def watch(self, files):
        for n, incoming in enumerate(files, 1):
            yield incoming
            if n % 25 == 0 or n == len(files):
                UploadArchive.objects.filter(pk=self.archive_id).update(done_members=n)


def mark_archive_failed(*, archive_id: int, error: str | BaseException) -> None:
    jobs.fail(UploadArchive, archive_id, error, finished_at=timezone.now())
    run_id = UploadArchive.objects.filter(pk=archive_id).values_list("run_id", flat=True).first()
    if run_id:
        refresh_run_status(run_id=run_id)


def image_batches(sizes: list[tuple[int, int | None]]) -> list[list[int]]:
    """Image ids cut into segmentation tasks: small images together, in the order given.

    sizes: (id, pixels or None when unknown). A batch holds at most IMAGE_BATCH_SIZE images
    and IMAGE_BATCH_PIXELS pixels; an image of unknown size or over the pixel budget goes
    alone. Small images share a task's fixed costs (claim, model lookup, transaction, run
    status, the broker's round trip); a large one's own time dwarfs them.
    """
    batches, current, pixels = [], [], 0
    for image_id, size in sizes:
        if size is None or size > settings.IMAGE_BATCH_PIXELS:
            batches.append([image_id])
            continue
        if _batch_full(len(current), pixels, size):
            batches.append(current)
            current, pixels = [], 0
        current.append(image_id)
        pixels += size
    if current:
        batches.append(current)
    return batches


def _batch_full(count: int, pixels: int, more: int) -> bool:
    """True when a batch of count images and pixels has no room for an image of more pixels."""
    return count > 0 and (
        count >= settings.IMAGE_BATCH_SIZE or pixels + more > settings.IMAGE_BATCH_PIXELS
    )


def enqueue_images(image_ids: list[int], *, fresh: bool = True) -> None:
    """Mark images queued and send them to the workers, small ones batched (image_batches).

    fresh=True (an upload, a retry, a re-run) gives the image its full attempt budget again;
    the sweeper re-sends with fresh=False. A broker that is down loses nothing: the images
    stay queued in the database and the sweeper sends them again.
    """
    from crackportal.inspections.tasks import segment_images_task

    if not image_ids:
        return
    changes = {"status": SurveyImage.Status.QUEUED, "error": "", "queued_at": timezone.now()}
    if fresh:
        changes["attempts"] = 0
    SurveyImage.objects.filter(pk__in=image_ids).exclude(
        status=SurveyImage.Status.PROCESSING
    ).update(**changes)
    pixels = {
        pk: w * h if w and h else None
        for pk, w, h in SurveyImage.objects.filter(pk__in=image_ids).values_list(
            "pk", "width", "height"
        )
    }
    for batch in image_batches([(pk, pixels.get(pk)) for pk in image_ids]):
        try:
            segment_images_task.delay(batch)
        except Exception:  # broker unreachable: the sweeper re-sends them later
            log.warning("could not send images %s to the broker; they stay queued", batch)


class ImageSender:
    """Sends an upload's stored images as they commit, small ones in batches; flush() at the end."""

    def __init__(self):
        self.waiting: list[int] = []
        self.pixels = 0

    def add(self, image_id: int, pixels: int) -> None:
        if pixels > settings.IMAGE_BATCH_PIXELS:
            enqueue_images([image_id])
            return
        if _batch_full(len(self.waiting), self.pixels, pixels):
            self.flush()
        self.waiting.append(image_id)
        self.pixels += pixels
        if len(self.waiting) >= settings.IMAGE_BATCH_SIZE:  # full: the workers start on it now
            self.flush()

    def flush(self) -> None:
        waiting, self.waiting, self.pixels = self.waiting, [], 0
        enqueue_images(waiting)


def requeue_stuck_images(
    *,
    queued_after_s: float,
    processing_after_s: float,
    alive_workers: set[str] | None = None,
    lost_after_s: float = 60.0,
) -> dict[str, int]:
    """Send again what a lost message or a lost worker left behind; give up after the attempt limit.

    Queued images older than queued_after_s (their message was lost, e.g. Redis restarted
    without persistence) and processing images started more than processing_after_s ago
    (their worker died) are queued again. When the workers that answer a ping are known
    (alive_workers), an image processing for over lost_after_s on a worker that did not
    answer is queued again at once: a lost host is noticed in about a minute, not after the
    task time limit. An image out of attempts is marked failed.
    """
    now = timezone.now()
    lost = Q(pk__in=[])
    if alive_workers is not None:
        lost = Q(
            status=SurveyImage.Status.PROCESSING,
            started_at__lt=now - timedelta(seconds=lost_after_s),
        ) & ~Q(worker__in=alive_workers)
    stale = SurveyImage.objects.filter(
        lost
        | Q(status=SurveyImage.Status.QUEUED, queued_at__lt=now - timedelta(seconds=queued_after_s))
        | Q(status=SurveyImage.Status.QUEUED, queued_at__isnull=True)
        | Q(
            status=SurveyImage.Status.PENDING,
            created_at__lt=now - timedelta(seconds=queued_after_s),
        )
        | Q(
            status=SurveyImage.Status.PROCESSING,
            started_at__lt=now - timedelta(seconds=processing_after_s),
        )
    ).exclude(file="")
    counts = {"requeued": 0, "failed": 0}
    moved_ids = []
    for image_id, status, attempts in stale.values_list("pk", "status", "attempts"):
        if attempts >= settings.IMAGE_MAX_ATTEMPTS:
            give_up(image_id=image_id, attempts=attempts)
            counts["failed"] += 1
            continue
        # only re-send if nobody moved it meanwhile (compare-and-set on status and attempts)
        moved = SurveyImage.objects.filter(pk=image_id, status=status, attempts=attempts).update(
            status=SurveyImage.Status.QUEUED, queued_at=now
        )
        if moved:
            moved_ids.append(image_id)
    enqueue_images(moved_ids, fresh=False)
    counts["requeued"] = len(moved_ids)
    if any(counts.values()):
        log.warning("sweeper: %(requeued)d image(s) sent again, %(failed)d given up", counts)
    return counts


def requeue_stuck_archives(*, older_than_s: float) -> int:
    """Send again big zips whose unpacking message or worker was lost (unpacking is idempotent)."""
    stale = UploadArchive.objects.filter(
        status__in=[UploadArchive.Status.PENDING, UploadArchive.Status.PROCESSING],
        created_at__lt=timezone.now() - timedelta(seconds=older_than_s),
    ).values_list("pk", flat=True)
    for archive_id in stale:
        _enqueue_archive(archive_id)
    return len(stale)


def retry_failed_images(*, run: InspectionRun) -> int:
    """Queue a run's failed images again (those with a stored file); return how many."""
    ids = list(
        run.images.filter(status=SurveyImage.Status.FAILED)
        .exclude(file="")
        .values_list("pk", flat=True)
    )
    SurveyImage.objects.filter(pk__in=ids).update(attempts=0)
    if ids:
        InspectionRun.objects.filter(pk=run.pk).update(
            status=InspectionRun.Status.PROCESSING, finished_at=None
        )
    transaction.on_commit(lambda: enqueue_images(ids))
    return len(ids)


def give_up(*, image_id: int, attempts: int) -> None:
    """Fail an image whose attempts are spent."""
    mark_image_failed(
        image_id=image_id,
        error=f"stopped after {attempts} attempts: the last one never finished "
        "(the worker was lost or hit the time limit)",
    )


def mark_image_failed(*, image_id: int, error: str | BaseException) -> None:
    """Record a failure with its reason (an exception's traceback goes to the log), then update the run."""
    if jobs.fail(SurveyImage, image_id, error, processed_at=timezone.now()):
        refresh_run_status(run_id=SurveyImage.objects.get(pk=image_id).run_id)


def refresh_run_status(*, run_id: int) -> None:
    """Derive a run's status from its images: processing while any is active, then done / failed."""
    counts = dict(
        SurveyImage.objects.filter(run_id=run_id).values_list("status").annotate(n=Count("id"))
    )
    active = sum(counts.get(s, 0) for s in ACTIVE)
    active += UploadArchive.objects.filter(
        run_id=run_id,
        status__in=[UploadArchive.Status.PENDING, UploadArchive.Status.PROCESSING],
    ).count()
    run = InspectionRun.objects.filter(pk=run_id)
    if active:
        run.exclude(status=InspectionRun.Status.PROCESSING).update(
            status=InspectionRun.Status.PROCESSING, finished_at=None
        )
    elif counts:
        done = counts.get(SurveyImage.Status.DONE, 0)
        status = InspectionRun.Status.DONE if done else InspectionRun.Status.FAILED
        finished = run.exclude(status=status).update(status=status, finished_at=timezone.now())
        if finished and status == InspectionRun.Status.DONE:
            transaction.on_commit(lambda: enqueue_tracking(run_id))
    else:  # nothing stored at all: waiting for files again, never "processing" forever
        run.update(status=InspectionRun.Status.UPLOADING, finished_at=None)


def enqueue_tracking(run_id: int) -> None:
    """Match a finished run's cracks to earlier inspections, in the worker."""
    from crackportal.inspections.tasks import track_run_task

    track_run_task.delay(run_id)


def mark_tracked(*, run_id: int) -> None:
    InspectionRun.objects.filter(pk=run_id).update(tracked_at=timezone.now(), tracking_error="")


def mark_tracking_failed(*, run_id: int, error: str | BaseException) -> None:
    """Record why tracking failed: the run page shows it with a button to track again."""
    if isinstance(error, BaseException):
        jobs.log.error("tracking of run %s failed", run_id, exc_info=error)
    InspectionRun.objects.filter(pk=run_id).update(
        tracked_at=None, tracking_error=jobs.error_text(error)
    )


def retrack_run(*, run: InspectionRun) -> None:
    """Queue tracking of a finished run again (after a failure, or by hand)."""
    InspectionRun.objects.filter(pk=run.pk).update(tracking_error="")
    transaction.on_commit(lambda: enqueue_tracking(run.pk))


def correct_footprint(*, image: SurveyImage, footprint: Footprint) -> SurveyImage:
    """Move an image on the lining (and/or rescale it); its cracks follow, tracking runs again.

    The cracks' pixels stay; their tunnel metres are mapped anew and their millimetres scaled
    by the new mm/px, so severities are recomputed. A finished inspection is tracked again
    (with the later inspections of the tunnel).
    """
    footprint.check()
    if footprint.mm_per_px is None:
        footprint.mm_per_px = (
            (footprint.chainage_end_m - footprint.chainage_start_m) * 1000 / (image.width or 1)
        )
    with transaction.atomic():
        image = SurveyImage.objects.select_for_update().get(pk=image.pk)
        scale = footprint.mm_per_px / (image.mm_per_px or footprint.mm_per_px)
        for name, value in footprint.__dict__.items():
            setattr(image, name, value)
        image.save(update_fields=list(footprint.__dict__))
        cracks = list(image.cracks.all())
        for crack in cracks:
            placed = image.place(crack.polyline_px, crack.bbox_px)
            for name, value in placed.items():
                setattr(crack, name, value)
            for name, power in Crack.SCALES_WITH_MM_PER_PX.items():
                setattr(crack, name, getattr(crack, name) * scale**power)
            crack.severity = severity_for_width(crack.width_max_mm)
        if cracks:
            fields = [*placed, *Crack.SCALES_WITH_MM_PER_PX, "severity"]
            Crack.objects.bulk_update(cracks, fields)
        if image.run.status == InspectionRun.Status.DONE:
            retrack_run(run=image.run)
    return image
