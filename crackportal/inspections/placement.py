"""Where the images of an upload go on the unrolled lining: manifest rows, else a running layout.

The rule when an upload holds more than one manifest (documented in the README): a manifest
uploaded on its own (the form's manifest field, or a .csv among the files) wins; a manifest
inside a zip adds rows only for files the earlier manifests do not list. Every file listed
twice with different footprints is reported, with the row that was used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

from django.conf import settings
from django.db.models import Max, Min

from crackportal.inspections.uploads import Footprint, IncomingFile, parse_manifest

MANIFEST_MAX_BYTES = 10 * 1024 * 1024
INCREASING, DECREASING = "increasing", "decreasing"


def _read(manifest: IncomingFile) -> dict[str, Footprint]:
    manifest.stream.seek(0)
    return parse_manifest(manifest.stream.read(MANIFEST_MAX_BYTES))


def merge_manifests(
    separate: list[IncomingFile], zipped: list[tuple[str, IncomingFile]]
) -> tuple[dict[str, Footprint] | None, list[str]]:
    """One footprint per file name from every manifest of an upload, and the conflicts found."""
    if not separate and not zipped:
        return None, []
    footprints: dict[str, Footprint] = {}
    conflicts = []
    sources = [(m.name, m) for m in separate] + [(f"{z} › {m.name}", m) for z, m in zipped]
    used_from: dict[str, str] = {}
    for source, manifest in sources:
        for name, footprint in _read(manifest).items():
            if name not in footprints:
                footprints[name], used_from[name] = footprint, source
            elif footprints[name] != footprint:
                conflicts.append(
                    f"{name} is in {used_from[name]} and in {source} with another footprint; "
                    f"the row of {used_from[name]} was used"
                )
    return footprints, conflicts


@dataclass
class Layout:
    """Places images without a manifest row one after another along the chainage."""

    cursor_m: float
    direction: str = INCREASING
    unplaced: list[str] = field(default_factory=list)

    @classmethod
    def for_run(cls, run, start_chainage_m: float | None, direction: str) -> Layout:
        """Start where asked, else continue after (or before) the inspection's images so far."""
        if start_chainage_m is None:
            edge = run.images.aggregate(end=Max("chainage_end_m"), start=Min("chainage_start_m"))
            start_chainage_m = (edge["end"] if direction == INCREASING else edge["start"]) or 0.0
        return cls(float(start_chainage_m), direction)

    def next(self, name: str, width: int, height: int) -> Footprint:
        mm = settings.DEFAULT_MM_PER_PX
        length_m = width * mm / 1000
        arc0 = settings.DEFAULT_ARC_START_M
        if self.direction == DECREASING:
            start, self.cursor_m = self.cursor_m - length_m, self.cursor_m - length_m
        else:
            start, self.cursor_m = self.cursor_m, self.cursor_m + length_m
        self.unplaced.append(name)
        return Footprint(start, start + length_m, arc0, arc0 + height * mm / 1000, mm)


@dataclass
class Placement:
    """The footprint of each file of one upload."""

    footprints: dict[str, Footprint] | None
    layout: Layout
    used_rows: set[str] = field(default_factory=set)
    shared_rows: list[str] = field(default_factory=list)  # one row, several different files

    def footprint(self, name: str, width: int, height: int) -> Footprint:
        row = (self.footprints or {}).get(PurePosixPath(name).name)
        if row is None:
            return self.layout.next(name, width, height)
        if PurePosixPath(name).name in self.used_rows:
            self.shared_rows.append(PurePosixPath(name).name)
        self.used_rows.add(PurePosixPath(name).name)
        row = replace(row)
        if row.mm_per_px is None:
            row.mm_per_px = (row.chainage_end_m - row.chainage_start_m) * 1000 / width
            row.check(f"manifest row of {PurePosixPath(name).name}")  # the scale it implies
        return row

    def unused_rows(self) -> list[str]:
        return sorted(set(self.footprints or {}) - self.used_rows)
