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


def _pdf_pages(report):
    import pypdfium2

    pdf = pypdfium2.PdfDocument(report.file.open("rb").read())
    texts = [" ".join(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf))]
    return pdf, texts


@pytest.mark.django_db
def test_pdf_report_has_a_title_block_a_to_scale_sheet_and_no_empty_page(
    tunnel, manager, artifacts_dir
):
    from crackportal.inspections.models import SurveyImage

    tunnel.ring_length_m, tunnel.segments_per_ring = 0.5, 4
    tunnel.save()
    run = _inspections(tunnel)
    earlier = SurveyImage.objects.get(run__date="2025-05-01")
    earlier.file.save("a.jpg", ContentFile(survey_jpeg(seed=5, width=480, height=240)))
    report = services.request_report(run=run, kind="pdf", user=manager)
    assert services.build_report(report_id=report.pk)
    report.refresh_from_db()
    assert report.status == "done" and report.progress == 1.0, report.error
    assert (
        "-cracks-v1" in report.file.name and report.source and report.filename.endswith("-v1.pdf")
    )
    pdf, texts = _pdf_pages(report)
    text = "\n".join(texts)
    assert "Crack report" in text and tunnel.code in text
    for words in (
        "Prepared by manager",
        "Approved by — (draft: not approved)",
        "DRAFT: not approved",
        "Reviewed 0 of 2 processed images (0 %)",
        "version 1",
        "Cracks 3",
        "Growing cracks: before and after (1)",
        "New cracks: before and after (2)",
        "not surveyed then",  # the new crack at 0+001.300: no earlier image there
        "Crack register by chainage (3)",
        "scale 1:10 (A3)",
        "Ring condition, worst first (4 rings surveyed)",
    ):
        assert words in text, words
    # one table per purpose: each crack is listed once, in the register
    assert text.count("0+000.800 – 0+000.800") == 1
    # the map sheet is an A3 landscape page; every page carries more than a heading
    sizes = [tuple(round(v) for v in pdf[i].get_size()) for i in range(len(pdf))]
    assert (1191, 842) in sizes and sizes[0] == (595, 842)
    for old in artifacts_dir.glob("report-page-*.png"):
        old.unlink()
    for i in range(len(pdf)):
        image = pdf[i].render(scale=1.5).to_pil()
        image.save(artifacts_dir / f"report-page-{i + 1}.png")
        ink = (np.asarray(image.convert("L")) < 245).mean()  # anything drawn or written
        assert ink > 0.02, f"page {i + 1} is nearly empty ({ink:.4f}): {texts[i][:120]}"
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # upload checks in this process stay strict


@pytest.mark.django_db
def test_an_approved_report_is_stamped_with_the_same_figures_and_locked(
    tunnel, manager, django_capture_on_commit_callbacks
):
    from crackportal.inspections.models import Crack

    run = _inspections(tunnel)
    report = services.request_report(run=run, kind="pdf", user=manager)
    services.build_report(report_id=report.pk)
    report.refresh_from_db()
    draft_name = report.file.name
    _, draft = _pdf_pages(report)
    # a crack changes after the draft: the approved PDF still says what was reviewed
    Crack.objects.filter(image__run=run).update(width_max_mm=9.0)
    report = services.approve_report(report=report, user=manager)
    assert report.status == "queued" and report.locked
    with django_capture_on_commit_callbacks(execute=True):
        assert services.build_report(report_id=report.pk)
    report.refresh_from_db()
    assert report.status == "done" and "-v1-approved" in report.file.name
    assert not report.file.storage.exists(draft_name)  # the draft does not linger
    _, approved = _pdf_pages(report)
    text = "\n".join(approved)
    assert "APPROVED by manager on" in text and "locked: a change needs a new version" in text
    assert "DRAFT" not in text and "9.0" not in text
    assert [t.split("Crack register")[1] for t in approved if "Crack register" in t] == [
        t.split("Crack register")[1] for t in draft if "Crack register" in t
    ]
    with pytest.raises(services.ApprovalError, match="already approved"):
        services.approve_report(report=report, user=manager)
    assert not services.build_report(report_id=report.pk)  # a locked report is not rebuilt
    again = services.request_report(run=run, kind="pdf", user=manager)
    assert again.version == 2


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
    assert "Rings" not in book.sheetnames  # no ring length, no ring sheet


@pytest.mark.django_db
def test_xlsx_has_a_ring_sheet_worst_first(tunnel, manager):
    from openpyxl import load_workbook

    tunnel.ring_length_m = 0.5
    tunnel.save()
    run = _inspections(tunnel)
    report = services.request_report(run=run, kind="xlsx", user=manager)
    services.build_report(report_id=report.pk)
    report.refresh_from_db()
    rings = list(load_workbook(io.BytesIO(report.file.open("rb").read()))["Rings"].values)
    assert rings[0][:2] == ("ring_segment", "condition_state")
    assert [r[:2] for r in rings[1:]] == [
        ("R2", "CS4"),
        ("R1", "CS3"),
        ("R3", "CS1"),
        ("R4", "CS1"),
    ]


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


@pytest.mark.django_db
def test_the_report_html_builds_without_a_report_row(tunnel):
    """build_pdf_html(run) alone (a preview, a script) has no preparer: the block says so."""
    from crackportal.reports.pdf import APPROVAL_CELL, build_pdf_html

    html = build_pdf_html(_inspections(tunnel))
    assert "<th>Prepared by</th><td>—</td>" in html and APPROVAL_CELL in html
