"""Inspectors review detections: accept, or reject with a reason. Rejected cracks leave the
map, tracking and reports (every figure counts Crack.objects.counted()); history is kept."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
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
        keep = _merge_rows(pieces)
        CrackReview.objects.create(
            crack=keep,
            action=CrackReview.Action.MERGE,
            decision=Crack.Review.ACCEPTED,
            reviewer=reviewer,
            detail={
                "merged": [p.pk for p in pieces[1:]],
                "indices": [p.index for p in pieces],
            },
        )
        _retrack(keep.image.run)
    return keep


def _merge_rows(pieces: list[Crack]) -> Crack:
    """merge_cracks' rows: the first piece (lowest index) made the whole, accepted; the others
    deleted. No history, no tracking."""
    from crackportal.inspections.severity import severity_for_width

    pieces = sorted(pieces, key=lambda p: p.index)
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
    Crack.objects.filter(pk__in=[p.pk for p in others]).delete()
    return keep


def split_crack(*, crack: Crack, reviewer=None) -> list[Crack]:
    """A detection of several branches made one crack per branch. Each branch keeps its own
    geometry and length (from its tunnel-metre polyline); widths stay the detection's until
    the image is measured again (a width is measured on the whole crack). Kept in the
    history; the inspection is tracked again."""
    with transaction.atomic():
        crack = Crack.objects.select_for_update().select_related("image__run").get(pk=crack.pk)
        if len(crack.polyline_px) < 2:
            raise ReviewError(
                "this detection has one branch: correct the mask to cut it, then save"
            )
        made = _split_rows(crack, [[k] for k in range(len(crack.polyline_px))])
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


def _split_rows(crack: Crack, groups: list[list[int]]) -> list[Crack]:
    """split_crack's rows: one crack per group of branch indices, accepted; the first is the
    crack itself. No history, no tracking."""
    branches = list(zip(crack.polyline_px, crack.polyline_m, strict=False))
    lengths = [sum(_length_m(branches[k][1]) for k in group) * 1000 for group in groups]
    total, area = sum(lengths) or 1.0, crack.area_mm2
    next_index = Crack.objects.filter(image_id=crack.image_id).order_by("-index").first().index + 1
    made = []
    for n, (group, length) in enumerate(zip(groups, lengths, strict=True)):
        part = crack if n == 0 else Crack(image=crack.image, index=next_index + n - 1)
        for name in (
            "width_max_mm",
            "width_mean_mm",
            "width_p95_mm",
            "resolution_mm",
            "severity",
            "model_version_id",
            "orientation",
        ):
            setattr(part, name, getattr(crack, name))
        px = [branches[k][0] for k in group]
        m = [branches[k][1] for k in group]
        part.polyline_px, part.polyline_m = px, m
        (x0, x1), (y0, y1) = _extent(px, 0), _extent(px, 1)
        part.bbox_px = [x0, y0, x1, y1]
        part.chainage_min_m, part.chainage_max_m = _extent(m, 0)
        part.arc_min_m, part.arc_max_m = _extent(m, 1)
        part.area_mm2 = area * length / total
        part.length_mm = length
        part.review, part.review_reason = Crack.Review.ACCEPTED, ""
        part.track = None
        made.append(part)
    for part in made:
        part.save()
    return made


# -- review work kept when an image's cracks are measured again ---------------------------

CARRY_TOLERANCE_PX = 4.0  # a new crack descends from the old one whose line lies this near


@dataclass
class Reviewed:
    """A crack as it was before its image was measured again, with the review work on it."""

    pk: int
    points: np.ndarray  # (n, 2) x, y: about one per pixel along its branches
    review: str
    reason: str
    orientation: str
    history: list[dict] = field(default_factory=list)  # CrackReview rows, oldest first

    @property
    def actions(self) -> set[str]:
        return {row["action"] for row in self.history}

    @property
    def worked(self) -> bool:
        return self.review != Crack.Review.UNREVIEWED or bool(self.history)


def _line_points(branches) -> np.ndarray:
    """About one point per pixel along polyline branches [[[x, y], ...], ...]."""
    points = []
    for branch in branches:
        b = np.asarray(branch, dtype=float).reshape(-1, 2)
        for p, q in zip(b[:-1], b[1:], strict=True):
            steps = max(1, int(np.ceil(np.hypot(*(q - p)))))
            points.append(p + (q - p) * (np.arange(steps)[:, None] / steps))
        points.append(b[-1:])
    return np.concatenate(points) if points else np.zeros((0, 2))


def reviewed_before(image_id: int) -> list[Reviewed]:
    """The image's cracks with their review work, read before a re-measure replaces them."""
    history: dict[int, list[dict]] = {}
    rows = CrackReview.objects.filter(crack__image_id=image_id).order_by("created_at", "id")
    for row in rows.values(
        "crack_id", "action", "decision", "reason", "detail", "reviewer_id", "created_at"
    ):
        history.setdefault(row.pop("crack_id"), []).append(row)
    return [
        Reviewed(pk, _line_points(polyline), review, reason, orientation, history.get(pk, []))
        for pk, polyline, review, reason, orientation in Crack.objects.filter(
            image_id=image_id
        ).values_list("pk", "polyline_px", "review", "review_reason", "orientation")
    ]


class _Ancestry:
    """Which old crack a new crack's line lies on."""

    def __init__(self, before: list[Reviewed]):
        from scipy.spatial import cKDTree

        self.before = [r for r in before if len(r.points)]
        self.labels = np.concatenate(
            [np.full(len(r.points), i) for i, r in enumerate(self.before)] or [np.zeros(0, int)]
        )
        self.tree = (
            cKDTree(np.concatenate([r.points for r in self.before])) if self.before else None
        )

    def of(self, branches) -> Reviewed | None:
        """The old crack at least half of these branches' line lies on, if any."""
        points = _line_points(branches)
        if self.tree is None or not len(points):
            return None
        distance, nearest = self.tree.query(points, distance_upper_bound=CARRY_TOLERANCE_PX)
        near = self.labels[nearest[np.isfinite(distance)]]
        if not len(near):
            return None
        counts = np.bincount(near)
        best = int(counts.argmax())
        return self.before[best] if 2 * counts[best] >= len(points) else None


def carry_reviews(image: SurveyImage, before: list[Reviewed]) -> None:
    """Review work kept across a re-measure of the image (inside the caller's transaction).

    Each new crack descends from the old crack at least half its line lies on (within
    CARRY_TOLERANCE_PX): a crack an inspector split is split again along the same parts,
    pieces of a crack an inspector merged are merged again, and every crack takes its
    ancestor's decision, reason, re-class and review history (who and when, as they were).
    The caller tracks the inspection again."""
    if not any(r.worked for r in before):
        return
    ancestry = _Ancestry(before)
    for crack in list(image.cracks.all()):  # splits: branches on two or more split parts
        parts: dict[int, list[int]] = {}
        rest = []
        for k, branch in enumerate(crack.polyline_px):
            old = ancestry.of([branch])
            split = old is not None and "split" in old.actions
            (parts.setdefault(old.pk, []) if split else rest).append(k)
        if len(parts) > 1:
            groups = sorted(parts.values())
            max(groups, key=len).extend(rest)  # branches of no part join the largest
            _split_rows(crack, [sorted(g) for g in groups])
    cracks = list(image.cracks.all())
    descent = {crack.pk: ancestry.of(crack.polyline_px) for crack in cracks}
    merged: dict[int, list[Crack]] = {}  # merges: pieces lying on one merged crack
    for crack in cracks:
        old = descent[crack.pk]
        if old is not None and "merge" in old.actions:
            merged.setdefault(old.pk, []).append(crack)
    for pieces in merged.values():
        if len(pieces) > 1:
            whole = _merge_rows(pieces)
            descent[whole.pk] = ancestry.of(whole.polyline_px)  # its line, now whole
            cracks = [c for c in cracks if c.pk == whole.pk or c not in pieces]
    copies, dates = [], []
    for crack in cracks:
        old = descent[crack.pk]
        if old is None or not old.worked:
            continue
        crack.review, crack.review_reason = old.review, old.reason
        if "reclass" in old.actions:
            crack.orientation = old.orientation
        crack.save(update_fields=["review", "review_reason", "orientation"])
        for row in old.history:
            copies.append(
                CrackReview(crack=crack, **{k: v for k, v in row.items() if k != "created_at"})
            )
            dates.append(row["created_at"])
    made = CrackReview.objects.bulk_create(copies)
    for row, created_at in zip(made, dates, strict=True):  # as they were, not today
        row.created_at = created_at
    CrackReview.objects.bulk_update(made, ["created_at"])
