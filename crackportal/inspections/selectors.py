"""Reads for inspection pages."""

from django.conf import settings
from django.db.models import Count, F, Max, Q

from crackportal.inspections.growth import Observation, observations
from crackportal.inspections.models import Crack, InspectionRun, SurveyImage


def run_progress(run: InspectionRun) -> dict:
    """Counts by status, percent finished, and the failed files with reasons."""
    counts = dict(run.images.values_list("status").annotate(n=Count("id")))
    total = sum(counts.values())
    finished = counts.get(SurveyImage.Status.DONE, 0) + counts.get(SurveyImage.Status.FAILED, 0)
    return {
        "run": run.pk,
        "status": run.status,
        "total": total,
        "counts": {s: counts.get(s, 0) for s in SurveyImage.Status.values},
        "percent": round(100 * finished / total) if total else 0,
        # as everywhere a figure is acted on: rejected detections are not cracks
        "cracks": Crack.objects.filter(image__run=run).counted().count(),
    }


BY_CHAINAGE = (F("chainage_start_m").asc(nulls_last=True), F("arc_start_m").asc(), "id")


IMAGE_SORTS = {
    "chainage": BY_CHAINAGE,
    "-chainage": (F("chainage_start_m").desc(nulls_last=True), F("arc_start_m").desc(), "-id"),
    "worst": (F("widest_mm").desc(nulls_last=True), *BY_CHAINAGE),
    "cracks": (F("n_cracks").desc(), *BY_CHAINAGE),
    "name": ("original_name", "id"),
}


# an image's cracks that count (Crack.objects.counted(), seen from the image)
COUNTED_CRACKS = ~Q(cracks__review=Crack.Review.REJECTED)


def images_with_crack_counts(run: InspectionRun, sort: str = "chainage"):
    """A run's images, by default along the tunnel (by chainage, then arc; refused files last);
    sort: one of IMAGE_SORTS (an unknown one sorts by chainage)."""
    return (
        run.images.annotate(
            n_cracks=Count("cracks", filter=COUNTED_CRACKS),
            widest_mm=Max("cracks__width_max_mm", filter=COUNTED_CRACKS),
        )
        .only(
            "id",
            "original_name",
            "status",
            "error",
            "width",
            "height",
            "chainage_start_m",
            "chainage_end_m",
            "arc_start_m",
        )
        .order_by(*IMAGE_SORTS.get(sort, BY_CHAINAGE))
    )


def track_history(crack) -> list[Observation]:
    """The crack's track, one row per inspection (stitched pieces merged), oldest first."""
    if crack.track_id is None:
        return observations([crack])
    return observations(crack.track.cracks.select_related("image__run"))


def growing_cracks(run):
    """Cracks of run whose track was seen earlier shorter or narrower beyond the alert thresholds

    (settings.GROWTH_ALERT_WIDTH_MM, default +0.1 mm; GROWTH_ALERT_LENGTH_FRACTION, default +10 %)."""
    from django.db.models import Exists, OuterRef

    from crackportal.inspections.models import Crack

    earlier_smaller = (
        Crack.objects.counted()
        .filter(track=OuterRef("track"), image__run__date__lt=run.date)
        .filter(
            Q(length_mm__lt=OuterRef("length_mm") / (1 + settings.GROWTH_ALERT_LENGTH_FRACTION))
            | Q(width_max_mm__lt=OuterRef("width_max_mm") - settings.GROWTH_ALERT_WIDTH_MM)
        )
    )
    return (
        Crack.objects.counted()
        .filter(image__run=run, track__isnull=False)
        .filter(Exists(earlier_smaller))
    )


def failed_images(run: InspectionRun):
    return (
        run.images.filter(status=SurveyImage.Status.FAILED)
        .only("id", "original_name", "error")
        .order_by("id")
    )
