"""Maintenance reports (PDF, XLSX) and crack exports (CSV, GeoJSON) of one inspection."""

import csv
import io
import json

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from crackportal.inspections.tracking import track_run
from crackportal.reports import services
from crackportal.reports.models import Report
from tests.conftest import survey_jpeg, wait_for
from tests.factories import make_crack, make_image, make_run


def _inspections(tunnel):
    """Two inspections: one crack grows, two are new (one severe), one image has a real photo."""
    old = make_run(tunnel, "2025-05-01")
    old_img = make_image(old, "a.jpg", chainage_m=(0.0, 1.0), arc_m=(0.0, 0.5), size=(480, 240))
    make_crack(old_img, 0, start_m=(0.2, 0.1), end_m=(0.5, 0.1), width_mm=0.3)
    track_run(old)
    new = make_run(tunnel, "2026-05-01")
    new_img = make_image(new, "a.jpg", chainage_m=(0.0, 1.0), arc_m=(0.0, 0.5), size=(480, 240))
    new_img.file.save("a.jpg", ContentFile(survey_jpeg(seed=3, width=480, height=240)))
    make_crack(new_img, 0, start_m=(0.2, 0.1), end_m=(0.6, 0.1), width_mm=0.45)
    make_crack(new_img, 1, start_m=(0.8, 0.05), end_m=(0.8, 0.45), width_mm=1.5)
    far = make_image(new, "b.jpg", chainage_m=(1.0, 2.0), arc_m=(0.0, 0.5), size=(480, 240))
    make_crack(far, 0, start_m=(1.3, 0.2), end_m=(1.5, 0.3), width_mm=0.1)
    track_run(new)
    return new


@pytest.mark.django_db
def test_pdf_report_renders_with_counts_and_a_map(tunnel, manager, settings):
    import pypdfium2

    run = _inspections(tunnel)
    report = services.request_report(run=run, kind="pdf", user=manager)
    assert services.build_report(report_id=report.pk)
    report.refresh_from_db()
    assert report.status == "done" and report.progress == 1.0, report.error
    pdf = pypdfium2.PdfDocument(report.file.open("rb").read())
    text = "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "Crack report" in text and tunnel.code in text
    assert "Cracks 3" in " ".join(text.split())  # summary count
    assert "New cracks since 2025-05-01 (2)" in text and "Growing cracks (1)" in text
    assert "Severe — 1 crack" in text.replace("\r", "")
    page = np.asarray(pdf[0].render(scale=1).to_pil().convert("L"))
    assert page.std() > 10 and (page < 128).mean() > 0.005, "first page is blank"
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # upload checks in this process stay strict


@pytest.mark.django_db
def test_csv_export_round_trips_the_numbers(client, tunnel, manager):
    run = _inspections(tunnel)
    client.force_login(manager)
    response = client.get(reverse("run-export-csv", args=[run.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 3
    by_id = {int(r["crack_id"]): r for r in rows}
    for crack in run.images.first().cracks.all():
        row = by_id[crack.pk]
        assert float(row["length_mm"]) == pytest.approx(crack.length_mm, abs=0.05)
        assert float(row["width_max_mm"]) == pytest.approx(crack.width_max_mm, abs=5e-4)
        assert float(row["chainage_min_m"]) == pytest.approx(crack.chainage_min_m, abs=5e-4)
        assert row["severity"] == crack.severity
    assert sorted((r["new"], r["growing"]) for r in rows) == [
        ("False", "True"),
        ("True", "False"),
        ("True", "False"),
    ]


@pytest.mark.django_db
def test_xlsx_report_round_trips_the_numbers(tunnel, manager):
    from openpyxl import load_workbook

    run = _inspections(tunnel)
    report = services.request_report(run=run, kind="xlsx", user=manager)
    services.build_report(report_id=report.pk)
    report.refresh_from_db()
    book = load_workbook(io.BytesIO(report.file.open("rb").read()))
    sheet = list(book["Cracks"].values)
    header, rows = sheet[0], sheet[1:]
    assert len(rows) == 3
    widths = sorted(row[header.index("width_max_mm")] for row in rows)
    assert widths == pytest.approx([0.1, 0.45, 1.5])
    summary = {row[0]: row[1] for row in book["Summary"].values}
    assert summary["Cracks"] == 3 and summary["severe"] == 1


@pytest.mark.django_db
def test_geojson_export_has_polylines_in_tunnel_metres(client, tunnel, manager):
    run = _inspections(tunnel)
    client.force_login(manager)
    data = json.loads(client.get(reverse("run-export-geojson", args=[run.pk])).content)
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 3
    transverse = next(f for f in data["features"] if f["properties"]["width_max_mm"] == 1.5)
    assert transverse["geometry"] == {
        "type": "MultiLineString",
        "coordinates": [[[0.8, 0.05], [0.8, 0.45]]],
    }


@pytest.mark.django_db
def test_inspectors_cannot_export_or_request_reports(client, tunnel, inspector):
    run = _inspections(tunnel)
    client.force_login(inspector)
    assert client.get(reverse("run-export-csv", args=[run.pk])).status_code == 403
    assert client.post(reverse("report-request", args=[run.pk]), {"kind": "pdf"}).status_code == 403
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_unknown_report_kind_is_a_clear_400(client, tunnel, manager):
    run = _inspections(tunnel)
    client.force_login(manager)
    response = client.post(reverse("report-request", args=[run.pk]), {"kind": "docx"})
    assert response.status_code == 400 and b"Unknown report kind" in response.content


@pytest.mark.integration
def test_worker_builds_a_requested_report_for_download(worker, client, tunnel, manager):
    run = _inspections(tunnel)
    client.force_login(manager)
    response = client.post(reverse("report-request", args=[run.pk]), {"kind": "pdf"})
    assert response.status_code == 302
    report = Report.objects.get()
    wait_for(
        lambda: Report.objects.filter(pk=report.pk, status__in=["done", "failed"]).exists(),
        what="the report to be built",
    )
    status = client.get(reverse("report-status", args=[report.pk])).json()
    assert status["status"] == "done" and status["progress"] == 1.0, status["error"]
    download = client.get(status["download"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF")
