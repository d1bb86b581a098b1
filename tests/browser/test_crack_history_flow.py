"""The growth history a tunnel owner keeps inspections for, replayed as a manager would.

Two inspections a year apart, the second surveyed 30 mm further along the chainage: one
crack widened from 0.3 to 0.6 mm, two old cracks became one, and one crack is new. The
second inspection is tracked by the same task the worker runs; then the manager reads the
tunnel list, the crack page, the PDF report (built by the real worker) and the CSV.
"""

import csv
import io

import pytest

from crackportal.inspections import tasks
from crackportal.inspections.models import Crack
from crackportal.inspections.tracking import track_run
from crackportal.reports.models import Report
from tests.conftest import login, make_user, wait_for
from tests.factories import make_crack, make_image, make_run

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
SHIFT_M = 0.03


@pytest.fixture
def two_inspections(tunnel):
    old = make_run(tunnel, "2025-05-01")
    image = make_image(old, "a.jpg", (10.0, 14.0), (0.0, 2.0), (4000, 2000))
    make_crack(image, 0, (10.2, 0.5), (11.2, 0.5), width_mm=0.3)  # will widen
    make_crack(image, 1, (10.5, 1.5), (11.3, 1.5), width_mm=0.2)  # these two join
    make_crack(image, 2, (11.6, 1.5), (12.4, 1.5), width_mm=0.2)
    track_run(old)
    new = make_run(tunnel, "2026-05-01")
    image = make_image(new, "a.jpg", (10.0 + SHIFT_M, 14.0 + SHIFT_M), (0.0, 2.0), (4000, 2000))
    widened = make_crack(image, 0, (10.2, 0.51), (11.2, 0.51), width_mm=0.6)
    joined = make_crack(image, 1, (10.5, 1.5), (12.4, 1.5), width_mm=0.25)
    make_crack(image, 2, (13.0, 0.2), (13.0, 1.8), width_mm=1.2, orientation="transverse")
    tasks.track_run_task.run(new.pk)
    return {"old": old, "new": new, "widened": widened, "joined": joined}


def test_second_inspection_keeps_the_history_on_every_page_and_report(
    live_server, page, worker, django_user_model, tunnel, two_inspections, artifacts_dir
):
    new, joined, widened = (
        two_inspections["new"],
        two_inspections["joined"],
        two_inspections["widened"],
    )
    new.refresh_from_db()
    assert new.tracking_error == "" and new.tracked_at is not None
    make_user(django_user_model, "boss", "manager", password="boss-pass-123")
    login(page, live_server, "boss", "boss-pass-123")

    # the tunnel list counts the growing cracks of the latest inspection
    page.goto(f"{live_server.url}/")
    row = page.locator("tr", has_text=tunnel.code)
    assert row.locator("[data-field=growing]").inner_text().strip() == "2"
    page.screenshot(path=str(artifacts_dir / "flow-tunnel-list.png"), full_page=True)

    # the crack that joined two old ones: one row per inspection, the old row of 2 pieces
    joined.refresh_from_db()
    page.goto(f"{live_server.url}/cracks/{joined.pk}/")
    rows = page.locator("#history tbody tr")
    assert rows.count() == 2
    assert "2 pieces" in rows.nth(0).inner_text()
    assert "Seen in one inspection so far" not in page.content()
    growth = page.locator("#growth").inner_text()
    assert "mm/year" in growth
    page.screenshot(path=str(artifacts_dir / "flow-crack-page.png"), full_page=True)

    # the widened crack: 0.30 → 0.60 mm on its page
    widened.refresh_from_db()
    page.goto(f"{live_server.url}/cracks/{widened.pk}/")
    history = page.locator("#history tbody").inner_text()
    assert "0.30" in history and "0.60" in history

    # the PDF, built by the worker after the manager asks for it on the run page
    page.goto(f"{live_server.url}/runs/{new.pk}/")
    page.click("text=PDF maintenance report")
    report = wait_for(
        lambda: Report.objects.filter(run=new, kind="pdf", status__in=["done", "failed"]).first(),
        timeout=240,
        what="the PDF report",
    )
    assert report.status == "done", report.error
    import pypdfium2

    pdf = pypdfium2.PdfDocument(report.file.open("rb").read())
    text = " ".join(
        " ".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf))).split()
    )
    assert "New since previous inspection 1" in text
    assert "Growing cracks: before and after (2)" in text and "DRAFT: not approved" in text

    # approved on the run page (asked to confirm first), stamped by the worker and locked
    row = page.locator(f"tr[data-report='{report.pk}']")
    row.locator("button", has_text="Approve").click()  # the page polled: the draft is done
    assert "Tick the confirmation" in page.inner_text(".messages")
    row = page.locator(f"tr[data-report='{report.pk}']")
    row.locator("input[name=confirm]").check()
    row.locator("button", has_text="Approve").click()
    wait_for(
        lambda: Report.objects.filter(
            pk=report.pk, status="done", approved_at__isnull=False
        ).first(),
        timeout=120,
        what="the approval stamp",
    )
    page.reload()
    assert "approved" in page.locator(f"tr[data-report='{report.pk}'] .approval").inner_text()
    page.screenshot(path=str(artifacts_dir / "flow-report-approved.png"), full_page=True)
    download = page.request.get(f"{live_server.url}/reports/{report.pk}/download/")
    assert download.ok and "-approved.pdf" in download.headers["content-disposition"]
    stamped = pypdfium2.PdfDocument(download.body())
    stamped_text = " ".join(
        " ".join(stamped[i].get_textpage().get_text_range() for i in range(len(stamped))).split()
    )
    assert "APPROVED by boss" in stamped_text and "locked" in stamped_text

    # the CSV carries each crack's track: the same ids as the tracks of the crack rows
    response = page.request.get(f"{live_server.url}/runs/{new.pk}/cracks.csv")
    assert response.ok
    rows = list(csv.DictReader(io.StringIO(response.text())))
    by_crack = {int(r["crack_id"]): r["track_id"] for r in rows}
    for crack in Crack.objects.filter(image__run=new):
        assert by_crack[crack.pk] == str(crack.track_id)
    assert by_crack[joined.pk] != by_crack[widened.pk]


def test_manager_assigns_an_inspector_and_an_upload_reports_its_manifest_rows(
    live_server, page, worker, django_user_model, tunnel, artifacts_dir, tmp_path
):
    make_user(django_user_model, "boss", "manager", password="boss-pass-123")
    make_user(django_user_model, "newcomer", "inspector")
    login(page, live_server, "boss", "boss-pass-123")
    page.goto(f"{live_server.url}/tunnels/{tunnel.code}/")
    page.select_option("#member-user", label="newcomer")
    page.click("#members button.primary")
    page.wait_for_load_state()
    assert "newcomer now sees" in page.content()
    assert "newcomer" in page.locator("#members table").inner_text()
    page.screenshot(path=str(artifacts_dir / "tunnel-members.png"), full_page=True)

    from tests.conftest import survey_jpeg

    photo = tmp_path / "x.jpg"
    photo.write_bytes(survey_jpeg(seed=8))
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m,mm_per_px\n"
        "typo.jpg,0,0.48,0,0.32,\n"
    )
    page.goto(f"{live_server.url}/tunnels/{tunnel.code}/runs/new/")
    page.set_input_files("#id_files", str(photo))
    page.set_input_files("#id_manifest", str(manifest))
    page.fill("#id_start_chainage_m", "250")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("text=manifest rows without a file in this upload (1): typo.jpg")
    assert "not in the manifest, laid out along the chainage (1): x.jpg" in page.content()
    assert "/runs/" in page.url  # the address is the run page's
    assert "250.00" in page.locator("#images").inner_text()
    page.screenshot(path=str(artifacts_dir / "new-inspection-warnings.png"), full_page=True)
