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
    severity_actions,
    severity_classes,
    severity_colours,
    severity_rgb,
)
from crackportal.inspections.thumbnails import crack_thumbnail
from crackportal.reports.exports import crack_rows, previous_run

ROWS_PER_CLASS = 200  # the full list is in the CSV / XLSX export
THUMBNAILS = 12


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def nice_step(span: float, ticks: int = 6) -> float:
    """A round tick spacing (1, 2 or 5 × 10^k) giving about `ticks` ticks over span."""
    raw = max(span, 1e-6) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(f * power for f in (1, 2, 5, 10) if f * power >= raw)


def crack_map_png(run, rows: list[dict], width_px: int = 1600) -> bytes:
    """The unrolled lining as a drawing (PNG bytes): image footprints in grey, cracks coloured
    by severity, chainage ticks along the bottom in engineering form (0+400.000) and arc
    ticks on the left at round spacings, a dashed grid, and a legend of the classes."""
    from crackportal.inspections.severity import severity_classes
    from crackportal.inspections.stationing import format_chainage

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
        xs, ys = [0.0, 1.0], [0.0, 1.0]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span_x, span_y = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
    left, right, top, bottom = 90, 30, 56, 48
    scale = (width_px - left - right) / span_x
    height_px = int(min(900, max(260, span_y * scale + top + bottom)))
    scale_y = (height_px - top - bottom) / span_y
    canvas = Image.new("RGB", (width_px, height_px), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)

    def to_px(x, y):
        return left + (x - x0) * scale, top + (y - y0) * scale_y

    for c0, c1, a0, a1 in footprints:
        (px0, py0), (px1, py1) = to_px(min(c0, c1), min(a0, a1)), to_px(max(c0, c1), max(a0, a1))
        draw.rectangle([px0, py0, px1, py1], fill=(238, 240, 243), outline=(200, 204, 210))
    grey, ink = (205, 210, 218), (60, 60, 60)
    step_x, step_y = nice_step(span_x), nice_step(span_y, 4)
    decimals = 3 if step_x < 1 else 0
    x = math.ceil(x0 / step_x) * step_x
    while x <= x1 + 1e-9:
        px, _ = to_px(x, y0)
        for yy in range(top, height_px - bottom, 8):  # dashed grid line
            draw.line([px, yy, px, min(yy + 4, height_px - bottom)], fill=grey)
        draw.line([px, height_px - bottom, px, height_px - bottom + 6], fill=ink)
        label = format_chainage(x, decimals)
        label_x = min(max(px - 4 * len(label), 4), width_px - 8 * len(label) - 4)
        draw.text((label_x, height_px - bottom + 9), label, fill=ink, font=font)
        x += step_x
    y = math.ceil(y0 / step_y) * step_y
    while y <= y1 + 1e-9:
        _, py = to_px(x0, y)
        for xx in range(left, width_px - right, 8):
            draw.line([xx, py, min(xx + 4, width_px - right), py], fill=grey)
        draw.line([left - 6, py, left, py], fill=ink)
        draw.text((8, py - 8), f"{y:.2f} m" if step_y < 1 else f"{y:.0f} m", fill=ink, font=font)
        y += step_y
    draw.rectangle([left, top, width_px - right, height_px - bottom], outline=ink)
    for row in sorted(rows, key=lambda r: r["width_max_mm"]):  # widest on top
        colour = severity_rgb(row["severity"])
        for branch in row["polyline_m"]:
            if len(branch) > 1:
                draw.line([to_px(x, y) for x, y in branch], fill=colour, width=3)
    # axis titles and the legend along the top
    draw.text(
        (left, 8),
        "chainage (km+m) along the tunnel; arc (m) around the lining, downwards",
        fill=ink,
        font=font,
    )
    lx = width_px - right
    for _, name in reversed(severity_classes()):
        text_w = 8 * len(name)
        lx -= text_w + 34
        draw.rectangle([lx, 12, lx + 18, 26], fill=severity_rgb(name))
        draw.text((lx + 24, 10), name, fill=ink, font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _weasyprint():
    """WeasyPrint, imported late; it switches on Pillow's LOAD_TRUNCATED_IMAGES when imported,
    which would let truncated survey images through upload checks in this process: switch it off."""
    import weasyprint
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return weasyprint


def build_pdf(run, progress=None) -> bytes:
    """Summary, crack map, cracks by severity, new and growing cracks, actions and thumbnails."""

    def report(fraction, message):
        if progress:
            progress(fraction, message)

    report(0.05, "collecting cracks")
    rows = list(crack_rows(run))
    counts = Counter(r["severity"] for r in rows)
    classes = [name for _, name in severity_classes()]
    actions = severity_actions()
    colours = severity_colours()
    previous = previous_run(run)
    report(0.25, "drawing the crack map")
    map_uri = _data_uri(crack_map_png(run, rows), "image/png")

    thumbs = []
    widest = [r for r in rows if r["severity"] in classes[-3:]][:THUMBNAILS] or rows[:THUMBNAILS]
    if widest:
        from crackportal.inspections.models import Crack

        cracks = Crack.objects.select_related("image").in_bulk([r["crack_id"] for r in widest])
        for n, row in enumerate(widest, 1):
            crack = cracks[row["crack_id"]]
            if crack.image.file:
                try:
                    thumbs.append(
                        {"row": row, "src": _data_uri(crack_thumbnail(crack), "image/jpeg")}
                    )
                except OSError:
                    pass  # the original is unreadable: the table still lists the crack
            report(0.3 + 0.4 * n / len(widest), f"thumbnail {n} of {len(widest)}")

    images = run.images.values_list("status", flat=True)
    by_class = [
        {
            "name": name,
            "count": counts.get(name, 0),
            "action": actions.get(name, ""),
            "colour": colours.get(name, "#505050"),
            "rows": [r for r in rows if r["severity"] == name][:ROWS_PER_CLASS],
        }
        for name in reversed(classes)
    ]
    context = {
        "run": run,
        "tunnel": run.tunnel,
        "previous": previous,
        "generated": timezone.now(),
        "n_cracks": len(rows),
        "total_length_m": sum(r["length_mm"] for r in rows) / 1000,
        "n_images": len(images),
        "n_failed": sum(1 for s in images if s == SurveyImage.Status.FAILED),
        "by_class": by_class,
        "new_rows": [r for r in rows if r["new"]][:ROWS_PER_CLASS],
        "n_new": sum(1 for r in rows if r["new"]),
        "growing_rows": [r for r in rows if r["growing"]][:ROWS_PER_CLASS],
        "n_growing": sum(1 for r in rows if r["growing"]),
        "rows_per_class": ROWS_PER_CLASS,
        "map_uri": map_uri,
        "thumbs": thumbs,
        "model_version": run.model_version,
        "review": review_progress(run),
    }
    report(0.75, "laying out the PDF")
    html = render_to_string("reports/report_pdf.html", context)
    pdf = _weasyprint().HTML(string=html).write_pdf()
    report(0.98, "saving")
    return pdf
