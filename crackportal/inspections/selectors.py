"""Reads for inspection pages."""

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
    return run.images.annotate(n_cracks=Count("cracks")).only(
        "id", "original_name", "status", "error", "width", "height"
    )
