"""The maintenance report of one inspection as a PDF (HTML template rendered by WeasyPrint)."""

from __future__ import annotations

import base64
import io
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


def crack_map_png(run, rows: list[dict], width_px: int = 1600) -> bytes:
    """The unrolled lining: image footprints in grey, cracks coloured by severity (PNG bytes)."""
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
    margin = 40
    scale = (width_px - 2 * margin) / span_x
    height_px = int(min(900, max(240, span_y * scale + 2 * margin)))
    scale_y = (height_px - 2 * margin) / span_y
    canvas = Image.new("RGB", (width_px, height_px), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=16)

    def to_px(x, y):
        return margin + (x - x0) * scale, margin + (y - y0) * scale_y

    for c0, c1, a0, a1 in footprints:
        (px0, py0), (px1, py1) = to_px(min(c0, c1), min(a0, a1)), to_px(max(c0, c1), max(a0, a1))
        draw.rectangle([px0, py0, px1, py1], fill=(238, 240, 243), outline=(200, 204, 210))
    for row in sorted(rows, key=lambda r: r["width_max_mm"]):  # widest on top
        colour = severity_rgb(row["severity"])
        for branch in row["polyline_m"]:
            if len(branch) > 1:
                draw.line([to_px(x, y) for x, y in branch], fill=colour, width=3)
    draw.line([margin, height_px - 20, width_px - margin, height_px - 20], fill=(90, 90, 90))
    for k in range(6):
        x = x0 + span_x * k / 5
        px = margin + (x - x0) * scale
        draw.line([px, height_px - 24, px, height_px - 16], fill=(90, 90, 90))
        draw.text((px - 24, height_px - 18), f"{x:.1f} m", fill=(60, 60, 60), font=font)
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
