"""The portal in headless Chromium: log in, upload, wait for the worker, see the overlay."""

import re

import pytest

from tests.conftest import survey_jpeg

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


def _upload_as_inspector(page, live_server, tunnel, photo, label: str) -> None:
    """Sign in as the inspector and upload one photo as a new inspection of tunnel."""
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "inspector")
    page.fill("#id_password", "inspect-pass-123")
    page.click("button[type=submit]")
    page.click(f"text={tunnel.code}")
    page.click("text=New inspection")
    page.set_input_files("#id_files", str(photo))
    page.fill("#id_label", label)
    page.click("text=Upload and detect cracks")


def test_inspector_uploads_an_image_and_sees_the_overlay(
    worker, live_server, page, tunnel, inspector, tmp_path, artifacts_dir
):
    # every file these pages ask for exists
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    photo = tmp_path / "lining_0001.jpg"
    photo.write_bytes(survey_jpeg(seed=7, width=640, height=400))
    _upload_as_inspector(page, live_server, tunnel, photo, "browser test survey")

    page.screenshot(path=str(artifacts_dir / "after_upload.png"), full_page=True)
    # the run page polls the server; the badge turns to done without a reload
    page.wait_for_selector("#run-status.badge-done", timeout=180_000)
    assert page.inner_text("#count-done") == "1"
    page.screenshot(path=str(artifacts_dir / "run_page.png"), full_page=True)

    page.click("text=lining_0001.jpg")
    page.wait_for_selector('#viewer[data-overlay-ready="1"]', timeout=30_000)
    assert page.evaluate("window.surveyViewer.world.getItemCount()") == 2  # photo + crack overlay
    assert page.evaluate("window.overlayOpacity()") == pytest.approx(0.7)
    assert page.locator("#cracks tbody tr").count() >= 1
    page.wait_for_timeout(500)  # let the tiles draw before the screenshot
    page.screenshot(path=str(artifacts_dir / "image_page_overlay.png"), full_page=True)

    page.uncheck("#overlay-toggle")
    assert page.evaluate("window.overlayOpacity()") == 0
    page.check("#overlay-toggle")
    page.fill("#overlay-opacity", "40")
    page.dispatch_event("#overlay-opacity", "input")
    assert page.evaluate("window.overlayOpacity()") == pytest.approx(0.4)

    first_box = page.locator(".crack-box").first
    first_box.click()
    crack_id = first_box.get_attribute("data-crack")
    assert "selected" in page.locator(f'#cracks tr[data-crack="{crack_id}"]').get_attribute("class")
    assert missing == []
    # the icon the page names is served (the browser's own /favicon.ico request was a 404 on
    # every page, which Playwright does not see as the page's)
    icon = "fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)"
    assert page.evaluate(icon) == 200


def test_a_large_image_opens_as_deep_zoom_tiles_with_its_overlay(
    worker, live_server, page, tunnel, inspector, tmp_path, artifacts_dir
):
    """A 4200x2400 photo gets photo and overlay pyramids; the viewer draws both from tiles."""
    photo = tmp_path / "lining_large.jpg"
    photo.write_bytes(survey_jpeg(seed=11, width=4200, height=2400, n_cracks=3))
    _upload_as_inspector(page, live_server, tunnel, photo, "large image")
    page.wait_for_selector("#run-status.badge-done", timeout=240_000)

    tiles = []
    page.on(
        "response",
        lambda r: "/dz/" in r.url and tiles.append((r.url.rsplit("/dz/", 1)[1], r.status)),
    )
    page.click("text=lining_large.jpg")
    page.wait_for_selector('#viewer[data-overlay-ready="1"]', timeout=30_000)
    page.wait_for_timeout(1500)  # the first tiles of both layers
    photo_tiles = [t for t, s in tiles if t.startswith("photo_files/") and s == 200]
    # the overlay's tiles are named by its stamp: new ones after a correction or a reprocess
    overlay = re.compile(r"overlay-[0-9]+-0_files/")
    overlay_tiles = [t for t, s in tiles if overlay.match(t) and s == 200]
    assert photo_tiles and all(t.endswith(".jpg") for t in photo_tiles), tiles
    assert overlay_tiles and all(t.endswith(".png") for t in overlay_tiles), tiles
    assert all(s == 200 for _, s in tiles), tiles
    page.screenshot(path=str(artifacts_dir / "image_page_large_deep_zoom.png"), full_page=True)

    # zoomed in with the mouse wheel over the viewer: the full-resolution level's tiles of
    # both layers arrive
    box = page.locator("#viewer").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(12):
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(150)
    page.wait_for_timeout(3000)
    top = "13/"  # 2**13 >= 4200: the full-size level
    assert any(t.startswith("photo_files/" + top) for t, _ in tiles), tiles
    assert any(overlay.match(t) and t.split("_files/")[1].startswith(top) for t, _ in tiles)
    assert all(s == 200 for _, s in tiles), tiles
    page.screenshot(
        path=str(artifacts_dir / "image_page_large_full_resolution.png"), full_page=True
    )
