"""Crack tables of one inspection as rows, CSV, XLSX, GeoJSON and DXF (tunnel metres).

Every table names the tunnel and the inspection date, gives each crack its track's stable
name (T-0042) and its chainage as engineers write it (0+400.030) beside the numbers, and
puts the unit in each numeric column's name.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from crackportal.inspections import selectors
from crackportal.inspections.maps import MapFilters, cracks_for_map
from crackportal.inspections.models import Crack, InspectionRun
from crackportal.inspections.severity import severity_actions, severity_classes
from crackportal.inspections.stationing import format_chainage, track_label

COLUMNS = [
    "tunnel",
    "inspection_date",
    "track",
    "crack_id",
    "image",
    "track_id",
    "chainage_from",
    "chainage_to",
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
    "recommended_action",
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
    actions = severity_actions()
    tunnel, date = run.tunnel.code, run.date.isoformat()
    cracks = (
        Crack.objects.counted()
        .filter(image__run=run)
        .select_related("image", "track")
        .order_by("-width_max_mm", "id")
        .iterator(chunk_size=2000)
    )
    for c in cracks:
        yield {
            "tunnel": tunnel,
            "inspection_date": date,
            "track": track_label(c.track_id),
            "crack_id": c.pk,
            "image": c.image.original_name,
            "track_id": c.track_id,
            "chainage_from": format_chainage(c.chainage_min_m),
            "chainage_to": format_chainage(c.chainage_max_m),
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
            "recommended_action": actions.get(c.severity, ""),
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


# column widths (characters) of the Cracks sheets; the rest get 12
_WIDTHS = {
    "tunnel": 10,
    "inspection_date": 12,
    "track": 8,
    "crack_id": 9,
    "image": 24,
    "chainage_from": 13,
    "chainage_to": 13,
    "orientation": 13,
    "severity": 10,
    "recommended_action": 48,
}


def _sheet(workbook, title: str, columns: list[str], rows: list[list]):
    """A sheet with a bold frozen header, filters on it and sensible column widths."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    sheet = workbook.create_sheet(title)
    sheet.append(columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([spreadsheet_safe(v) for v in row])
    sheet.freeze_panes = "A2"
    if columns:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(1, len(rows) + 1)}"
    for i, name in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(i)].width = _WIDTHS.get(name, 12)
    return sheet


def xlsx_bytes(run: InspectionRun, progress=None) -> bytes:
    """The run's cracks as an Excel workbook, one sheet per purpose: Summary (tunnel,
    inspection, counts by severity with the recommended action), Cracks (all, widest first),
    New and growing (since the previous inspection), Actions (what to do, by severity), and
    Rings (condition state per ring and segment, worst first) when the tunnel has rings."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    total = Crack.objects.counted().filter(image__run=run).count() or 1
    rows = []
    for n, row in enumerate(crack_rows(run), 1):
        rows.append(row)
        if progress and n % 1000 == 0:
            progress(n / total, f"{n} of {total} cracks")
    workbook = Workbook()
    workbook.remove(workbook.active)
    actions = severity_actions()
    by_severity: dict[str, int] = {}
    for row in rows:
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + 1
    order = [name for _, name in severity_classes()][::-1]  # worst first
    summary = _sheet(
        workbook,
        "Summary",
        ["Severity", "Cracks", "Recommended action"],
        [[name, by_severity.get(name, 0), actions.get(name, "")] for name in order],
    )
    summary.insert_rows(1, 4)
    # names and labels come from users: each in a cell of its own, defused
    summary["A1"], summary["B1"] = "Tunnel", spreadsheet_safe(run.tunnel.code)
    summary["C1"] = spreadsheet_safe(run.tunnel.name)
    summary["A2"], summary["B2"] = "Inspection", run.date.isoformat()
    summary["C2"] = spreadsheet_safe(run.label)
    summary["A3"], summary["B3"] = "Cracks", len(rows)
    for cell in ("A1", "A2", "A3"):
        summary[cell].font = Font(bold=True)
    summary.freeze_panes = None
    summary.auto_filter.ref = None
    summary.column_dimensions["A"].width, summary.column_dimensions["C"].width = 14, 60
    summary.column_dimensions["B"].width = 30
    _sheet(workbook, "Cracks", COLUMNS, [[row[c] for c in COLUMNS] for row in rows])
    changed = [row for row in rows if row["new"] or row["growing"]]
    _sheet(workbook, "New and growing", COLUMNS, [[row[c] for c in COLUMNS] for row in changed])
    work = [r for r in rows if actions.get(r["severity"])]
    _sheet(
        workbook,
        "Actions",
        ["track", "chainage_from", "chainage_to", "severity", "width_max_mm", "recommended_action"],
        [
            [
                r["track"],
                r["chainage_from"],
                r["chainage_to"],
                r["severity"],
                r["width_max_mm"],
                r["recommended_action"],
            ]
            for r in sorted(work, key=lambda r: (-r["width_max_mm"], r["chainage_min_m"]))
        ],
    )
    from crackportal.inspections.condition import ring_conditions, worst_rings_first

    rings = ring_conditions(run, growing={r["crack_id"] for r in rows if r["growing"]})
    if rings:  # one row per ring and segment, worst first (condition.py has the rules)
        cells = []
        for ring in worst_rings_first(rings["rings"]):
            for cell in [ring, *ring["segments"]]:
                cells.append(
                    [
                        cell["label"],
                        cell["state"],
                        format_chainage(cell["chainage_from_m"]),
                        format_chainage(cell["chainage_to_m"]),
                        cell["arc_from_m"],
                        cell["arc_to_m"],
                        cell["length_per_m2"],
                        cell["worst_width_mm"],
                        cell["n_cracks"],
                        cell["n_growing"],
                    ]
                )
        _sheet(
            workbook,
            "Rings",
            [
                "ring_segment",
                "condition_state",
                "chainage_from",
                "chainage_to",
                "arc_from_m",
                "arc_to_m",
                "crack_length_m_per_m2",
                "worst_width_mm",
                "cracks",
                "growing_cracks",
            ],
            cells,
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# DXF layers: one per severity class (AutoCAD colour index, green to red), and the drawing
DXF_COLOURS = [3, 2, 30, 1, 6]


def dxf_bytes(run: InspectionRun) -> bytes:
    """The unrolled crack map as a DXF drawing in metres (x chainage, y arc): each crack a
    polyline on its severity's layer (CRACK-<SEVERITY>) with its track name beside it, a
    1-m grid (GRID), chainage and arc labels in engineering form (AXES), and with a ring
    length, ring and segment joints (RINGS) and each ring's condition state (CONDITION)."""
    import math

    import ezdxf

    doc = ezdxf.new("R2010", setup=True)
    doc.units = ezdxf.units.M
    names = [name for _, name in severity_classes()]
    for i, name in enumerate(names):
        colour = DXF_COLOURS[min(i * len(DXF_COLOURS) // max(len(names), 1), len(DXF_COLOURS) - 1)]
        doc.layers.add(f"CRACK-{name.upper()}", color=colour)
    doc.layers.add("LABELS", color=7)
    doc.layers.add("GRID", color=8)
    doc.layers.add("AXES", color=7)
    msp = doc.modelspace()
    xs, ys = [], []
    for row in crack_rows(run):
        layer = f"CRACK-{(row['severity'] or 'unclassified').upper()}"
        if layer not in doc.layers:
            doc.layers.add(layer, color=7)
        for branch in row["polyline_m"]:
            if len(branch) < 2:
                continue
            msp.add_lwpolyline(
                [(float(x), float(y)) for x, y in branch], dxfattribs={"layer": layer}
            )
            xs += [p[0] for p in branch]
            ys += [p[1] for p in branch]
        label = row["track"] or f"#{row['crack_id']}"
        msp.add_text(
            f"{label} {row['width_max_mm']:.2f} mm",
            height=0.05,
            dxfattribs={"layer": "LABELS", "insert": (row["chainage_max_m"], row["arc_max_m"])},
        )
    if xs:
        x0, x1 = math.floor(min(xs)), math.ceil(max(xs))
        y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        for x in range(x0, x1 + 1):
            msp.add_line((x, y0), (x, y1), dxfattribs={"layer": "GRID"})
            msp.add_text(
                format_chainage(x),
                height=0.08,
                dxfattribs={"layer": "AXES", "insert": (x, y0 - 0.15)},
            )
        for y in range(y0, y1 + 1):
            msp.add_line((x0, y), (x1, y), dxfattribs={"layer": "GRID"})
            msp.add_text(
                f"{y:.1f} m", height=0.08, dxfattribs={"layer": "AXES", "insert": (x0 - 0.6, y)}
            )
        msp.add_text(
            f"{run.tunnel.code} {run.date.isoformat()} — chainage (x) and arc (y) in metres",
            height=0.1,
            dxfattribs={"layer": "AXES", "insert": (x0, y1 + 0.2)},
        )
        _dxf_rings(doc, msp, run, (x0, x1, y0, y1))
    stream = io.StringIO()
    doc.write(stream)
    return stream.getvalue().encode("utf-8")


def _dxf_rings(doc, msp, run: InspectionRun, extent) -> None:
    """Ring joints numbered R…, segment joints (RINGS) and each ring's condition state as a
    text above the lining (CONDITION), when the tunnel has a ring length."""
    from crackportal.inspections.condition import RingGrid, ring_conditions

    rings = ring_conditions(run)
    if not rings or not rings["rings"]:
        return
    x0, x1, y0, y1 = extent
    grid = RingGrid(run.tunnel)
    doc.layers.add("RINGS", color=5)
    doc.layers.add("CONDITION", color=1)
    for ring in rings["rings"]:
        c0, c1 = ring["chainage_from_m"], ring["chainage_to_m"]
        msp.add_line((c0, y0), (c0, y1), dxfattribs={"layer": "RINGS"})
        msp.add_text(
            f"R{ring['ring']}",
            height=0.06,
            dxfattribs={"layer": "RINGS", "insert": ((c0 + c1) / 2, y0 - 0.3)},
        )
        msp.add_text(
            ring["state"],
            height=0.06,
            dxfattribs={"layer": "CONDITION", "insert": ((c0 + c1) / 2, y0 - 0.42)},
        )
    last = rings["rings"][-1]["chainage_to_m"]
    msp.add_line((last, y0), (last, y1), dxfattribs={"layer": "RINGS"})
    first = rings["rings"][0]["chainage_from_m"]
    for arc in grid.joint_arcs(y0, y1):
        msp.add_line((first, arc), (last, arc), dxfattribs={"layer": "RINGS"})


def geojson_text(run: InspectionRun) -> str:
    return json.dumps(geojson(run), separators=(",", ":"))
