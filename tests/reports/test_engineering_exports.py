"""Exports a contractor can work from (issue 19): chainage as engineers write it, stable
track names, tunnel and date on every row, a formatted workbook, and a DXF drawing that CAD
opens with cracks on severity layers at their tunnel coordinates."""

import base64
import csv
import io

import pytest
from django.urls import reverse

from crackportal.inspections.stationing import format_chainage, track_label
from crackportal.reports import exports
from tests.reports.test_reports import _inspections


@pytest.mark.parametrize(
    ("metres", "written"),
    [
        (400.03, "0+400.030"),
        (0, "0+000.000"),
        (12345.6789, "12+345.679"),
        (999.9996, "1+000.000"),
        (-12.5, "-0+012.500"),
        (1000, "1+000.000"),
    ],
)
def test_chainage_is_written_as_kilometres_plus_metres(metres, written):
    assert format_chainage(metres) == written


def test_track_names_are_stable_and_padded():
    assert (
        track_label(42) == "T-0042" and track_label(12345) == "T-12345" and track_label(None) == ""
    )


@pytest.mark.django_db
def test_csv_rows_name_the_tunnel_date_track_and_chainage(client, tunnel, manager):
    run = _inspections(tunnel)
    client.force_login(manager)
    response = client.get(reverse("run-export-csv", args=[run.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["tunnel"] for r in rows} == {tunnel.code}
    assert {r["inspection_date"] for r in rows} == {"2026-05-01"}
    widest = max(rows, key=lambda r: float(r["width_max_mm"]))
    assert widest["track"] == track_label(int(widest["track_id"]))
    assert widest["chainage_from"] == "0+000.800" and widest["recommended_action"]

    def numeric(name):
        try:
            return all(float(r[name]) == float(r[name]) for r in rows if r[name] != "")
        except ValueError:
            return False

    measured = [n for n in rows[0] if numeric(n) and n not in ("crack_id", "track_id")]
    assert "width_max_mm" in measured and "chainage_min_m" in measured
    assert all(n.endswith(("_m", "_mm", "_mm2", "_per_year")) for n in measured), measured


@pytest.mark.django_db
def test_workbook_has_a_sheet_per_purpose_with_frozen_filtered_headers(tunnel):
    from openpyxl import load_workbook

    run = _inspections(tunnel)
    book = load_workbook(io.BytesIO(exports.xlsx_bytes(run)))
    assert book.sheetnames == ["Summary", "Cracks", "New and growing", "Actions"]
    cracks = book["Cracks"]
    assert cracks.freeze_panes == "A2" and cracks.auto_filter.ref.startswith("A1:")
    assert cracks.column_dimensions["A"].width == 10 and cracks["A1"].font.bold
    assert len(list(book["New and growing"].values)) == 1 + 3  # two new, one growing
    actions = list(book["Actions"].values)
    assert actions[0][0] == "track" and actions[1][3] == "severe"  # the widest first
    summary = list(book["Summary"].values)
    assert summary[0][:3] == ("Tunnel", tunnel.code, tunnel.name)
    assert ("severe", 1) in [r[:2] for r in summary]


@pytest.mark.django_db
def test_dxf_opens_in_cad_with_cracks_on_severity_layers_at_tunnel_coordinates(
    client, tunnel, manager
):
    import ezdxf

    run = _inspections(tunnel)
    client.force_login(manager)
    response = client.get(reverse("run-export-dxf", args=[run.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('-cracks.dxf"')
    doc = ezdxf.read(io.StringIO(response.content.decode()))
    layers = {layer.dxf.name for layer in doc.layers}
    assert {"CRACK-SEVERE", "CRACK-MINOR", "CRACK-HAIRLINE", "GRID", "AXES", "LABELS"} <= layers
    msp = doc.modelspace()
    severe = [e for e in msp.query("LWPOLYLINE") if e.dxf.layer == "CRACK-SEVERE"]
    assert len(severe) == 1
    assert [tuple(round(v, 6) for v in p[:2]) for p in severe[0].get_points()] == [
        (0.8, 0.05),
        (0.8, 0.45),
    ]
    assert doc.units == ezdxf.units.M
    texts = [e.dxf.text for e in msp.query("TEXT")]
    assert "0+000.000" in texts and any(t.startswith("T-") and "1.50 mm" in t for t in texts)
    assert len(msp.query("LWPOLYLINE")) == 3
    assert "RINGS" not in layers  # no ring length: no rings


@pytest.mark.django_db
def test_dxf_draws_ring_joints_and_condition_states(client, tunnel, manager):
    import ezdxf

    tunnel.ring_length_m = 0.5
    tunnel.save()
    run = _inspections(tunnel)
    client.force_login(manager)
    doc = ezdxf.read(
        io.StringIO(client.get(reverse("run-export-dxf", args=[run.pk])).content.decode())
    )
    msp = doc.modelspace()
    joints = sorted(round(e.dxf.start.x, 6) for e in msp.query("LINE") if e.dxf.layer == "RINGS")
    assert joints == [0.0, 0.5, 1.0, 1.5, 2.0]
    states = {e.dxf.text for e in msp.query("TEXT") if e.dxf.layer == "CONDITION"}
    assert states == {"CS4", "CS3", "CS1"}
    rings = [e.dxf.text for e in msp.query("TEXT") if e.dxf.layer == "RINGS"]
    assert rings == ["R1", "R2", "R3", "R4"]


def test_the_report_map_ticks_at_round_spacings():
    from crackportal.reports.pdf import nice_step

    # the PDF ticked 120.0 / 192.3 / 264.5 m; now 1, 2 or 5 × 10^k
    assert nice_step(361.5) == 100 and nice_step(2.0) == 0.5 and nice_step(0.3, 4) == 0.1


def test_the_report_map_scale_is_a_standard_one_that_fits_an_a3_sheet():
    from crackportal.reports.pdf import choose_scale

    assert choose_scale(2.0, 0.5) == (10, 1)  # 2 m at 1:10 = 200 mm: one sheet
    assert choose_scale(30.0, 14.0) == (100, 1)  # a 14 m lining is 140 mm high at 1:100
    assert choose_scale(400.0, 14.0) == (200, 6)  # 400 m at 1:200 = 2 m of paper: 6 sheets
    assert choose_scale(20_000.0, 14.0)[0] >= 5000  # a long tunnel: a coarse scale


@pytest.mark.django_db
def test_the_report_map_is_drawn_to_scale_with_axes_rings_and_a_band(tunnel, artifacts_dir):
    import numpy as np
    from PIL import Image

    from crackportal.inspections.condition import ring_conditions
    from crackportal.inspections.severity import severity_rgb
    from crackportal.reports.pdf import MARGIN_MM, SHEET_DPI, map_sheets

    tunnel.ring_length_m, tunnel.segments_per_ring = 0.5, 60
    tunnel.save()
    run = _inspections(tunnel)
    rows = list(exports.crack_rows(run))
    sheets = map_sheets(run, rows, ring_conditions(run))
    assert len(sheets) == 1 and sheets[0]["scale"] == 10
    data = base64.b64decode(sheets[0]["src"].split(",", 1)[1])
    (artifacts_dir / "report-map-sheet.png").write_bytes(data)
    png = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    px_mm = SHEET_DPI / 25.4
    # 2 m of chainage at 1:10 is 200 mm of paper between the margins, as the <img> width says
    assert sheets[0]["width_mm"] == pytest.approx(200 + MARGIN_MM["left"] + MARGIN_MM["right"])
    assert png.shape[1] == round(sheets[0]["width_mm"] * px_mm)
    # the 1.5 mm (severe) crack sits at chainage 0.8 m = 80 mm right of the frame's left edge
    x = round((MARGIN_MM["left"] + 80) * px_mm)
    column = png[:, x - 3 : x + 4].astype(int)
    assert (np.abs(column - severity_rgb("severe")).sum(axis=2) < 30).sum() > 50
    # the condition band above the frame is coloured, arc labels are drawn left of the frame
    band = png[round((MARGIN_MM["top"] - 3) * px_mm)]
    assert (np.abs(band.astype(int) - (201, 42, 42)).sum(axis=1) < 30).sum() > 50  # CS4 ring
    assert (png[:, : round(MARGIN_MM["left"] * px_mm) - 10] < 100).any()
