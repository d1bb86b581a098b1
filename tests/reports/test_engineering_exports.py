"""Exports a contractor can work from (issue 19): chainage as engineers write it, stable
track names, tunnel and date on every row, a formatted workbook, and a DXF drawing that CAD
opens with cracks on severity layers at their tunnel coordinates."""

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


def test_the_report_map_ticks_at_round_spacings():
    from crackportal.reports.pdf import nice_step

    # the PDF ticked 120.0 / 192.3 / 264.5 m; now 1, 2 or 5 × 10^k
    assert nice_step(361.5) == 100 and nice_step(2.0) == 0.5 and nice_step(0.3, 4) == 0.1


@pytest.mark.django_db
def test_the_report_map_has_a_legend_and_both_axes(tunnel, artifacts_dir):
    import numpy as np
    from PIL import Image

    from crackportal.inspections.severity import severity_rgb
    from crackportal.reports.pdf import crack_map_png

    run = _inspections(tunnel)
    data = crack_map_png(run, list(exports.crack_rows(run)))
    (artifacts_dir / "report-map.png").write_bytes(data)
    png = np.asarray(Image.open(io.BytesIO(data)))
    top = png[:40]
    for name in ("hairline", "critical"):  # legend swatches along the top
        assert (np.abs(top.astype(int) - severity_rgb(name)).sum(axis=2) == 0).sum() > 100
    left_axis = png[60:-60, :80]
    assert (left_axis < 100).any()  # arc labels drawn left of the frame
