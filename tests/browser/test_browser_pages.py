"""Each page in headless Chromium, as the role that uses it. Screenshots go to test-artifacts/."""

import pytest

from crackportal.inspections.models import CrackTrack
from crackportal.modelops.models import TrainingRun
from tests.conftest import login
from tests.factories import make_crack, make_image, make_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def inspected_tunnel(tunnel):
    old, new = make_run(tunnel, "2025-05-01"), make_run(tunnel, "2026-05-01")
    track = CrackTrack.objects.create(tunnel=tunnel, first_run=old)
    make_crack(make_image(old, "a.jpg"), 0, width_mm=0.3, end_m=(0.5, 0.1), track=track)
    image = make_image(new, "a.jpg")
    grown = make_crack(image, 0, width_mm=0.45, end_m=(0.6, 0.1), track=track)
    make_crack(
        image, 1, start_m=(0.8, 0.05), end_m=(0.8, 0.45), width_mm=1.5, orientation="transverse"
    )
    make_crack(
        make_image(new, "b.jpg", chainage_m=(1.0, 2.0)),
        0,
        start_m=(1.2, 0.2),
        end_m=(1.5, 0.3),
        width_mm=4.0,
        orientation="diagonal",
    )
    return {"run": new, "grown": grown}


DRAWN = """() => Object.values(window.crackMap._layers).filter(
    l => l instanceof L.Polyline && !(l instanceof L.Polygon) && !l.options.grid).length"""


def test_map_draws_cracks_filters_zooms_and_opens_a_crack(
    live_server, page, inspector, inspected_tunnel, artifacts_dir
):
    login(page, live_server, "inspector", "inspect-pass-123")
    page.goto(f"{live_server.url}/tunnels/T-TEST-01/map/")
    page.wait_for_function("() => document.getElementById('map-count').textContent === '3'")
    assert page.evaluate(DRAWN) == 3
    coloured = page.evaluate("""() => {
        const c = document.querySelector('#map canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i + 1] < 120 && d[i + 3] > 0) n++; return n; }""")
    assert coloured > 20  # severe and critical cracks are painted in red-orange
    page.screenshot(path=str(artifacts_dir / "map.png"), full_page=True)

    page.uncheck("input[name=severity][value=critical]")
    page.wait_for_function("() => document.getElementById('map-count').textContent === '2'")
    page.check("#f-new")
    page.wait_for_function(
        "() => document.getElementById('map-count').textContent === '1'"
    )  # the transverse one
    page.uncheck("#f-new")
    page.wait_for_function("() => document.getElementById('map-count').textContent === '2'")

    zoom_before = page.evaluate("window.crackMap.getZoom()")
    page.evaluate(
        "window.crackMap.setView([-0.1, 0.45], window.crackMap.getZoom() + 2, {animate: false})"
    )
    assert page.evaluate("window.crackMap.getZoom()") > zoom_before
    point = page.evaluate(
        "(() => { const p = window.crackMap.latLngToContainerPoint([-0.1, 0.4]); return [p.x, p.y]; })()"
    )
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_selector(".leaflet-tooltip", timeout=5000)
    assert "mm long" in page.inner_text(".leaflet-tooltip")
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_url(f"**/cracks/{inspected_tunnel['grown'].pk}/")
    page.wait_for_function(
        "() => Chart.getChart(document.getElementById('history-chart')) !== undefined"
    )
    assert page.locator("#history tbody tr").count() == 2
    assert "mm/year" in page.inner_text("#growth")
    page.screenshot(path=str(artifacts_dir / "crack_page.png"), full_page=True)


def test_map_reads_like_a_drawing_and_keeps_its_filters_and_view_in_the_address(
    live_server, page, inspector, inspected_tunnel, artifacts_dir
):
    login(page, live_server, "inspector", "inspect-pass-123")
    page.goto(f"{live_server.url}/tunnels/T-TEST-01/map/")
    page.wait_for_function("() => document.getElementById('map-count').textContent === '3'")
    labels = page.locator(".grid-label-x").all_inner_texts()
    assert labels and all("+" in t for t in labels) and any(t.startswith("0+") for t in labels)
    assert page.locator(".grid-label-y").count() > 0
    assert page.inner_text("#scale-label").endswith(("m", "mm"))
    assert page.evaluate("window.formatChainage(400.03)") == "0+400.030"
    assert page.evaluate("window.formatChainage(999.9996)") == "1+000.000"
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.inner_text("#cursor-readout").startswith("chainage 0+")
    for name, zoom in (("fitted", 0), ("closer", 2), ("close", 4)):
        if zoom:
            page.evaluate(
                f"window.crackMap.setZoom(window.crackMap.getZoom() + {zoom // 2} * 2, {{animate: false}})"
            )
        page.screenshot(path=str(artifacts_dir / f"map-drawing-{name}.png"), full_page=True)
    # filters and view live in the address: a reload shows the same map
    page.uncheck("input[name=severity][value=critical]")
    page.wait_for_function("() => document.getElementById('map-count').textContent === '2'")
    assert "severity=" in page.url and "z=" in page.url
    zoom = page.evaluate("window.crackMap.getZoom()")
    page.reload()
    page.wait_for_function("() => document.getElementById('map-count').textContent === '2'")
    assert not page.is_checked("input[name=severity][value=critical]")
    assert abs(page.evaluate("window.crackMap.getZoom()") - zoom) < 0.01
    # zoom limits: never further out than a little beyond the whole inspection
    page.evaluate("window.crackMap.setZoom(-50, {animate: false})")
    assert (
        page.evaluate("window.crackMap.getZoom()")
        >= page.evaluate("window.crackMap.getMinZoom()")
        > -6
    )


def test_dashboard_shows_severity_counts_and_growth(
    live_server, page, manager, inspected_tunnel, artifacts_dir
):
    login(page, live_server, "manager", "pass-word-123")
    row = page.locator('tr[data-tunnel="T-TEST-01"]')
    assert "critical 1" in row.inner_text() and "severe 1" in row.inner_text()
    page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)


def test_inspector_gets_403_on_admin_pages(live_server, page, inspector, artifacts_dir):
    login(page, live_server, "inspector", "inspect-pass-123")
    for path in ("/training/", "/models/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403
        assert "Not allowed" in page.inner_text("h1")
    page.screenshot(path=str(artifacts_dir / "forbidden.png"))


@pytest.mark.integration
def test_admin_starts_one_epoch_training_and_watches_it_finish(
    worker, live_server, page, admin_user, synthetic_dataset, artifacts_dir
):
    login(page, live_server, "admin", "admin-pass-123")
    page.goto(f"{live_server.url}/training/")
    page.select_option("#id_config_name", "unet-tiny")
    # the tiny network is not the active model's: the form stops offering to start from it
    assert not page.is_checked("#id_init_from_active")
    page.select_option("#id_dataset", "synthetic")
    page.fill("#id_epochs", "1")
    page.click("text=Start training")
    page.wait_for_selector("#training-status.badge-done", timeout=240_000)
    assert page.inner_text("#epoch") == "1"
    assert page.locator("#history tbody tr").count() == 1
    run = TrainingRun.objects.get()
    assert page.inner_text("#result") == run.result.name
    assert page.evaluate("window.trainingCharts.metricChart.data.datasets[1].data.length") == 1
    page.screenshot(path=str(artifacts_dir / "training.png"), full_page=True)


def _half_dark_jpeg(width=400, height=200) -> bytes:
    """A photo whose left half (low pixel x) is black and right half white."""
    import io

    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(photo).rectangle([0, 0, width // 2 - 1, height], fill="black")
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_map_shows_rings_condition_band_zones_and_the_photos_at_close_zoom(
    live_server, page, inspector, tunnel, artifacts_dir
):
    from django.core.files.base import ContentFile

    tunnel.ring_length_m, tunnel.segments_per_ring = 0.5, 60  # segments of 0.25 m
    tunnel.lining_zones = "invert, 0, 0.2\n<i>wall</i>, 0.2, 15"  # a name is text, never HTML
    tunnel.save()
    run = make_run(tunnel, "2026-05-01")
    ahead = make_image(run, "a.jpg", chainage_m=(0.0, 1.0), size=(400, 200))
    # surveyed the other way: pixel x runs from chainage 2.0 back to 1.0
    back = make_image(run, "b.jpg", chainage_m=(2.0, 1.0), size=(400, 200))
    for image in (ahead, back):
        image.file.save(image.original_name, ContentFile(_half_dark_jpeg()), save=True)
    make_crack(ahead, 0, start_m=(0.6, 0.1), end_m=(0.9, 0.2), width_mm=1.5)  # ring 2: CS4
    make_crack(back, 0, start_m=(1.1, 0.3), end_m=(1.3, 0.3), width_mm=0.1)  # ring 3: CS1
    login(page, live_server, "inspector", "inspect-pass-123")
    page.goto(f"{live_server.url}/tunnels/T-TEST-01/map/?run={run.pk}")
    page.wait_for_function("() => document.getElementById('map-count').textContent === '2'")
    # the rings come in a request of their own, after the cracks
    page.wait_for_function(
        "() => document.getElementById('map-status').textContent.includes('rings rated')"
    )
    assert page.evaluate(DRAWN) == 2  # ring, segment and zone lines are not cracks
    assert page.locator(".ring-label").all_inner_texts()[:4] == ["R1", "R2", "R3", "R4"]
    assert {"invert", "<i>wall</i>"} <= set(page.locator(".zone-label").all_inner_texts())
    zone = page.locator(".zone-label").first.bounding_box()
    map_box = page.locator("#map").bounding_box()
    assert map_box["x"] < zone["x"] and zone["x"] + zone["width"] <= map_box["x"] + map_box["width"]
    assert "4 rings rated" in page.inner_text("#map-status")
    page.screenshot(path=str(artifacts_dir / "map-rings-1-fitted.png"), full_page=True)

    # the band cell of ring 2 lists its crack and says CS4
    band = page.evaluate(
        """(() => { const r = window.crackMap.getBounds();
        const p = window.crackMap.latLngToContainerPoint([0.06, 0.75]); return [p.x, p.y]; })()"""
    )
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + band[0], box["y"] + band[1])
    page.wait_for_selector("#ring-panel:not([hidden])")
    panel = page.inner_text("#ring-panel")
    assert "Ring 2" in panel and "CS4" in panel and "1.50" in panel
    # a click on the lining picks the segment under it
    point = page.evaluate(
        "(() => { const p = window.crackMap.latLngToContainerPoint([-0.1, 1.2]); return [p.x, p.y]; })()"
    )
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_function("() => document.getElementById('ring-panel').dataset.segment === '1'")
    assert "Ring 3, segment 1" in page.inner_text("#ring-panel")
    # the read-out follows the pointer: move off and back (Chromium drops a move to where the
    # pointer already is) and wait for the mousemove to be handled
    page.mouse.move(box["x"] + point[0] + 6, box["y"] + point[1] + 6)
    page.mouse.move(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_function(
        "() => document.getElementById('cursor-readout').textContent.includes('R3-S1')",
        timeout=5000,
    )
    readout = page.inner_text("#cursor-readout")
    assert "R3-S1" in readout and "invert" in readout

    page.evaluate(
        "window.crackMap.setView([-0.25, 1.0], window.crackMap.getZoom() + 1, {animate: false})"
    )
    page.screenshot(path=str(artifacts_dir / "map-rings-2-closer.png"), full_page=True)
    # close: both photos lie under the cracks, the backwards one mirrored
    page.evaluate("window.crackMap.setView([-0.25, 1.5], 9, {animate: false})")
    page.wait_for_function("() => +document.getElementById('map').dataset.photos >= 1")
    page.wait_for_function(
        "() => [...document.querySelectorAll('svg.survey-photo image')].length >= 1"
    )
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "map-rings-3-photos.png"), full_page=True)
    import io

    from PIL import Image

    shot = Image.open(io.BytesIO(page.locator("#map").screenshot())).convert("L")

    def grey_at(chainage, arc):
        p = page.evaluate(
            f"(() => {{ const p = window.crackMap.latLngToContainerPoint([{-arc}, {chainage}]); return [p.x, p.y]; }})()"
        )
        return shot.getpixel((int(p[0]), int(p[1])))

    # image b: pixel x from chainage 2.0 (x = 0, black half) back to 1.0 (white half)
    assert grey_at(1.9, 0.4) < 60 and grey_at(1.1, 0.4) > 200
