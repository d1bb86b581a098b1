"""Follow cracks across inspections: stitch pieces cut by image borders, then match tracks.

Everything happens in tunnel metres (chainage, arc) on the unrolled lining, so survey
offsets of a few centimetres between inspections stay inside the matching tolerance.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from shapely import STRtree
from shapely.geometry import LineString, MultiLineString, Point, box
from shapely.ops import unary_union

from crackportal.inspections.growth import growth_per_year, observations
from crackportal.inspections.models import Crack, CrackTrack, InspectionRun


@dataclass
class TrackingResult:
    cracks: int = 0
    stitched: int = 0  # crack pieces joined to a neighbour across an image border
    matched: int = 0  # groups that continue an earlier track
    new: int = 0  # groups that start a track
    joined: int = 0  # earlier tracks merged into another because one crack now spans both


def crack_geometry(crack: Crack):
    """The crack's branches as a shapely (Multi)LineString in tunnel metres."""
    lines = [
        LineString(b) if len(b) > 1 else Point(b[0]).buffer(1e-4) for b in crack.polyline_m if b
    ]
    lines = [line for line in lines if not line.is_empty]
    if len(lines) == 1:
        return lines[0]
    return (
        MultiLineString([ln for ln in lines if isinstance(ln, LineString)])
        if lines
        else Point(0, 0)
    )


def _footprint(image):
    if None in (image.chainage_start_m, image.chainage_end_m, image.arc_start_m, image.arc_end_m):
        return None
    return box(
        min(image.chainage_start_m, image.chainage_end_m),
        min(image.arc_start_m, image.arc_end_m),
        max(image.chainage_start_m, image.chainage_end_m),
        max(image.arc_start_m, image.arc_end_m),
    )


class _Groups:
    """Union-find over crack ids."""

    def __init__(self, ids):
        self.parent = {i: i for i in ids}

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a, b) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True

    def members(self):
        out = defaultdict(list)
        for i in self.parent:
            out[self.find(i)].append(i)
        return list(out.values())


STITCH_PX = 10  # a cut crack's pieces meet within this many pixels of the coarser image


def _ends(crack: Crack) -> list[Point]:
    """Where the crack's branches end, in tunnel metres."""
    return [Point(branch[k]) for branch in crack.polyline_m if branch for k in (0, -1)]


def _stitch(cracks: list[Crack], geoms: dict, stitch_m: float) -> tuple[list[list[int]], int]:
    """Group the pieces of cracks that image borders cut (images abutting or overlapping).

    A cut crack continues where it was cut: an end of one piece lies at its image's border,
    at another image, within reach of a piece of that image, and that piece has an end at
    its own border that comes back within reach of the first. The reach is stitch_m, or
    STITCH_PX pixels of the coarser image where that is more (the network stops a crack a
    few pixels short of an image's edge). Each end joins once, the closest pairs first, so a
    parallel crack or one along the border beside the continuation stays its own crack.
    """
    groups = _Groups([c.pk for c in cracks])
    footprint = {c.image_id: _footprint(c.image) for c in cracks}
    reach = {c.image_id: max(stitch_m, STITCH_PX * (c.image.mm_per_px or 0) / 1000) for c in cracks}
    border_ends: dict[int, list[tuple[int, Point]]] = defaultdict(list)
    for c in cracks:
        fp = footprint[c.image_id]
        if fp is None:
            continue
        for k, end in enumerate(_ends(c)):
            if fp.exterior.distance(end) <= reach[c.image_id]:
                border_ends[c.pk].append((k, end))

    def meets(end: Point, piece: Crack, tol: float) -> bool:
        """The end lies at the piece's image and within tol of the piece."""
        return (
            footprint[piece.image_id].distance(end) <= tol and geoms[piece.pk].distance(end) <= tol
        )

    tree = STRtree([geoms[c.pk] for c in cracks])
    farthest = max(reach.values())
    pairs = set()
    for c in cracks:
        for k, end in border_ends.get(c.pk, []):
            for index in tree.query(end, predicate="dwithin", distance=farthest):
                other = cracks[int(index)]
                if other.image_id == c.image_id or not border_ends.get(other.pk):
                    continue
                tol = max(reach[c.image_id], reach[other.image_id])
                if not meets(end, other, tol):
                    continue
                for m, back in border_ends[other.pk]:
                    if meets(back, c, tol):
                        cost = geoms[other.pk].distance(end) + geoms[c.pk].distance(back)
                        a, b = sorted([(c.pk, k), (other.pk, m)])
                        pairs.add((cost, a, b))
    used: set[tuple[int, int]] = set()
    stitched = 0
    for _, a, b in sorted(pairs):
        if a in used or b in used:
            continue
        used |= {a, b}
        stitched += groups.union(a[0], b[0])
    return groups.members(), stitched


def _overlap(a, b, tolerance_m: float) -> float:
    """Share of the shorter of a and b that lies within tolerance of the other (0..1)."""
    if a.length <= 0 or b.length <= 0:
        return 1.0 if a.distance(b) <= tolerance_m else 0.0
    a_in_b = a.intersection(b.buffer(tolerance_m)).length / a.length
    b_in_a = b.intersection(a.buffer(tolerance_m)).length / b.length
    return max(a_in_b, b_in_a)


def _lineal(shape) -> bool:
    return shape.geom_type in ("LineString", "MultiLineString") and shape.length > 0


def _mean_distance(a, b, step_m: float) -> float:
    """Mean distance from points every step_m along the shorter of a and b to the other: about
    0 for a crack and its grown or shifted self (within the survey offset), the spacing for
    a crack beside another."""
    short, other = (a, b) if a.length <= b.length else (b, a)
    if not _lineal(short):
        return float(short.distance(other))
    along = np.linspace(0.0, short.length, max(2, int(short.length / step_m) + 1))
    return float(np.mean(shapely.distance(other, shapely.line_interpolate_point(short, along))))


def _span(shape, along) -> tuple[float, float]:
    """The stretch of the lineal geometry `along` that shape lies beside: (first, last) metres."""
    if not _lineal(along):
        return 0.0, 0.0
    at = shapely.line_locate_point(along, shapely.points(shapely.get_coordinates(shape)))
    return float(at.min()), float(at.max())


def _beside(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Two spans share more than a quarter of the shorter: side by side, not one after another."""
    shared = min(a[1], b[1]) - max(a[0], b[0])
    return shared > 0.25 * min(a[1] - a[0], b[1] - b[0])


def _assign_tracks(shapes: list, old: dict, tolerance_m: float, min_overlap: float) -> dict:
    """The earlier tracks each crack of this inspection continues: {crack index: [track ids]}.

    A crack may continue a track when it lies within tolerance of the track's last geometry
    over min_overlap of the shorter of the two. The closest pairs are taken first (mean
    distance, in steps of a fifth of the tolerance; among equals the earlier crack in
    `shapes`, which the caller orders longest first), and a track continues into one crack.
    A crack takes a second track only where that one lies along another stretch of it (one
    crack now spanning two old ones joins them), never beside a track it already took: so
    parallel cracks closer than the tolerance keep their own tracks.
    """
    if not old or not shapes:
        return {}
    old_ids = list(old)
    tree = STRtree([old[t] for t in old_ids])
    step = tolerance_m / 5
    pairs = []
    for index, shape in enumerate(shapes):
        for k in tree.query(shape, predicate="dwithin", distance=tolerance_m):
            track = old_ids[int(k)]
            if _overlap(shape, old[track], tolerance_m) >= min_overlap:
                distance = _mean_distance(shape, old[track], step)
                pairs.append((round(distance / step), index, distance, track))
    taken: set[int] = set()
    continued: dict[int, list[int]] = defaultdict(list)
    spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for _, index, _, track in sorted(pairs):
        if track in taken:
            continue
        span = _span(old[track], shapes[index])
        if any(_beside(span, other) for other in spans[index]):
            continue
        taken.add(track)
        continued[index].append(track)
        spans[index].append(span)
    return continued


def _latest_track_geometries(run: InspectionRun) -> dict[int, object]:
    """For each track of earlier inspections of the tunnel, its geometry when last seen."""
    earlier = (
        Crack.objects.counted()
        .filter(
            image__run__tunnel_id=run.tunnel_id,
            image__run__date__lte=run.date,
            track__isnull=False,
        )
        .exclude(image__run=run)
        .select_related("image__run")
        .only("id", "track_id", "polyline_m", "image__run__date", "image__run__id")
    )
    latest: dict[int, tuple] = {}
    pieces: dict[tuple[int, int], list] = defaultdict(list)
    for c in earlier:
        key = (c.image.run.date, c.image.run.id)
        if c.track_id not in latest or key > latest[c.track_id]:
            latest[c.track_id] = key
        pieces[(c.track_id, c.image.run.id)].append(crack_geometry(c))
    return {track: unary_union(pieces[(track, key[1])]) for track, key in latest.items()}


def track_run(
    run: InspectionRun, *, tolerance_mm: float | None = None, min_overlap: float | None = None
) -> TrackingResult:
    """Give every crack of a run a track, matching earlier inspections of its tunnel; idempotent."""
    tolerance_m = (tolerance_mm if tolerance_mm is not None else settings.TRACK_TOLERANCE_MM) / 1000
    stitch_m = settings.TRACK_STITCH_MM / 1000
    min_overlap = min_overlap if min_overlap is not None else settings.TRACK_MIN_OVERLAP
    result = TrackingResult()
    with transaction.atomic():
        InspectionRun.objects.select_for_update().filter(pk=run.pk).first()
        cracks = list(
            Crack.objects.counted().filter(image__run=run).select_related("image").order_by("id")
        )
        result.cracks = len(cracks)
        if not cracks:
            return result
        # a re-run starts over for this inspection; tracks it alone created go away
        Crack.objects.filter(image__run=run).update(track=None)
        CrackTrack.objects.filter(tunnel_id=run.tunnel_id, cracks__isnull=True).delete()

        geoms = {c.pk: crack_geometry(c) for c in cracks}
        groups, result.stitched = _stitch(cracks, geoms, stitch_m)
        old = _latest_track_geometries(run)
        shapes = [unary_union([geoms[i] for i in m]) for m in groups]
        # the longest crack comes first among equals: a crack that split keeps its track on
        # its longer part, and new tracks are numbered longest first
        order = sorted(range(len(groups)), key=lambda g: -shapes[g].length)
        continued = _assign_tracks([shapes[g] for g in order], old, tolerance_m, min_overlap)
        for rank, g in enumerate(order):
            tracks = sorted(continued.get(rank, []))
            if tracks:
                track_id = tracks[0]  # the oldest track keeps its identity
                for other in tracks[1:]:
                    Crack.objects.filter(track_id=other).update(track_id=track_id)
                    CrackTrack.objects.filter(pk=other).delete()
                    result.joined += 1
                result.matched += 1
            else:
                track_id = CrackTrack.objects.create(tunnel_id=run.tunnel_id, first_run=run).pk
                result.new += 1
            Crack.objects.filter(pk__in=groups[g]).update(track_id=track_id)
        refresh_tracks(CrackTrack.objects.filter(cracks__image__run=run).distinct())
    return result


def track_from(run: InspectionRun, **options) -> list[TrackingResult]:
    """Track run, then every later finished inspection of its tunnel again, oldest first.

    Tracks of later inspections were matched against this one: when it changes (a re-run,
    a corrected footprint, re-measured cracks) they are matched again, so history never breaks.
    """
    later = InspectionRun.objects.filter(
        Q(date__gt=run.date) | Q(date=run.date, created_at__gt=run.created_at),
        tunnel_id=run.tunnel_id,
        status=InspectionRun.Status.DONE,
    ).order_by("date", "created_at")
    return [track_run(r, **options) for r in [run, *later]]


def refresh_tracks(tracks) -> None:
    """Recompute each track's per-inspection history, first/last seen and growth per year."""
    for track in tracks:
        history = observations(track.cracks.select_related("image__run"))
        if not history:
            continue
        first, last = history[0], history[-1]
        growth = growth_per_year(history)
        track.history = [obs.as_row() for obs in history]
        track.first_seen = first.date
        track.last_seen = last.date
        track.first_run_id = first.run_id
        track.length_mm = last.length_mm
        track.width_max_mm = last.width_max_mm
        track.length_growth_mm_per_year = growth.length_mm_per_year if growth else None
        track.width_growth_mm_per_year = growth.width_mm_per_year if growth else None
        track.save()
