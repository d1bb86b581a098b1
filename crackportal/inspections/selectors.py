"""Reads for inspection pages."""

from django.conf import settings
from django.db.models import Count, Q

from crackportal.inspections.models import InspectionRun, SurveyImage


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
        "cracks": run.images.aggregate(n=Count("cracks"))["n"],
    }


def runs_for_tunnel(tunnel):
    return tunnel.runs.annotate(
        n_images=Count("images", distinct=True),
        n_done=Count("images", filter=Q(images__status=SurveyImage.Status.DONE), distinct=True),
        n_failed=Count("images", filter=Q(images__status=SurveyImage.Status.FAILED), distinct=True),
    )


def images_with_crack_counts(run: InspectionRun):
    return (
        run.images.annotate(n_cracks=Count("cracks"))
        .only("id", "original_name", "status", "error", "width", "height")
        .order_by("id")
    )


def track_history(crack) -> list:
    """Every observation of the crack's track, oldest inspection first (just this crack if untracked)."""
    if crack.track_id is None:
        return [crack]
    return list(
        crack.track.cracks.select_related("image__run").order_by(
            "image__run__date", "image__run__created_at"
        )
    )


def growth_rates(history: list) -> dict | None:
    """Length and max-width change per year between the first and last observation."""
    if len(history) < 2:
        return None
    first, last = history[0], history[-1]
    days = (last.image.run.date - first.image.run.date).days
    if days <= 0:
        return None
    years = days / 365.25
    return {
        "days": days,
        "length_mm_per_year": (last.length_mm - first.length_mm) / years,
        "width_mm_per_year": (last.width_max_mm - first.width_max_mm) / years,
    }


def tunnel_dashboard(tunnels) -> list[dict]:
    """Per tunnel: latest inspection, crack counts by severity there, growing cracks, backlog."""
    from crackportal.inspections.models import Crack
    from crackportal.inspections.severity import severity_classes

    names = [name for _, name in severity_classes()]
    rows = []
    for tunnel in tunnels:
        latest = tunnel.runs.order_by("-date", "-created_at").first()
        by_severity = (
            dict(
                Crack.objects.filter(image__run=latest)
                .values_list("severity")
                .annotate(n=Count("id"))
            )
            if latest
            else {}
        )
        backlog = SurveyImage.objects.filter(
            run__tunnel=tunnel, status__in=["pending", "queued", "processing"]
        ).count()
        rows.append(
            {
                "tunnel": tunnel,
                "latest": latest,
                "severity_counts": [(name, by_severity.get(name, 0)) for name in names],
                "cracks": sum(by_severity.values()),
                "growing": growing_cracks(latest).count() if latest else 0,
                "backlog": backlog,
            }
        )
    return rows


def growing_cracks(run):
    """Cracks of run whose track was seen earlier shorter or narrower beyond the alert thresholds

    (settings.GROWTH_ALERT_WIDTH_MM, default +0.1 mm; GROWTH_ALERT_LENGTH_FRACTION, default +10 %)."""
    from django.db.models import Exists, OuterRef

    from crackportal.inspections.models import Crack

    earlier_smaller = Crack.objects.filter(
        track=OuterRef("track"), image__run__date__lt=run.date
    ).filter(
        Q(length_mm__lt=OuterRef("length_mm") / (1 + settings.GROWTH_ALERT_LENGTH_FRACTION))
        | Q(width_max_mm__lt=OuterRef("width_max_mm") - settings.GROWTH_ALERT_WIDTH_MM)
    )
    return Crack.objects.filter(image__run=run, track__isnull=False).filter(Exists(earlier_smaller))


def failed_images(run: InspectionRun):
    return (
        run.images.filter(status=SurveyImage.Status.FAILED)
        .only("id", "original_name", "error")
        .order_by("id")
    )
