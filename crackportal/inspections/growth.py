"""A crack's history across inspections and its growth per year: computed here and nowhere else.

The crack page, the track rows (and so the API), the map and the reports all read these
figures, so a manager sees the same growth on every page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

DAYS_PER_YEAR = 365.25


@dataclass
class Observation:
    """One inspection's view of a tracked crack: its stitched pieces merged into one."""

    run_id: int
    date: dt.date
    length_mm: float = 0.0  # total of the pieces
    width_max_mm: float = 0.0  # widest piece
    cracks: list = field(default_factory=list)  # the pieces, longest first

    @property
    def crack(self):
        """The longest piece: the one linked and shown as a thumbnail."""
        return self.cracks[0]

    def as_row(self) -> dict:
        """The stored form (CrackTrack.history)."""
        return {
            "run": self.run_id,
            "date": self.date.isoformat(),
            "length_mm": round(self.length_mm, 3),
            "width_max_mm": round(self.width_max_mm, 4),
            "pieces": len(self.cracks),
        }


@dataclass(frozen=True)
class Growth:
    """Change per year between the first and the last inspection of a track."""

    days: int
    length_mm_per_year: float
    width_mm_per_year: float


def observations(cracks) -> list[Observation]:
    """Cracks of one track grouped per inspection (oldest first), pieces merged."""
    per_run: dict[int, Observation] = {}
    for crack in cracks:
        run = crack.image.run
        obs = per_run.setdefault(run.pk, Observation(run.pk, run.date))
        obs.length_mm += crack.length_mm
        obs.width_max_mm = max(obs.width_max_mm, crack.width_max_mm)
        obs.cracks.append(crack)
    for obs in per_run.values():
        obs.cracks.sort(key=lambda c: (-c.length_mm, c.pk))
    return sorted(per_run.values(), key=lambda o: (o.date, o.run_id))


def growth_per_year(history: list[Observation]) -> Growth | None:
    """Length and max-width change per year, first to last inspection; None before a second one."""
    if len(history) < 2:
        return None
    first, last = history[0], history[-1]
    days = (last.date - first.date).days
    if days <= 0:
        return None
    years = days / DAYS_PER_YEAR
    return Growth(
        days=days,
        length_mm_per_year=(last.length_mm - first.length_mm) / years,
        width_mm_per_year=(last.width_max_mm - first.width_max_mm) / years,
    )
