"""Reprocess an inspection with a chosen model: segment every image again, re-track, and keep
what the run looked like before so the run page can show what changed."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Max, Sum

from crackportal.inspections import services
from crackportal.inspections.models import Crack, InspectionRun, Reprocessing, SurveyImage


class ReprocessError(ValueError):
    """A reprocess that cannot start now; the message is for the user."""


def run_summary(run: InspectionRun) -> dict:
    """The figures a manager acts on, for one run: counted cracks (rejected ones left out)."""
    cracks = Crack.objects.filter(image__run=run).counted()
    totals = cracks.aggregate(n=Count("id"), length=Sum("length_mm"), width=Max("width_max_mm"))
    by_severity = dict(cracks.values_list("severity").annotate(n=Count("id")).order_by())
    return {
        "model": run.model_version.name if run.model_version else "",
        "images_done": run.images.filter(status=SurveyImage.Status.DONE).count(),
        "images_failed": run.images.filter(status=SurveyImage.Status.FAILED).count(),
        "cracks": totals["n"],
        "length_m": round((totals["length"] or 0.0) / 1000, 2),
        "width_max_mm": round(totals["width"] or 0.0, 2),
        "by_severity": {k or "unclassified": v for k, v in sorted(by_severity.items())},
    }


def changes(before: dict, after: dict) -> list[dict]:
    """Rows of (figure, before, after, change) for the run page."""
    rows = []
    for key, label in (
        ("cracks", "Cracks"),
        ("length_m", "Total length (m)"),
        ("width_max_mm", "Widest crack (mm)"),
        ("images_done", "Images done"),
        ("images_failed", "Images failed"),
    ):
        a, b = before.get(key, 0), after.get(key, 0)
        rows.append({"figure": label, "before": a, "after": b, "change": round(b - a, 2)})
    for severity in sorted(set(before.get("by_severity", {})) | set(after.get("by_severity", {}))):
        a = before.get("by_severity", {}).get(severity, 0)
        b = after.get("by_severity", {}).get(severity, 0)
        rows.append({"figure": f"Severity {severity}", "before": a, "after": b, "change": b - a})
    return rows


@transaction.atomic
def reprocess_run(*, run: InspectionRun, version, by=None) -> Reprocessing:
    """Segment every stored image of run again with version, then track the run again.

    The run's current detections (and the reviews of them) are replaced image by image as the
    worker gets to them, except on images with a verified mask: their cracks are measured from
    it again and keep their decisions. The run's summary before is kept on the record.
    """
    run = (
        InspectionRun.objects.select_for_update(of=("self",))
        .select_related("model_version")
        .get(pk=run.pk)
    )
    if run.images.filter(status__in=services.ACTIVE).exists():
        raise ReprocessError("this inspection is still being processed; wait until it is done")
    ids = list(run.images.exclude(file="").values_list("pk", flat=True))
    if not ids:
        raise ReprocessError("this inspection has no stored images to process")
    # images with a verified mask keep their cracks and decisions (processing.py)
    reviews = (
        Crack.objects.filter(image__run=run)
        .exclude(review="")
        .exclude(image__annotations__is_current=True)
        .count()
    )
    record = Reprocessing.objects.create(
        run=run,
        version=version,
        previous_version=run.model_version,
        requested_by=by,
        before=run_summary(run),
        reviews_discarded=reviews,
    )
    InspectionRun.objects.filter(pk=run.pk).update(
        requested_model=version,
        model_version=version,
        status=InspectionRun.Status.PROCESSING,
        finished_at=None,
    )
    transaction.on_commit(lambda: services.enqueue_images(ids))
    return record
