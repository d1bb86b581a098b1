"""Reviewing detections in the browser with the mouse and the keys."""

import pytest
from django.core.files.base import ContentFile

from crackportal.inspections.models import Crack
from tests.conftest import login, survey_jpeg
from tests.factories import make_crack, make_image, make_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_inspector_rejects_a_joint_with_a_key_and_accepts_the_rest(
    live_server, page, inspector, tunnel, settings, tmp_path, artifacts_dir, monkeypatch
):
    from crackportal.inspections import services

    settings.MEDIA_ROOT = tmp_path
    queued = []  # the re-tracking a rejection asks for (no worker in this test)
    monkeypatch.setattr(services, "enqueue_tracking", queued.append)
    run = make_run(tunnel)
    image = make_image(run, "a.jpg", (0.0, 0.48), (0.0, 0.32), (480, 320))
    image.file.save("a.jpg", ContentFile(survey_jpeg(seed=3)))
    joint = make_crack(image, 0, (0.05, 0.10), (0.40, 0.10), width_mm=1.2)
    other = make_crack(image, 1, (0.10, 0.25), (0.30, 0.28), width_mm=0.3)
    login(page, live_server, "inspector", "inspect-pass-123")
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.click(f"#cracks tr[data-crack='{joint.pk}'] td:first-child")
    page.keyboard.press("j")
    page.wait_for_selector(f"#cracks tr[data-crack='{joint.pk}'] .badge-rejected")
    page.screenshot(path=str(artifacts_dir / "review-image.png"), full_page=True)
    joint.refresh_from_db()
    assert (joint.review, joint.review_reason) == ("rejected", "joint")
    assert queued == [run.pk]
    page.click("text=Accept the rest")
    page.wait_for_selector("#review-progress")
    assert "Reviewed 1 of 1 images" in page.locator("#review-progress").inner_text()
    assert Crack.objects.get(pk=other.pk).review == "accepted"
    page.screenshot(path=str(artifacts_dir / "review-run.png"), full_page=True)


def test_each_decision_selects_the_next_crack_to_review_so_keys_alone_go_down_the_list(
    live_server, page, inspector, tunnel, settings, tmp_path, artifacts_dir, monkeypatch
):
    """Found reviewing real tunnel photos (12 detections on one image): after a key the page
    came back with nothing selected, so every decision took a click first, and on a 1280 px
    screen the review buttons and badges lay beyond the right edge of the crack table."""
    from crackportal.inspections import services

    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(services, "enqueue_tracking", lambda run_id: None)
    run = make_run(tunnel)
    image = make_image(run, "a.jpg", (0.0, 0.48), (0.0, 0.32), (480, 320))
    image.file.save("a.jpg", ContentFile(survey_jpeg(seed=3)))
    cracks = [
        make_crack(image, i, (0.05, 0.03 + 0.06 * i), (0.40, 0.04 + 0.06 * i), width_mm=0.5)
        for i in range(4)
    ]
    login(page, live_server, "inspector", "inspect-pass-123")
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.wait_for_function("() => document.querySelectorAll('.crack-box').length === 4")
    # the first row's review buttons are on the screen without scrolling the table
    button = page.locator(f"#cracks tr[data-crack='{cracks[0].pk}'] form.review button").first
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1280, box
    page.keyboard.press("ArrowDown")  # the keyboard alone: the first crack
    for key, crack in zip("ajs", cracks, strict=False):
        page.keyboard.press(key)
        # the page comes back with the next crack to review selected, row and outline
        following = cracks[cracks.index(crack) + 1]
        page.wait_for_selector(f"#cracks tr.selected[data-crack='{following.pk}']")
        page.wait_for_selector(f".crack-box.selected[data-crack='{following.pk}']")
    page.screenshot(path=str(artifacts_dir / "review-keys-next.png"), full_page=True)
    decided = [Crack.objects.get(pk=c.pk) for c in cracks]
    assert [(c.review, c.review_reason) for c in decided] == [
        ("accepted", ""),
        ("rejected", "joint"),
        ("rejected", "stain"),
        ("", ""),
    ]
    # deciding the last one leaves nothing to select
    page.keyboard.press("a")
    page.wait_for_selector(f"#cracks tr[data-crack='{cracks[3].pk}'] .badge-accepted")
    assert page.locator("#cracks tr.selected").count() == 0


def test_outlines_are_labelled_clipped_and_linked_to_rows_and_pages_fit_a_phone(
    live_server, page, inspector, tunnel, settings, tmp_path, artifacts_dir
):
    settings.MEDIA_ROOT = tmp_path
    run = make_run(tunnel)
    image = make_image(run, "a.jpg", (0.0, 0.48), (0.0, 0.32), (480, 320))
    image.file.save("a.jpg", ContentFile(survey_jpeg(seed=3)))
    corner = make_crack(image, 0, (0.0, 0.0), (0.12, 0.01), width_mm=0.3)  # at the image's edge
    wide = make_crack(image, 1, (0.10, 0.25), (0.30, 0.28), width_mm=1.2)
    plain = make_image(run, "b.jpg", (0.48, 0.96), (0.0, 0.32), (480, 320))
    plain.file.save("b.jpg", ContentFile(survey_jpeg(seed=4)))
    login(page, live_server, "inspector", "inspect-pass-123")
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.wait_for_function("() => document.querySelectorAll('.crack-box').length === 2")
    assert sorted(page.locator(".crack-box-label").all_inner_texts()) == ["1", "2"]
    # every outline lies inside the image (viewport units: width 1, height 320/480)
    bounds = page.evaluate(
        "window.surveyViewer.currentOverlays.map(o => [o.bounds.x, o.bounds.y, o.bounds.width, o.bounds.height])"
    )
    for x, y, w, h in bounds:
        assert x >= 0 and y >= 0 and x + w <= 1 + 1e-9 and y + h <= 320 / 480 + 1e-9
    page.hover(f"#cracks tr[data-crack='{corner.pk}'] td:nth-child(4)")
    assert "hover" in page.get_attribute(f".crack-box[data-crack='{corner.pk}']", "class")
    page.hover(f".crack-box[data-crack='{wide.pk}']")
    assert "hover" in (page.get_attribute(f"#cracks tr[data-crack='{wide.pk}']", "class") or "")
    assert "hover" not in page.get_attribute(f".crack-box[data-crack='{corner.pk}']", "class")
    page.screenshot(path=str(artifacts_dir / "image-outlines.png"), full_page=True)
    # on a 1920 px screen every column of the crack table shows without scrolling it (the
    # panel was 538 px wide there, the orientation and widths off to the side)
    page.set_viewport_size({"width": 1920, "height": 1080})
    scroller = "document.querySelector('#cracks').closest('.table-scroll')"
    assert page.evaluate(f"{scroller}.scrollWidth <= {scroller}.clientWidth")
    page.screenshot(path=str(artifacts_dir / "image-wide-screen.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    for url, name in ((f"/images/{image.pk}/", "image"), (f"/runs/{run.pk}/", "run")):
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(artifacts_dir / f"phone-{name}-page.png"), full_page=True)
        assert width <= 390, f"the {name} page is {width} px wide on a 390 px phone"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/runs/{run.pk}/?sort=worst")
    page.wait_for_load_state("networkidle")
    rows = page.locator("#images tbody tr")
    assert rows.first.get_attribute("data-image") == str(image.pk)  # the 1.2 mm crack first
    assert page.evaluate(
        "[...document.querySelectorAll('#images .thumb-cell img')].every(i => i.naturalWidth > 0)"
    )
    page.click("#sort-chainage")
    page.wait_for_url("**sort=chainage")
    assert rows.first.get_attribute("data-image") == str(image.pk)
    page.click("#sort-chainage")  # a second click turns the order round
    page.wait_for_url("**sort=-chainage")
    assert rows.first.get_attribute("data-image") == str(plain.pk)
    page.screenshot(path=str(artifacts_dir / "run-thumbnails.png"), full_page=True)
