"""Rings, segments and lining zones of a tunnel, and a condition state (CS1–CS4) per ring.

A tunnel with a ring length (Tunnel.ring_length_m) is cut into rings along the chainage: ring 1
begins at Tunnel.first_ring_chainage_m, ring n covers [start + (n-1)·L, start + n·L). With
Tunnel.segments_per_ring = s, each ring is cut into s equal arcs from arc 0 (segment 1 at arc 0;
a real ring's staggered joints and key segment are not modelled). Lining zones name arcs:
Tunnel.lining_zones, else the default layout below with arc 0 at the invert's centre line.

A ring's (or a segment's) figures come from the counted cracks of one inspection (rejected
detections left out): crack length inside it per m² of lining (each polyline piece counted in
the ring of its midpoint), the worst maximum width of a crack passing through it, and the number
of growing cracks (selectors.growing_cracks) passing through it. The condition state is the
first rule, worst first, that any figure meets (settings.CONDITION_STATES overrides the
defaults; same shape). Defaults follow the severity bands (severity.py) in the spirit of the
FHWA element condition states: CS1 good, CS2 fair, CS3 poor, CS4 severe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.conf import settings

# (state, name, thresholds: any figure at or above its threshold puts the ring in the state)
DEFAULT_CONDITION_STATES = [
    ("CS4", "severe", {"width_mm": 1.0, "length_per_m2": 2.0, "growing": 3}),
    ("CS3", "poor", {"width_mm": 0.5, "length_per_m2": 0.5, "growing": 1}),
    ("CS2", "fair", {"width_mm": 0.2, "length_per_m2": 0.1}),
    ("CS1", "good", {}),
]
STATE_COLOURS = {"CS1": "#2b8a3e", "CS2": "#f59f00", "CS3": "#e8590c", "CS4": "#c92a2a"}

# default lining zones as fractions of the circumference, arc 0 at the invert's centre line
DEFAULT_ZONES = [
    ("invert", 0.0, 0.125),
    ("left wall", 0.125, 0.3125),
    ("left shoulder", 0.3125, 0.4375),
    ("crown", 0.4375, 0.5625),
    ("right shoulder", 0.5625, 0.6875),
    ("right wall", 0.6875, 0.875),
    ("invert", 0.875, 1.0),
]


FIGURES = ("width_mm", "length_per_m2", "growing")


def check_states(states) -> list[tuple[str, str, dict]]:
    """Condition rules as configured (CONDITION_STATES), checked; ValueError says what is wrong."""
    checked = []
    for item in states:
        if not (isinstance(item, (list, tuple)) and len(item) == 3 and isinstance(item[2], dict)):
            raise ValueError(
                f'each condition state is ["CS3", "poor", {{figure: threshold}}], not {item!r}'
            )
        unknown = set(item[2]) - set(FIGURES)
        if unknown:
            raise ValueError(
                f"unknown figure(s) {sorted(unknown)} in {item[0]}; use {', '.join(FIGURES)}"
            )
        checked.append((str(item[0]), str(item[1]), {k: float(v) for k, v in item[2].items()}))
    if not checked or checked[-1][2]:
        raise ValueError("the last (best) condition state must have no thresholds: {}")
    return checked


def condition_states() -> list[tuple[str, str, dict]]:
    return list(getattr(settings, "CONDITION_STATES", DEFAULT_CONDITION_STATES))


def state_for(width_mm: float, length_per_m2: float, growing: int, states=None) -> str:
    """The first state (worst first) whose thresholds any figure reaches; the last otherwise."""
    figures = {"width_mm": width_mm, "length_per_m2": length_per_m2, "growing": growing}
    states = states or condition_states()
    for state, _, rule in states:
        if any(figures[name] >= threshold for name, threshold in rule.items()):
            return state
    return states[-1][0]


def state_rank(state: str) -> int:
    """0 for the best state, higher for worse ones."""
    names = [s for s, _, _ in condition_states()]
    return len(names) - 1 - names.index(state) if state in names else 0


def parse_zones(text: str) -> list[tuple[str, float, float]]:
    """Zones typed as "name, arc from, arc to" lines; ValueError saying which line is wrong."""
    zones = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0]:
            raise ValueError(f'line {number}: write "name, arc from, arc to", not {line.strip()!r}')
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"line {number}: the arcs must be numbers (m)") from None
        if end <= start:
            raise ValueError(f"line {number}: the zone must end after it starts")
        zones.append((parts[0], start, end))
    return zones


def lining_zones(tunnel) -> list[tuple[str, float, float]]:
    """(name, arc from m, arc to m) of the tunnel's lining zones."""
    if tunnel.lining_zones.strip():
        return parse_zones(tunnel.lining_zones)
    c = tunnel.circumference_m
    return [(name, round(a * c, 3), round(b * c, 3)) for name, a, b in DEFAULT_ZONES]


def zone_at(zones: list[tuple[str, float, float]], arc_m: float) -> str:
    for name, start, end in zones:
        if start <= arc_m < end:
            return name
    return ""


@dataclass
class Cell:
    """One ring, or one segment of a ring, with its figures for one inspection."""

    ring: int
    segment: int | None
    chainage_from_m: float
    chainage_to_m: float
    arc_from_m: float
    arc_to_m: float
    length_m: float = 0.0
    worst_width_mm: float = 0.0
    cracks: set[int] = field(default_factory=set)
    growing: set[int] = field(default_factory=set)
    states: list | None = field(default=None, repr=False)  # the rules, read once per run

    @property
    def area_m2(self) -> float:
        return (self.chainage_to_m - self.chainage_from_m) * (self.arc_to_m - self.arc_from_m)

    @property
    def length_per_m2(self) -> float:
        return self.length_m / self.area_m2 if self.area_m2 > 0 else 0.0

    @property
    def state(self) -> str:
        return state_for(self.worst_width_mm, self.length_per_m2, len(self.growing), self.states)

    @property
    def label(self) -> str:
        return f"R{self.ring}" + (f"-S{self.segment}" if self.segment else "")

    def as_dict(self) -> dict:
        return {
            "ring": self.ring,
            "segment": self.segment,
            "label": self.label,
            "chainage_from_m": round(self.chainage_from_m, 3),
            "chainage_to_m": round(self.chainage_to_m, 3),
            "arc_from_m": round(self.arc_from_m, 3),
            "arc_to_m": round(self.arc_to_m, 3),
            "length_m": round(self.length_m, 3),
            "length_per_m2": round(self.length_per_m2, 4),
            "worst_width_mm": round(self.worst_width_mm, 3),
            "n_cracks": len(self.cracks),
            "n_growing": len(self.growing),
            "state": self.state,
            "cracks": sorted(self.cracks),
        }


class RingGrid:
    """Ring and segment numbers of points on a tunnel's unrolled lining."""

    def __init__(self, tunnel):
        self.length = tunnel.ring_length_m
        self.start = tunnel.first_ring_chainage_m
        self.segments = tunnel.segments_per_ring or None
        self.circumference = tunnel.circumference_m

    def ring_at(self, chainage_m: float) -> int:
        return math.floor((chainage_m - self.start) / self.length + 1e-9) + 1

    def ring_span(self, ring: int) -> tuple[float, float]:
        start = self.start + (ring - 1) * self.length
        return start, start + self.length

    def segment_at(self, arc_m: float) -> int | None:
        if not self.segments:
            return None
        arc = self.circumference / self.segments
        return min(max(math.floor(arc_m / arc) + 1, 1), self.segments)

    def pieces(self, p0, p1):
        """The straight line p0–p1 cut where it crosses a ring or segment boundary."""
        (x0, y0), (x1, y1) = p0, p1
        if self.ring_at(x0) == self.ring_at(x1) and self.segment_at(y0) == self.segment_at(y1):
            return [(p0, p1)]  # inside one cell (almost every piece of a polyline)
        cuts = {0.0, 1.0}
        if x1 != x0:
            low, high = sorted((self.ring_at(x0), self.ring_at(x1)))
            for ring in range(low + 1, high + 1):
                cuts.add((self.ring_span(ring)[0] - x0) / (x1 - x0))
        if self.segments and y1 != y0:
            arc = self.circumference / self.segments
            low, high = sorted((math.floor(y0 / arc), math.floor(y1 / arc)))
            for k in range(low + 1, high + 1):
                cuts.add((k * arc - y0) / (y1 - y0))
        ts = sorted(t for t in cuts if 0.0 <= t <= 1.0)
        points = [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for t in ts]
        return [(a, b) for a, b in zip(points, points[1:], strict=False) if a != b]

    def segment_span(self, segment: int) -> tuple[float, float]:
        arc = self.circumference / self.segments
        return (segment - 1) * arc, segment * arc

    def joint_arcs(self, arc_from: float, arc_to: float) -> list[float]:
        """The arcs of the segment joints strictly between arc_from and arc_to (none unsegmented)."""
        if not self.segments:
            return []
        arcs = (self.segment_span(k)[1] for k in range(1, self.segments))
        return [arc for arc in arcs if arc_from < arc < arc_to]


def ring_conditions(run, *, growing: set[int] | None = None) -> dict | None:
    """Each surveyed ring of the inspection (and its segments) with figures and state, or None
    when the tunnel has no ring length. `growing`: ids of growing cracks, when already known."""
    from crackportal.inspections.models import Crack, SurveyImage
    from crackportal.inspections.selectors import growing_cracks

    tunnel = run.tunnel
    if not tunnel.ring_length_m:
        return None
    grid = RingGrid(tunnel)
    states = condition_states()
    spans = run.images.filter(
        status=SurveyImage.Status.DONE, chainage_start_m__isnull=False
    ).values_list("chainage_start_m", "chainage_end_m")
    rings: dict[int, Cell] = {}
    segments: dict[tuple[int, int], Cell] = {}

    def ring_cell(ring: int) -> Cell:
        if ring not in rings:
            c0, c1 = grid.ring_span(ring)
            rings[ring] = Cell(ring, None, c0, c1, 0.0, grid.circumference, states=states)
        return rings[ring]

    def segment_cell(ring: int, segment: int) -> Cell:
        if (ring, segment) not in segments:
            c0, c1 = grid.ring_span(ring)
            a0, a1 = grid.segment_span(segment)
            segments[(ring, segment)] = Cell(ring, segment, c0, c1, a0, a1, states=states)
        return segments[(ring, segment)]

    for start, end in spans:
        low, high = min(start, end), max(start, end)
        for ring in range(grid.ring_at(low), grid.ring_at(max(low, high - 1e-6)) + 1):
            ring_cell(ring)
    if growing is None:
        growing = set(growing_cracks(run).values_list("id", flat=True))
    cracks = (
        Crack.objects.counted()
        .filter(image__run=run)
        .values_list("id", "polyline_m", "width_max_mm")
    )
    for crack_id, polyline, width in cracks:
        for branch in polyline or []:
            points = branch if len(branch) > 1 else branch * 2  # a dot still marks its cell
            for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
                for (xa, ya), (xb, yb) in grid.pieces((x0, y0), (x1, y1)):
                    ring = grid.ring_at((xa + xb) / 2)
                    cells = [ring_cell(ring)]
                    segment = grid.segment_at((ya + yb) / 2)
                    if segment:
                        cells.append(segment_cell(ring, segment))
                    piece = math.hypot(xb - xa, yb - ya)
                    for cell in cells:
                        cell.length_m += piece
                        cell.worst_width_mm = max(cell.worst_width_mm, width)
                        cell.cracks.add(crack_id)
                        if crack_id in growing:
                            cell.growing.add(crack_id)
    if grid.segments:  # every segment of a surveyed ring is rated, cracked or not
        for ring in list(rings):
            for segment in range(1, grid.segments + 1):
                segment_cell(ring, segment)
    ordered = [rings[r] for r in sorted(rings)]
    by_ring: dict[int, list[Cell]] = {}
    for (ring, _), cell in sorted(segments.items()):
        by_ring.setdefault(ring, []).append(cell)
    rows = []
    for cell in ordered:
        row = cell.as_dict()
        row["segments"] = [s.as_dict() for s in by_ring.get(cell.ring, [])]
        worst = max(
            row["segments"],
            key=lambda s: (state_rank(s["state"]), s["worst_width_mm"]),
            default=None,
        )
        # the worst cracked segment, named for tables; a ring is as bad as its worst segment
        row["worst_segment"] = worst if worst and worst["n_cracks"] else None
        if worst and state_rank(worst["state"]) > state_rank(row["state"]):
            row["state"] = worst["state"]
        rows.append(row)
    counts = {state: 0 for state, _, _ in states}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return {
        "ring_length_m": grid.length,
        "first_ring_chainage_m": grid.start,
        "segments_per_ring": grid.segments,
        "zones": [
            {"name": name, "arc_from_m": a, "arc_to_m": b} for name, a, b in lining_zones(tunnel)
        ],
        "states": [
            {"state": s, "name": name, "rule": rule, "colour": STATE_COLOURS.get(s, "#505050")}
            for s, name, rule in states
        ],
        "counts": counts,
        "rings": rows,
    }


RING_FIELDS = [
    "ring",
    "chainage_from_m",
    "chainage_to_m",
    "state",
    "length_per_m2",
    "worst_width_mm",
    "n_cracks",
    "n_growing",
]
SEGMENT_FIELDS = [
    "segment",
    "arc_from_m",
    "arc_to_m",
    "state",
    "length_per_m2",
    "worst_width_mm",
    "n_cracks",
    "n_growing",
]


def compact(conditions: dict | None) -> dict | None:
    """ring_conditions() for the map: rows as arrays (RING_FIELDS, SEGMENT_FIELDS), no crack
    lists (the page finds a cell's cracks among those it draws)."""
    if conditions is None:
        return None
    return {
        **{k: v for k, v in conditions.items() if k != "rings"},
        "ring_fields": RING_FIELDS,
        "segment_fields": SEGMENT_FIELDS,
        "rings": [
            [r[f] for f in RING_FIELDS] + [[[s[f] for f in SEGMENT_FIELDS] for s in r["segments"]]]
            for r in conditions["rings"]
        ],
    }


def worst_rings_first(rings: list[dict]) -> list[dict]:
    """Rings ordered for action: worst state, then widest crack, then most crack per m²."""
    return sorted(
        rings,
        key=lambda r: (
            -state_rank(r["state"]),
            -r["worst_width_mm"],
            -r["length_per_m2"],
            r["ring"],
        ),
    )


def legend() -> list[dict]:
    """The states with their colours and rules in words, for legends."""
    return [
        {
            "state": s,
            "name": name,
            "colour": STATE_COLOURS.get(s, "#505050"),
            "rule": describe_rule(rule),
        }
        for s, name, rule in condition_states()
    ]


def describe_rule(rule: dict) -> str:
    """A state's rule in words: "max. width ≥ 0.5 mm, or ≥ 0.5 m of crack per m², or ..."."""
    words = {
        "width_mm": "max. width ≥ {} mm",
        "length_per_m2": "≥ {} m of crack per m²",
        "growing": "≥ {} growing crack(s)",
    }
    return ", or ".join(words[k].format(v) for k, v in rule.items()) or "otherwise"
