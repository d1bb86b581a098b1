"""Crack tables of one inspection as rows, CSV, XLSX and GeoJSON (tunnel metres)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from crackportal.inspections import selectors
from crackportal.inspections.maps import MapFilters, cracks_for_map
from crackportal.inspections.models import Crack, InspectionRun

COLUMNS = [
    "crack_id",
    "image",
    "track_id",
    "chainage_min_m",
    "chainage_max_m",
    "arc_min_m",
    "arc_max_m",
    "length_mm",
    "width_max_mm",
    "width_mean_mm",
    "width_p95_mm",
    "area_mm2",
    "orientation",
    "severity",
    "new",
    "growing",
    "length_growth_mm_per_year",
    "width_growth_mm_per_year",
]


def previous_run(run: InspectionRun) -> InspectionRun | None:
    """The tunnel's latest finished inspection before this one."""
    return (
        InspectionRun.objects.filter(
            tunnel_id=run.tunnel_id, date__lt=run.date, status=InspectionRun.Status.DONE
        )
        .order_by("-date", "-created_at")
        .first()
    )


def change_sets(run: InspectionRun) -> tuple[set[int], set[int]]:
    """Ids of the run's cracks that are new, and that grew, since earlier inspections."""
    if previous_run(run) is None:
        return set(), set()
    new = set(cracks_for_map(run, MapFilters(new_only=True)).values_list("id", flat=True))
    growing = set(selectors.growing_cracks(run).values_list("id", flat=True))
    return new, growing


def crack_rows(run: InspectionRun) -> Iterator[dict]:
    """One dict per crack of the run (COLUMNS plus polyline_m), widest first."""
    new, growing = change_sets(run)
    cracks = (
        Crack.objects.counted()
        .filter(image__run=run)
        .select_related("image", "track")
        .order_by("-width_max_mm", "id")
        .iterator(chunk_size=2000)
    )
    for c in cracks:
        yield {
            "crack_id": c.pk,
            "image": c.image.original_name,
            "track_id": c.track_id,
            "chainage_min_m": round(c.chainage_min_m, 3),
            "chainage_max_m": round(c.chainage_max_m, 3),
            "arc_min_m": round(c.arc_min_m, 3),
            "arc_max_m": round(c.arc_max_m, 3),
            "length_mm": round(c.length_mm, 1),
            "width_max_mm": round(c.width_max_mm, 3),
            "width_mean_mm": round(c.width_mean_mm, 3),
            "width_p95_mm": round(c.width_p95_mm, 3),
            "area_mm2": round(c.area_mm2, 1),
            "orientation": c.orientation,
            "severity": c.severity,
            "new": c.pk in new,
            "growing": c.pk in growing,
            # the track's growth (growth.py), as on the crack page and in the API
            "length_growth_mm_per_year": _rounded(c.track and c.track.length_growth_mm_per_year, 1),
            "width_growth_mm_per_year": _rounded(c.track and c.track.width_growth_mm_per_year, 3),
            "polyline_m": c.polyline_m,
        }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(value):
    """Text that a spreadsheet would run as a formula ("=HYPERLINK(...)") gets a leading quote.

    Names of images, tunnels and runs come from users; numbers are left alone.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(run: InspectionRun) -> Iterator[str]:
    """The run's cracks as CSV text, one line at a time (for streaming)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in crack_rows(run):
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0), buffer.truncate()
    yield buffer.getvalue()


def geojson(run: InspectionRun) -> dict:
    """Crack polylines as a GeoJSON FeatureCollection in tunnel coordinates (x chainage m, y arc m)."""
    features = []
    for row in crack_rows(run):
        lines = row.pop("polyline_m")
        features.append(
            {
                "type": "Feature",
                "id": row["crack_id"],
                "geometry": {"type": "MultiLineString", "coordinates": lines},
                "properties": row,
            }
        )
    return {
        "type": "FeatureCollection",
        "name": f"{run.tunnel.code} {run.date.isoformat()}",
        # not WGS84: a local engineering frame on the unrolled lining
        "crs": {"type": "name", "properties": {"name": "tunnel-unrolled-lining-metres"}},
        "features": features,
    }


def xlsx_bytes(run: InspectionRun, progress=None) -> bytes:
    """The run's cracks as an Excel workbook: a summary sheet and a Cracks sheet."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    summary = workbook.create_sheet("Summary")
    summary.append(["Tunnel", *map(spreadsheet_safe, (run.tunnel.code, run.tunnel.name))])
    summary.append(["Inspection", run.date.isoformat(), spreadsheet_safe(run.label)])
    sheet = workbook.create_sheet("Cracks")
    sheet.append(COLUMNS)
    total = Crack.objects.counted().filter(image__run=run).count() or 1
    by_severity: dict[str, int] = {}
    for n, row in enumerate(crack_rows(run), 1):
        sheet.append([spreadsheet_safe(row[c]) for c in COLUMNS])
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + 1
        if progress and n % 1000 == 0:
            progress(n / total, f"{n} of {total} cracks")
    summary.append(["Cracks", sum(by_severity.values())])
    for name, count in sorted(by_severity.items()):
        summary.append([f"Severity {name}", count])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def geojson_text(run: InspectionRun) -> str:
    return json.dumps(geojson(run), separators=(",", ":"))
