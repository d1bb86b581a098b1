"""The maintenance report of one inspection as a PDF (HTML template rendered by WeasyPrint)."""

from __future__ import annotations

import base64
import io
import math
from collections import Counter

from django.template.loader import render_to_string
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from crackportal.inspections.models import SurveyImage
from crackportal.inspections.reviews import review_progress
from crackportal.inspections.severity import (
    hex_rgb,
    severity_actions,
    severity_classes,
    severity_colours,
)
from crackportal.inspections.stationing import format_chainage
from crackportal.inspections.thumbnails import crack_thumbnail
from crackportal.reports.exports import crack_rows, previous_run

THUMBNAILS = 12


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def nice_step(span: float, ticks: int = 6) -> float:
    """A round tick spacing (1, 2 or 5 × 10^k) giving about `ticks` ticks over span."""
    raw = max(span, 1e-6) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(f * power for f in (1, 2, 5, 10) if f * power >= raw)


def _weasyprint():
    """WeasyPrint, imported late; it switches on Pillow's LOAD_TRUNCATED_IMAGES when imported,
    which would let truncated survey images through upload checks in this process: switch it off."""
    import weasyprint
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return weasyprint


# the to-scale map: A3 landscape sheets at a standard drawing scale
SHEET_MAP_MM = (360.0, 190.0)  # drawable map area on an A3 landscape sheet (width, height)
SCALES = [10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000]
MAX_SHEETS = 8
UNKNOWN_RGB = (80, 80, 80)  # a severity class no longer configured: grey
SHEET_DPI = 150
MARGIN_MM = {"left": 20.0, "right": 22.0, "top": 12.0, "bottom": 10.0}
REGISTER_ROWS = 400  # the full list is in the CSV / XLSX export
RING_ROWS = 60
BEFORE_AFTER = 8
APPROVAL_CELL = "<!--approval-cell-->"
APPROVAL_BANNER = "<!--approval-banner-->"


def choose_scale(span_chainage_m: float, span_arc_m: float) -> tuple[int, int]:
    """(N of 1:N, number of sheets): the largest standard scale at which the surveyed arc fits
    a sheet's height and the chainage fits MAX_SHEETS sheets (the smallest scale otherwise)."""
    width_mm, height_mm = SHEET_MAP_MM
    for n in SCALES:
        sheets = math.ceil(max(span_chainage_m, 1e-6) * 1000 / n / width_mm)
        if span_arc_m * 1000 / n <= height_mm and sheets <= MAX_SHEETS:
            return n, sheets
    n = SCALES[-1]
    return n, math.ceil(max(span_chainage_m, 1e-6) * 1000 / n / width_mm)


def _ring_geometry(run, rings: dict | None):
    """(RingGrid, zones as (name, arc from, arc to)) of a ringed tunnel; (None, []) otherwise."""
    from crackportal.inspections.condition import RingGrid

    if not rings:
        return None, []
    return RingGrid(run.tunnel), [
        (z["name"], z["arc_from_m"], z["arc_to_m"]) for z in rings["zones"]
    ]


def map_sheets(run, rows: list[dict], rings: dict | None) -> list[dict]:
    """The unrolled lining drawn to scale on A3 sheets (PNG data URIs with their size in mm)."""
    from crackportal.inspections.condition import STATE_COLOURS

    footprints = list(
        run.images.filter(chainage_start_m__isnull=False).values_list(
            "chainage_start_m", "chainage_end_m", "arc_start_m", "arc_end_m"
        )
    )
    xs = [x for f in footprints for x in f[:2]] + [r["chainage_min_m"] for r in rows]
    xs += [r["chainage_max_m"] for r in rows]
    ys = [y for f in footprints for y in f[2:]] + [r["arc_min_m"] for r in rows]
    ys += [r["arc_max_m"] for r in rows]
    if not xs:
        return []
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    n, count = choose_scale(x1 - x0, y1 - y0)
    per_sheet_m = SHEET_MAP_MM[0] * n / 1000
    grid, zones = _ring_geometry(run, rings)
    ring_states = {r["ring"]: r["state"] for r in rings["rings"]} if rings else {}
    px_mm = SHEET_DPI / 25.4
    font = ImageFont.load_default(size=round(2.6 * px_mm))
    small = ImageFont.load_default(size=round(2.2 * px_mm))
    ink, grey, faint = (40, 40, 40), (150, 158, 170), (225, 229, 235)
    widest_on_top = sorted(rows, key=lambda r: r["width_max_mm"])
    palette = {name: hex_rgb(colour) for name, colour in severity_colours().items()}
    sheets = []
    for k in range(count):
        c0 = x0 + k * per_sheet_m
        c1 = min(x1, c0 + per_sheet_m)
        width_mm = (c1 - c0) * 1000 / n
        height_mm = max((y1 - y0) * 1000 / n, 5.0)
        total_w = width_mm + MARGIN_MM["left"] + MARGIN_MM["right"]
        total_h = height_mm + MARGIN_MM["top"] + MARGIN_MM["bottom"]
        canvas = Image.new("RGB", (round(total_w * px_mm), round(total_h * px_mm)), "white")
        draw = ImageDraw.Draw(canvas)

        def to_px(x, y, c0=c0):
            return (
                (MARGIN_MM["left"] + (x - c0) * 1000 / n) * px_mm,
                (MARGIN_MM["top"] + (y - y0) * 1000 / n) * px_mm,
            )

        left, top = to_px(c0, y0)
        right, bottom = to_px(c1, y1)
        for f0, f1, a0, a1 in footprints:
            lo, hi = max(min(f0, f1), c0), min(max(f0, f1), c1)
            if lo < hi:
                (p0, q0), (p1, q1) = to_px(lo, min(a0, a1)), to_px(hi, max(a0, a1))
                draw.rectangle([p0, q0, p1, q1], fill=(241, 243, 246), outline=faint)
        # rings: lines, numbers and the condition band above the drawing
        if grid:
            ring_px = grid.length * 1000 / n * px_mm
            every = max(1, math.ceil(9 * px_mm / max(ring_px, 1e-6)))
            for ring in range(grid.ring_at(c0), grid.ring_at(c1) + 1):
                r0, r1 = grid.ring_span(ring)
                lo, hi = max(r0, c0), min(r1, c1)
                if lo >= hi:
                    continue
                (p0, _), (p1, _) = to_px(lo, y0), to_px(hi, y0)
                if ring in ring_states:
                    rgb = hex_rgb(STATE_COLOURS.get(ring_states[ring], "#888888"))
                    draw.rectangle([p0, top - 4.5 * px_mm, p1, top - 1.5 * px_mm], fill=rgb)
                if r0 >= c0 and ring_px >= 2:
                    draw.line([p0, top, p0, bottom], fill=grey, width=1)
                if ring % every == 0 and ring in ring_states:
                    draw.text(
                        ((p0 + p1) / 2, top - 8.5 * px_mm),
                        f"R{ring}",
                        fill=ink,
                        font=small,
                        anchor="mt",
                    )
            for arc in grid.joint_arcs(y0, y1):
                _, q = to_px(c0, arc)
                draw.line([left, q, right, q], fill=grey, width=1)
        for name, a0, a1 in zones:
            lo, hi = max(a0, y0), min(a1, y1)
            if lo < hi:
                _, q = to_px(c1, (lo + hi) / 2)
                draw.text(
                    (right + 1.5 * px_mm, q), name, fill=(95, 61, 196), font=small, anchor="lm"
                )
        # chainage ticks along the bottom, arc ticks on the left, at round steps
        step_x = nice_step(c1 - c0, 8)
        decimals = 3 if step_x < 1 else 0
        x = math.ceil(c0 / step_x - 1e-9) * step_x
        while x <= c1 + 1e-9:
            p, _ = to_px(x, y1)
            for yy in range(int(top), int(bottom), 12):  # a dashed grid line
                draw.line([p, yy, p, min(yy + 6, bottom)], fill=(205, 210, 218))
            draw.line([p, bottom, p, bottom + 1.5 * px_mm], fill=ink, width=2)
            draw.text(
                (p, bottom + 2 * px_mm),
                format_chainage(x, decimals),
                fill=ink,
                font=font,
                anchor="mt",
            )
            x += step_x
        step_y = nice_step(y1 - y0, 4)
        y = math.ceil(y0 / step_y - 1e-9) * step_y
        while y <= y1 + 1e-9:
            _, q = to_px(c0, y)
            for xx in range(int(left), int(right), 12):
                draw.line([xx, q, min(xx + 6, right), q], fill=(205, 210, 218))
            draw.line([left - 1.5 * px_mm, q, left, q], fill=ink, width=2)
            draw.text(
                (left - 2 * px_mm, q),
                f"{y:.2f} m" if step_y < 1 else f"{y:.0f} m",
                fill=ink,
                font=font,
                anchor="rm",
            )
            y += step_y
        draw.rectangle([left, top, right, bottom], outline=ink, width=2)
        for row in widest_on_top:
            if row["chainage_max_m"] < c0 or row["chainage_min_m"] > c1:
                continue
            colour = palette.get(row["severity"], UNKNOWN_RGB)
            line_px = max(3, round(row["width_max_mm"] / n * px_mm))
            for branch in row["polyline_m"]:
                if len(branch) > 1:
                    draw.line([to_px(bx, by) for bx, by in branch], fill=colour, width=line_px)
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG", optimize=True, dpi=(SHEET_DPI, SHEET_DPI))
        bar_m = nice_step((c1 - c0) / 5, 1)
        sheets.append(
            {
                "number": k + 1,
                "src": _data_uri(buffer.getvalue(), "image/png"),
                "width_mm": round(total_w, 2),
                "chainage_from": format_chainage(c0),
                "chainage_to": format_chainage(c1),
                "scale": n,
                "count": count,
                "bar_m": bar_m,
                "bar_mm": round(bar_m * 1000 / n, 2),
            }
        )
    return sheets


def before_after(run, rows: list[dict], made: dict[int, str]) -> list[dict]:
    """The growing cracks beside their previous sighting: figures and two thumbnails each."""
    from crackportal.inspections.models import Crack

    growing = [r for r in rows if r["growing"]]
    growing.sort(key=lambda r: -(r["width_growth_mm_per_year"] or 0))
    pairs = []
    cracks = Crack.objects.select_related("image__run").in_bulk(
        [r["crack_id"] for r in growing[:BEFORE_AFTER]]
    )
    for row in growing[:BEFORE_AFTER]:
        now = cracks[row["crack_id"]]
        before = (
            Crack.objects.counted()
            .filter(track_id=now.track_id, image__run__date__lt=run.date)
            .select_related("image__run")
            .order_by("-image__run__date", "-id")
            .first()
        )
        pairs.append(
            {
                "row": row,
                "before": before,
                "before_date": before.image.run.date if before else None,
                "before_src": _thumb(before, made),
                "now_src": _thumb(now, made),
            }
        )
    return pairs


def new_before_after(run, previous, rows: list[dict], made: dict[int, str]) -> list[dict]:
    """The widest new cracks beside the previous inspection's photo of the same place."""
    from django.db.models import Q

    from crackportal.inspections.models import Crack
    from crackportal.inspections.thumbnails import area_thumbnail

    new = sorted((r for r in rows if r["new"]), key=lambda r: -r["width_max_mm"])[:BEFORE_AFTER]
    cracks = Crack.objects.select_related("image").in_bulk([r["crack_id"] for r in new])
    pairs = []
    for row in new:
        x = (row["chainage_min_m"] + row["chainage_max_m"]) / 2
        y = (row["arc_min_m"] + row["arc_max_m"]) / 2
        covering = (
            previous.images.exclude(file="")
            .filter(
                Q(chainage_start_m__lte=x, chainage_end_m__gte=x)
                | Q(chainage_start_m__gte=x, chainage_end_m__lte=x)
            )
            .filter(
                Q(arc_start_m__lte=y, arc_end_m__gte=y) | Q(arc_start_m__gte=y, arc_end_m__lte=y)
            )
            .first()
        )
        before = ""
        if covering is not None:
            try:
                before = _data_uri(
                    area_thumbnail(
                        covering,
                        (row["chainage_min_m"], row["chainage_max_m"]),
                        (row["arc_min_m"], row["arc_max_m"]),
                    ),
                    "image/jpeg",
                )
            except (OSError, ValueError):
                before = ""
        pairs.append(
            {
                "row": row,
                "before_src": before,
                "now_src": _thumb(cracks[row["crack_id"]], made),
                "covered": covering is not None,
            }
        )
    return pairs


def _thumb(crack, made: dict[int, str]) -> str:
    """A crack's thumbnail as a data URI, made once per report (made: by crack id)."""
    if crack is None or not crack.image.file:
        return ""
    if crack.pk not in made:
        try:
            made[crack.pk] = _data_uri(crack_thumbnail(crack), "image/jpeg")
        except OSError:
            made[crack.pk] = ""  # the original is unreadable: the figures still stand
    return made[crack.pk]


def approval_texts(report) -> tuple[str, str]:
    """The title block's "approved by" cell and the banner, for a draft or an approved report."""
    from django.utils.html import escape

    if report is None or not report.approved_at:
        return (
            "— (draft: not approved)",
            '<p class="draft">DRAFT: not approved. Figures may change until a manager approves '
            "this report.</p>",
        )
    who = escape(report.approved_by.get_full_name() or report.approved_by.username)
    when = report.approved_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{who}, {when}",
        f'<p class="approved">APPROVED by {who} on {when}. This report is locked: a change '
        f"needs a new version (this is version {report.version}).</p>",
    )


def stamp(html: str, report) -> str:
    cell, banner = approval_texts(report)
    return html.replace(APPROVAL_CELL, cell).replace(APPROVAL_BANNER, banner)


def render_pdf(html: str) -> bytes:
    return _weasyprint().HTML(string=html).write_pdf()


def build_pdf_html(run, progress=None, report=None) -> str:
    """The report's HTML with approval markers (stamp() fills them): title block, summary,
    ring condition, the to-scale map on A3 sheets, growing cracks before and after, the
    crack register by chainage, and the widest cracks' photos."""
    from crackportal.inspections.condition import legend, ring_conditions, zone_at

    def report_progress(fraction, message):
        if progress:
            progress(fraction, message)

    report_progress(0.05, "collecting cracks")
    rows = list(crack_rows(run))
    counts = Counter(r["severity"] for r in rows)
    classes = [name for _, name in severity_classes()]
    actions = severity_actions()
    colours = severity_colours()
    previous = previous_run(run)
    growing_ids = {r["crack_id"] for r in rows if r["growing"]}
    rings = ring_conditions(run, growing=growing_ids)
    report_progress(0.2, "drawing the map sheets")
    sheets = map_sheets(run, rows, rings)
    report_progress(0.4, "photos of growing cracks")
    made: dict[int, str] = {}  # a crack among the growing, new and widest is drawn once
    pairs = before_after(run, rows, made) if previous else []
    new_pairs = new_before_after(run, previous, rows, made) if previous else []

    thumbs = []
    widest = [r for r in rows if r["severity"] in classes[-3:]][:THUMBNAILS] or rows[:THUMBNAILS]
    if widest:
        from crackportal.inspections.models import Crack

        cracks = Crack.objects.select_related("image").in_bulk([r["crack_id"] for r in widest])
        for n, row in enumerate(widest, 1):
            src = _thumb(cracks[row["crack_id"]], made)
            if src:
                thumbs.append({"row": row, "src": src})
            report_progress(0.5 + 0.2 * n / len(widest), f"thumbnail {n} of {len(widest)}")

    grid, zones = _ring_geometry(run, rings)
    register = sorted(rows, key=lambda r: (r["chainage_min_m"], r["arc_min_m"]))[:REGISTER_ROWS]
    for r in register:
        mid_x = (r["chainage_min_m"] + r["chainage_max_m"]) / 2
        mid_y = (r["arc_min_m"] + r["arc_max_m"]) / 2
        r["ring"] = f"R{grid.ring_at(mid_x)}" if grid else ""
        r["zone"] = zone_at(zones, mid_y) if zones else ""
    images = run.images.values_list("status", flat=True)
    review = review_progress(run)
    severity_table = [
        {
            "name": name,
            "count": counts.get(name, 0),
            "action": actions.get(name, ""),
            "colour": colours.get(name, "#505050"),
        }
        for name in reversed(classes)
    ]
    context = {
        "run": run,
        "tunnel": run.tunnel,
        "report": report,
        "previous": previous,
        "generated": timezone.now(),
        "n_cracks": len(rows),
        "total_length_m": sum(r["length_mm"] for r in rows) / 1000,
        "n_images": len(images),
        "n_failed": sum(1 for s in images if s == SurveyImage.Status.FAILED),
        "severity_table": severity_table,
        "n_new": sum(1 for r in rows if r["new"]),
        "n_growing": len(growing_ids),
        "register": register,
        "register_rows": REGISTER_ROWS,
        "sheets": sheets,
        "pairs": pairs,
        "new_pairs": new_pairs,
        "thumbs": thumbs,
        "model_version": run.model_version,
        "review": review,
        "reviewed_percent": round(100 * review["reviewed"] / review["images"])
        if review["images"]
        else 0,
        "rings": rings,
        "ring_rows": _ring_rows(rings),
        "ring_rows_max": RING_ROWS,
        "condition_legend": legend(),
        "approval_cell": APPROVAL_CELL,
        "approval_banner": APPROVAL_BANNER,
    }
    report_progress(0.75, "laying out the PDF")
    return render_to_string("reports/report_pdf.html", context)


def _ring_rows(rings: dict | None) -> list[dict]:
    """The worst rings first, with chainage in engineering form and the worst segment named."""
    from crackportal.inspections.condition import worst_rings_first

    if not rings:
        return []
    return [
        {
            **ring,
            "chainage_from": format_chainage(ring["chainage_from_m"]),
            "chainage_to": format_chainage(ring["chainage_to_m"]),
            "worst_segment": (
                f"S{ring['worst_segment']['segment']} ({ring['worst_segment']['state']})"
                if ring["worst_segment"]
                else ""
            ),
        }
        for ring in worst_rings_first(rings["rings"])[:RING_ROWS]
    ]


def build_pdf(run, progress=None, report=None) -> tuple[bytes, str]:
    """The PDF (draft or approved, as report says) and its unstamped HTML source."""
    source = build_pdf_html(run, progress, report)
    pdf = render_pdf(stamp(source, report))
    if progress:
        progress(0.98, "saving")
    return pdf, source
