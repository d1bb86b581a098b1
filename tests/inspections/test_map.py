"""The crack map's data endpoint and the crack page."""

import pytest
from django.urls import reverse

from crackportal.inspections.models import CrackTrack
from tests.factories import make_crack, make_image, make_run


@pytest.fixture
def two_inspections(tunnel):
    old, new = make_run(tunnel, "2025-05-01"), make_run(tunnel, "2026-05-01")
    track = CrackTrack.objects.create(tunnel=tunnel, first_run=old)
    old_img, new_img = make_image(old, "a.jpg"), make_image(new, "a.jpg", chainage_m=(0.0, 1.0))
    make_crack(old_img, 0, width_mm=0.3, end_m=(0.5, 0.1), track=track)
    grown = make_crack(new_img, 0, width_mm=0.45, end_m=(0.6, 0.1), track=track)
    fresh = make_crack(
        new_img, 1, start_m=(0.8, 0.1), end_m=(0.8, 0.45), width_mm=1.5, orientation="transverse"
    )
    wide_far = make_crack(
        make_image(new, "b.jpg", chainage_m=(50.0, 51.0)),
        0,
        start_m=(50.2, 0.2),
        end_m=(50.3, 0.3),
        width_mm=4.0,
        orientation="diagonal",
    )
    return {"old": old, "new": new, "grown": grown, "fresh": fresh, "far": wide_far}


def _ids(client, tunnel, **params):
    response = client.get(reverse("tunnel-map-data", args=[tunnel.code]), params)
    assert response.status_code == 200
    return {c["id"] for c in response.json()["cracks"]}


def test_map_data_has_footprints_and_crack_lines_in_metres(
    client, inspector, tunnel, two_inspections
):
    client.force_login(inspector)
    data = client.get(
        reverse("tunnel-map-data", args=[tunnel.code]), {"run": two_inspections["new"].pk}
    ).json()
    assert len(data["footprints"]) == 2 and len(data["cracks"]) == 3
    grown = next(c for c in data["cracks"] if c["id"] == two_inspections["grown"].pk)
    assert grown["lines"] == [[[0.2, 0.1], [0.6, 0.1]]] and grown["severity"] == "minor"


def test_map_filters(client, inspector, tunnel, two_inspections):
    client.force_login(inspector)
    run = two_inspections["new"].pk
    g, f, far = (two_inspections[k].pk for k in ("grown", "fresh", "far"))
    assert _ids(client, tunnel, run=run, severity="severe") == {f}
    assert _ids(client, tunnel, run=run, orientation="transverse,diagonal") == {f, far}
    assert _ids(client, tunnel, run=run, min_width_mm="1.0") == {f, far}
    assert _ids(client, tunnel, run=run, chainage_from_m="10") == {far}
    assert _ids(client, tunnel, run=run, chainage_to_m="0.7") == {g}
    assert _ids(client, tunnel, run=run, new="1") == {f, far}


def test_map_data_rejects_bad_numbers(client, inspector, tunnel, two_inspections):
    client.force_login(inspector)
    response = client.get(
        reverse("tunnel-map-data", args=[tunnel.code]),
        {"run": two_inspections["new"].pk, "min_width_mm": "wide"},
    )
    assert response.status_code == 400 and "must be a number" in response.json()["error"]


def test_map_page_lists_inspections(client, inspector, tunnel, two_inspections):
    client.force_login(inspector)
    page = client.get(reverse("tunnel-map", args=[tunnel.code])).content.decode()
    for run in (two_inspections["old"], two_inspections["new"]):
        assert f'<option value="{run.pk}"' in page
    assert "vendor/leaflet/leaflet.js" in page


def test_crack_page_shows_history_and_growth(client, inspector, two_inspections):
    client.force_login(inspector)
    page = client.get(reverse("crack-detail", args=[two_inspections["grown"].pk])).content.decode()
    assert page.count('data-date="') == 2
    assert "100.1 mm/year" in page  # 400 mm → 500 mm in 365 days (of 365.25 a year)


def test_growing_cracks_are_counted_on_the_dashboard(client, manager, tunnel, two_inspections):
    client.force_login(manager)
    page = client.get(reverse("tunnel-list")).content.decode()
    row = page[page.index('data-tunnel="T-TEST-01"') :]
    assert '<td class="num" data-field="growing">1</td>' in row[:2000]  # one growing crack
