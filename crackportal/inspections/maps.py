"""Reads for the tunnel crack map: footprints and crack polylines in tunnel metres."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from crackportal.inspections import pyramid
from crackportal.inspections.models import Crack, InspectionRun, SurveyImage
from crackportal.inspections.stationing import track_label

_ANY_ID = 987654321  # a placeholder id for URL templates
BROWSER_IMAGES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass
class MapFilters:
    """What the map shows; every field optional."""

    severities: list[str] | None = None
    orientations: list[str] | None = None
    min_width_mm: float | None = None
    chainage_from_m: float | None = None
    chainage_to_m: float | None = None
    new_only: bool = False

    @classmethod
    def from_query(cls, params) -> MapFilters:
        def number(name):
            raw = params.get(name, "").strip()
            try:
                return float(raw) if raw else None
            except ValueError:
                raise ValueError(f"{name} must be a number, not {raw!r}") from None

        def names(name):
            values = [v for v in params.get(name, "").split(",") if v]
            return values or None

        return cls(
            names("severity"),
            names("orientation"),
            number("min_width_mm"),
            number("chainage_from_m"),
            number("chainage_to_m"),
            params.get("new") in ("1", "true", "on"),
        )


def cracks_for_map(run: InspectionRun, filters: MapFilters):
    """The run's cracks after filters, as a queryset."""
    cracks = filter_cracks(Crack.objects.counted().filter(image__run=run), filters)
    if filters.new_only:
        # new: its track was not seen in an earlier inspection of the tunnel (or it has no track yet)
        earlier = Crack.objects.counted().filter(
            track=OuterRef("track"), image__run__date__lt=run.date
        )
        cracks = cracks.filter(Q(track__isnull=True) | ~Exists(earlier))
    return cracks


def filter_cracks(cracks, filters: MapFilters):
    """Severity, orientation, width and chainage filters on any crack queryset."""
    if filters.severities:
        cracks = cracks.filter(severity__in=filters.severities)
    if filters.orientations:
        cracks = cracks.filter(orientation__in=filters.orientations)
    if filters.min_width_mm is not None:
        cracks = cracks.filter(width_max_mm__gte=filters.min_width_mm)
    if filters.chainage_from_m is not None:
        cracks = cracks.filter(chainage_max_m__gte=filters.chainage_from_m)
    if filters.chainage_to_m is not None:
        cracks = cracks.filter(chainage_min_m__lte=filters.chainage_to_m)
    return cracks


def photo_kind(name: str, width: int | None, height: int | None) -> str:
    """How the map shows an image's photo: "dzi" tiles for large images, the stored file
    itself for small ones a browser draws (JPEG, PNG, BMP), "" for none (e.g. a small TIFF)."""
    if not width or not height:
        return ""
    if pyramid.needs_pyramid(width, height):
        return "dzi"
    return "image" if PurePosixPath(name.lower()).suffix in BROWSER_IMAGES else ""


def map_data(run: InspectionRun, filters: MapFilters) -> dict:
    """Footprints and cracks of one inspection for the map, compact enough for thousands of cracks."""
    placed = list(
        run.images.filter(
            status=SurveyImage.Status.DONE, chainage_start_m__isnull=False
        ).values_list(
            "id",
            "original_name",
            "chainage_start_m",
            "chainage_end_m",
            "arc_start_m",
            "arc_end_m",
            "width",
            "height",
        )
    )
    footprints = [row[:6] for row in placed]
    rows = cracks_for_map(run, filters).values_list(
        "id",
        "polyline_m",
        "length_mm",
        "width_max_mm",
        "severity",
        "orientation",
        "track__length_growth_mm_per_year",
        "track__width_growth_mm_per_year",
        "track_id",
    )
    return {
        "run": run.pk,
        "date": run.date.isoformat(),
        "circumference_m": run.tunnel.circumference_m,
        "footprints": footprints,
        # the survey photos under the cracks at close zoom: [id, width px, height px, kind]
        "photos": [[row[0], row[6], row[7], photo_kind(row[1], row[6], row[7])] for row in placed],
        "photo_urls": {
            "image": reverse("image-original", args=[_ANY_ID]).replace(str(_ANY_ID), "{id}"),
            "tile": reverse("image-tile", args=[_ANY_ID, "photo", "9/8_7.jpg"])
            .replace(str(_ANY_ID), "{id}")
            .replace("9/8_7", "{level}/{col}_{row}"),
            "tile_px": pyramid.TILE_PX,
            "overlap_px": pyramid.OVERLAP_PX,
        },
        "cracks": [
            {
                "id": i,
                "lines": lines,
                "length_mm": round(length, 1),
                "width_mm": round(width, 2),
                "severity": severity,
                "orientation": orientation,
                # the track's growth per year (growth.py), as on the crack page
                "length_growth_mm_per_year": None if grow_l is None else round(grow_l, 1),
                "width_growth_mm_per_year": None if grow_w is None else round(grow_w, 3),
                "track": track_label(track),
            }
            for i, lines, length, width, severity, orientation, grow_l, grow_w, track in rows
        ],
    }
