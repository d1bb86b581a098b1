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


def _retrack(run: InspectionRun) -> None:
    if run.status == run.Status.DONE:
        from crackportal.inspections.services import retrack_run

        retrack_run(run=run)


def reclass_crack(*, crack: Crack, orientation: str, reviewer=None) -> Crack:
    """Give a detection another class (longitudinal, transverse, diagonal, network); kept."""
    if orientation not in Crack.Orientation.values:
        raise ReviewError("choose one of: " + ", ".join(Crack.Orientation.values))
    with transaction.atomic():
        crack = Crack.objects.select_for_update().get(pk=crack.pk)
        before = crack.orientation
        crack.orientation = orientation
        crack.save(update_fields=["orientation"])
        CrackReview.objects.create(
            crack=crack,
            action=CrackReview.Action.RECLASS,
            reviewer=reviewer,
            detail={"orientation": [before, orientation]},
        )
    return crack


def _length_m(branch) -> float:
    return sum(
        ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        for (x0, y0), (x1, y1) in zip(branch[:-1], branch[1:], strict=True)
    )


def _extent(branches, axis: int) -> tuple[float, float]:
    values = [p[axis] for b in branches for p in b]
    return min(values), max(values)


def merge_cracks(*, cracks: list[Crack], reviewer=None) -> Crack:
    """Pieces of one crack made one: geometry joined, length summed, the widest width kept;
    the first piece (lowest index) stays, the others are deleted. The merge is kept in the
    history and the inspection is tracked again."""
    from crackportal.inspections.severity import severity_for_width

    ids = sorted({c.pk for c in cracks})
    if len(ids) < 2:
        raise ReviewError("choose at least two detections to merge")
    with transaction.atomic():
        pieces = list(
            Crack.objects.select_for_update().select_related("image__run").filter(pk__in=ids)
        )
        if len(pieces) != len(ids) or len({p.image_id for p in pieces}) != 1:
            raise ReviewError("only detections of one image can be merged")
        pieces.sort(key=lambda p: p.index)
        keep, others = pieces[0], pieces[1:]
        length = sum(p.length_mm for p in pieces)
        keep.polyline_px = [b for p in pieces for b in p.polyline_px]
        keep.polyline_m = [b for p in pieces for b in p.polyline_m]
        keep.bbox_px = [
            min(p.bbox_px[0] for p in pieces),
            min(p.bbox_px[1] for p in pieces),
            max(p.bbox_px[2] for p in pieces),
            max(p.bbox_px[3] for p in pieces),
        ]
        keep.chainage_min_m, keep.chainage_max_m = _extent(keep.polyline_m, 0)
        keep.arc_min_m, keep.arc_max_m = _extent(keep.polyline_m, 1)
        keep.width_mean_mm = sum(p.width_mean_mm * p.length_mm for p in pieces) / (length or 1)
        keep.width_max_mm = max(p.width_max_mm for p in pieces)
        keep.width_p95_mm = max(p.width_p95_mm for p in pieces)
        keep.area_mm2 = sum(p.area_mm2 for p in pieces)
        keep.orientation = max(pieces, key=lambda p: p.length_mm).orientation
        keep.length_mm = length
        keep.severity = severity_for_width(keep.width_max_mm)
        keep.review, keep.review_reason = Crack.Review.ACCEPTED, ""
        keep.save()
        CrackReview.objects.create(
            crack=keep,
            action=CrackReview.Action.MERGE,
            decision=Crack.Review.ACCEPTED,
            reviewer=reviewer,
            detail={"merged": [p.pk for p in others], "indices": [p.index for p in pieces]},
        )
        Crack.objects.filter(pk__in=[p.pk for p in others]).delete()
        _retrack(keep.image.run)
    return keep


def split_crack(*, crack: Crack, reviewer=None) -> list[Crack]:
    """A detection of several branches made one crack per branch. Each branch keeps its own
    geometry and length (from its tunnel-metre polyline); widths stay the detection's until
    the image is measured again (a width is measured on the whole crack). Kept in the
    history; the inspection is tracked again."""
    with transaction.atomic():
        crack = Crack.objects.select_for_update().select_related("image__run").get(pk=crack.pk)
        branches = list(zip(crack.polyline_px, crack.polyline_m, strict=False))
        if len(branches) < 2:
            raise ReviewError(
                "this detection has one branch: correct the mask to cut it, then save"
            )
        lengths = [_length_m(m) * 1000 for _, m in branches]
        total, area = sum(lengths) or 1.0, crack.area_mm2
        next_index = (
            Crack.objects.filter(image_id=crack.image_id).order_by("-index").first().index + 1
        )
        made = []
        for k, ((px, m), length) in enumerate(zip(branches, lengths, strict=True)):
            part = crack if k == 0 else Crack(image=crack.image, index=next_index + k - 1)
            for field in (
                "width_max_mm",
                "width_mean_mm",
                "width_p95_mm",
                "resolution_mm",
                "severity",
                "model_version_id",
                "orientation",
            ):
                setattr(part, field, getattr(crack, field))
            xs, ys = [p[0] for p in px], [p[1] for p in px]
            part.polyline_px, part.polyline_m = [px], [m]
            part.bbox_px = [min(xs), min(ys), max(xs), max(ys)]
            part.chainage_min_m, part.chainage_max_m = _extent([m], 0)
            part.arc_min_m, part.arc_max_m = _extent([m], 1)
            part.area_mm2 = area * length / total
            part.length_mm = length
            part.review, part.review_reason = Crack.Review.ACCEPTED, ""
            part.track = None
            made.append(part)
        for part in made:
            part.save()
        for part in made:
            CrackReview.objects.create(
                crack=part,
                action=CrackReview.Action.SPLIT,
                decision=Crack.Review.ACCEPTED,
                reviewer=reviewer,
                detail={"from": crack.pk, "parts": [p.pk for p in made]},
            )
        _retrack(crack.image.run)
    return made
