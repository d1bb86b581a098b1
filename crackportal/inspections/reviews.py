"""Inspectors review detections: accept, or reject with a reason. Rejected cracks leave the
map, tracking and reports (every figure counts Crack.objects.counted()); history is kept."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q

from crackportal.inspections.models import Crack, CrackReview, InspectionRun, SurveyImage


class ReviewError(ValueError):
    """A review that cannot be recorded; the message is for the reviewer."""


def review_crack(*, crack: Crack, decision: str, reason: str = "", reviewer=None) -> Crack:
    """Record one decision (kept in the crack's history); a change of what counts re-tracks."""
    if decision not in (Crack.Review.ACCEPTED, Crack.Review.REJECTED):
        raise ReviewError(f"unknown decision {decision!r}; accept or reject")
    if decision == Crack.Review.REJECTED and reason not in Crack.RejectReason.values[1:]:
        raise ReviewError("a rejection needs a reason: " + ", ".join(Crack.RejectReason.values[1:]))
    reason = reason if decision == Crack.Review.REJECTED else ""
    with transaction.atomic():
        crack = Crack.objects.select_for_update().select_related("image__run").get(pk=crack.pk)
        counted_before = crack.review != Crack.Review.REJECTED
        crack.review, crack.review_reason = decision, reason
        crack.save(update_fields=["review", "review_reason"])
        CrackReview.objects.create(crack=crack, decision=decision, reason=reason, reviewer=reviewer)
        run = crack.image.run
        if counted_before != (decision != Crack.Review.REJECTED) and run.status == run.Status.DONE:
            from crackportal.inspections.services import retrack_run

            retrack_run(run=run)  # a rejected crack leaves its track; an accepted one returns
    return crack


def accept_the_rest(*, image: SurveyImage, reviewer=None) -> int:
    """Accept every detection of the image not yet reviewed; return how many."""
    pending = list(image.cracks.filter(review=Crack.Review.UNREVIEWED))
    for crack in pending:
        review_crack(crack=crack, decision=Crack.Review.ACCEPTED, reviewer=reviewer)
    return len(pending)


def review_progress(run: InspectionRun) -> dict:
    """Images whose every detection has a decision, of the processed ones; rejected count."""
    images = run.images.filter(status=SurveyImage.Status.DONE).annotate(
        open=Count("cracks", filter=Q(cracks__review=Crack.Review.UNREVIEWED))
    )
    total = images.count()
    reviewed = images.filter(open=0).count()
    next_image = images.filter(open__gt=0).order_by("chainage_start_m", "id").first()
    return {
        "images": total,
        "reviewed": reviewed,
        "complete": total > 0 and reviewed == total,
        "rejected": Crack.objects.filter(image__run=run, review=Crack.Review.REJECTED).count(),
        "next_image": next_image,
    }
