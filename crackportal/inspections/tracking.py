"""Follow cracks across inspections: stitch pieces cut by image borders, then match tracks.

Everything happens in tunnel metres (chainage, arc) on the unrolled lining, so survey
offsets of a few centimetres between inspections stay inside the matching tolerance.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

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


def _stitch(cracks: list[Crack], geoms: dict, tolerance_m: float) -> tuple[list[list[int]], int]:
    """Group cracks of different images that meet at a shared image border."""
    groups = _Groups([c.pk for c in cracks])
    bands = {}
    for c in cracks:
        fp = _footprint(c.image)
        bands[c.pk] = fp.boundary.buffer(tolerance_m) if fp is not None else None
    ids = [c.pk for c in cracks]
    tree = STRtree([geoms[i] for i in ids])
    image_of = {c.pk: c.image_id for c in cracks}
    stitched = 0
    for i in ids:
        if bands[i] is None or not geoms[i].intersects(bands[i]):
            continue
        for j in tree.query(geoms[i], predicate="dwithin", distance=tolerance_m):
            j = ids[int(j)]
            if j <= i or image_of[j] == image_of[i] or bands[j] is None:
                continue
            # both ends must reach their own image border: a cut crack, not two neighbours
            near_i = geoms[i].intersection(geoms[j].buffer(tolerance_m))
            near_j = geoms[j].intersection(geoms[i].buffer(tolerance_m))
            if near_i.intersects(bands[i]) and near_j.intersects(bands[j]) and groups.union(i, j):
                stitched += 1
    return groups.members(), stitched


def _overlap(a, b, tolerance_m: float) -> float:
    """Share of the shorter of a and b that lies within tolerance of the other (0..1)."""
    if a.length <= 0 or b.length <= 0:
        return 1.0 if a.distance(b) <= tolerance_m else 0.0
    a_in_b = a.intersection(b.buffer(tolerance_m)).length / a.length
    b_in_a = b.intersection(a.buffer(tolerance_m)).length / b.length
    return max(a_in_b, b_in_a)


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
        groups, result.stitched = _stitch(cracks, geoms, tolerance_m)
        old = _latest_track_geometries(run)
        old_ids = list(old)
        old_shapes = [old[t] for t in old_ids]  # by tree index; never shrinks while matching
        tree = STRtree(old_shapes) if old_ids else None
        merged_into: dict[int, int] = {}  # an old track joined into another → that one
        claimed: set[int] = set()  # tracks this inspection already continues

        def resolve(track_id: int) -> int:
            while track_id in merged_into:
                track_id = merged_into[track_id]
            return track_id

        shapes = {id(m): unary_union([geoms[i] for i in m]) for m in groups}
        # the longest crack chooses first: a crack that split keeps its track on its longer part
        for members in sorted(groups, key=lambda m: -shapes[id(m)].length):
            shape = shapes[id(members)]
            matches = set()
            if tree is not None:
                for k in tree.query(shape, predicate="dwithin", distance=tolerance_m):
                    if _overlap(shape, old_shapes[int(k)], tolerance_m) >= min_overlap:
                        matches.add(resolve(old_ids[int(k)]))
            matches -= claimed  # a track continues into one crack of an inspection
            if matches:
                keep = min(matches)  # the oldest track keeps its identity
                for other in sorted(matches - {keep}):
                    Crack.objects.filter(track_id=other).update(track_id=keep)
                    CrackTrack.objects.filter(pk=other).delete()
                    merged_into[other] = keep
                    result.joined += 1
                track_id = keep
                result.matched += 1
            else:
                track_id = CrackTrack.objects.create(tunnel_id=run.tunnel_id, first_run=run).pk
                result.new += 1
            claimed.add(track_id)
            Crack.objects.filter(pk__in=members).update(track_id=track_id)
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
