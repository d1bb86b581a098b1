"""Rings, segments, lining zones and the condition state (CS1–CS4) of each ring."""

import pytest
from django.urls import reverse

from crackportal.assets.forms import TunnelForm
from crackportal.inspections.condition import (
    lining_zones,
    parse_zones,
    ring_conditions,
    state_for,
    worst_rings_first,
    zone_at,
)
from crackportal.inspections.models import Crack, CrackTrack
from tests.factories import make_crack, make_image, make_run


def test_state_is_the_worst_rule_any_figure_meets():
    assert state_for(0.0, 0.0, 0) == "CS1"
    assert state_for(0.25, 0.0, 0) == "CS2"
    assert state_for(0.1, 0.6, 0) == "CS3"  # density alone
    assert state_for(0.1, 0.0, 1) == "CS3"  # one growing crack
    assert state_for(1.2, 0.0, 0) == "CS4"
    assert state_for(0.1, 0.0, 3) == "CS4"


def test_condition_rules_come_from_settings(settings):
    settings.CONDITION_STATES = [("CS2", "fair", {"width_mm": 5.0}), ("CS1", "good", {})]
    assert state_for(1.2, 9.0, 4) == "CS1" and state_for(5.0, 0, 0) == "CS2"


def test_zones_default_from_the_circumference_and_can_be_typed(tunnel):
    zones = lining_zones(tunnel)  # circumference 15 m, arc 0 at the invert's centre
    assert zone_at(zones, 0.5) == "invert" and zone_at(zones, 7.5) == "crown"
    assert zone_at(zones, 14.9) == "invert" and zone_at(zones, 3.0) == "left wall"
    tunnel.lining_zones = "crown, 6, 9\nwall, 0, 6"
    assert zone_at(lining_zones(tunnel), 7) == "crown" and zone_at(lining_zones(tunnel), 10) == ""


@pytest.mark.parametrize(
    "text, message",
    [("crown 6 9", "line 1"), ("crown, 6, x", "numbers"), ("a, 1, 2\ncrown, 9, 6", "line 2")],
)
def test_badly_typed_zones_say_which_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_zones(text)


def test_tunnel_form_refuses_bad_zones(db):
    form = TunnelForm(
        data={
            "code": "T-Z",
            "name": "Z",
            "length_m": 100,
            "circumference_m": 10,
            "first_ring_chainage_m": 0,
            "lining_zones": "crown; 1; 2",
        }
    )
    assert not form.is_valid() and "line 1" in form.errors["lining_zones"][0]


@pytest.fixture
def ringed(tunnel):
    """Rings of 1.5 m from chainage 0, 5 segments of 3 m; an image over rings 1–3 (0–4 m)."""
    tunnel.ring_length_m, tunnel.segments_per_ring = 1.5, 5
    tunnel.save()
    old, new = make_run(tunnel, "2025-05-01"), make_run(tunnel, "2026-05-01")
    image = make_image(new, "a.jpg", chainage_m=(0.0, 4.0), arc_m=(0.0, 4.0))
    track = CrackTrack.objects.create(tunnel=tunnel, first_run=old)
    make_crack(make_image(old, "a.jpg"), 0, width_mm=0.2, end_m=(0.6, 0.1), track=track)
    # ring 1, segment 1: 0.4 m along, grew from 0.2 to 0.35 mm wide (growing)
    grown = make_crack(image, 0, width_mm=0.35, start_m=(0.2, 0.1), end_m=(0.6, 0.1), track=track)
    # from chainage 1.0 to 2.0 at arc 3.5 (segment 2): half in ring 1, half in ring 2
    across = make_crack(image, 1, width_mm=0.25, start_m=(1.0, 3.5), end_m=(2.0, 3.5))
    # ring 3, rejected as a joint: counts nowhere
    joint = make_crack(image, 2, width_mm=2.0, start_m=(3.2, 0.5), end_m=(3.2, 2.5))
    Crack.objects.filter(pk=joint.pk).update(review=Crack.Review.REJECTED)
    return {"run": new, "grown": grown, "across": across, "joint": joint}


def test_rings_have_length_per_m2_worst_width_growing_and_state(ringed):
    data = ring_conditions(ringed["run"])
    rings = {r["ring"]: r for r in data["rings"]}
    assert sorted(rings) == [1, 2, 3]  # the image covers 0–4 m: rings 1–3, nothing beyond
    area = 1.5 * 15
    one, two, three = rings[1], rings[2], rings[3]
    assert one["length_m"] == pytest.approx(0.4 + 0.5, abs=1e-6)
    assert one["length_per_m2"] == pytest.approx(0.9 / area, abs=1e-4)
    assert one["worst_width_mm"] == 0.35 and one["n_growing"] == 1 and one["state"] == "CS3"
    assert two["length_m"] == pytest.approx(0.5, abs=1e-6) and two["state"] == "CS2"
    assert two["cracks"] == [ringed["across"].pk]
    assert three["n_cracks"] == 0 and three["state"] == "CS1"  # the rejected joint is left out
    # segments: ring 1 segment 1 holds the growing crack, segment 2 the crossing one
    segments = {s["segment"]: s for s in one["segments"]}
    assert len(segments) == 5 and segments[1]["state"] == "CS3"
    assert segments[2]["cracks"] == [ringed["across"].pk] and segments[3]["state"] == "CS1"
    assert segments[1]["arc_to_m"] == 3.0
    assert [r["ring"] for r in worst_rings_first(data["rings"])] == [1, 2, 3]
    assert data["counts"] == {"CS4": 0, "CS3": 1, "CS2": 1, "CS1": 1}


def test_no_ring_length_no_rings(tunnel):
    assert ring_conditions(make_run(tunnel)) is None


def test_map_data_carries_rings_and_photos(client, inspector, ringed):
    client.force_login(inspector)
    tunnel = ringed["run"].tunnel
    data = client.get(
        reverse("tunnel-map-data", args=[tunnel.code]), {"run": ringed["run"].pk}
    ).json()
    rings = client.get(
        reverse("tunnel-map-rings", args=[tunnel.code]), {"run": ringed["run"].pk}
    ).json()["rings"]
    fields = rings["ring_fields"]
    rows = [dict(zip(fields, row, strict=False)) for row in rings["rings"]]
    assert [(r["ring"], r["state"]) for r in rows] == [(1, "CS3"), (2, "CS2"), (3, "CS1")]
    segments = [dict(zip(rings["segment_fields"], s, strict=False)) for s in rings["rings"][0][-1]]
    assert [s["state"] for s in segments] == ["CS3", "CS2", "CS1", "CS1", "CS1"]
    assert {z["name"] for z in rings["zones"]} >= {"crown", "invert", "left wall"}
    bad = client.get(reverse("tunnel-map-rings", args=[tunnel.code]), {"run": "x"})
    assert bad.status_code == 400
    image_id = data["footprints"][0][0]
    assert data["photos"] == [[image_id, 2000, 1000, "image"]]
    assert data["photo_urls"]["image"].replace("{id}", str(image_id)) == reverse(
        "image-original", args=[image_id]
    )
    tile = data["photo_urls"]["tile"].format(id=image_id, level=3, col=1, row=0)
    assert tile == reverse("image-tile", args=[image_id, "photo", "3/1_0.jpg"])
    assert {c["track"] for c in data["cracks"]} >= {f"T-{ringed['grown'].track_id:04d}", ""}


def test_photo_kind_by_size_and_format():
    from crackportal.inspections.maps import photo_kind

    assert photo_kind("a.JPG", 2000, 1000) == "image"
    assert photo_kind("a.tif", 6000, 4000) == "dzi"  # large: the deep-zoom tiles
    assert photo_kind("a.tif", 800, 600) == ""  # a browser cannot draw a TIFF
    assert photo_kind("a.png", None, None) == ""


def test_configured_states_are_checked():
    from crackportal.inspections.condition import check_states

    ok = check_states([["CS2", "fair", {"width_mm": 0.3}], ["CS1", "good", {}]])
    assert ok == [("CS2", "fair", {"width_mm": 0.3}), ("CS1", "good", {})]
    with pytest.raises(ValueError, match="unknown figure"):
        check_states([["CS2", "fair", {"depth": 1}], ["CS1", "good", {}]])
    with pytest.raises(ValueError, match="last"):
        check_states([["CS2", "fair", {"width_mm": 0.3}]])


def test_image_thumbnail_is_small_made_once_and_404_without_a_photo(
    client, inspector, tunnel, settings, tmp_path
):
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    from tests.conftest import survey_jpeg

    settings.MEDIA_ROOT = tmp_path
    run = make_run(tunnel)
    image = make_image(run, "a.jpg", size=(1600, 1200))
    image.file.save("a.jpg", ContentFile(survey_jpeg(seed=1, width=1600, height=1200)))
    client.force_login(inspector)
    response = client.get(reverse("image-thumbnail", args=[image.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(response.content)).size) == 192
    assert list((tmp_path / "thumbs" / str(run.pk)).iterdir())  # kept for the next request
    bare = make_image(run, "b.jpg")
    assert client.get(reverse("image-thumbnail", args=[bare.pk])).status_code == 404


def test_the_api_takes_ring_geometry_and_refuses_bad_zones(client, manager):
    client.force_login(manager)
    tunnel = {"code": "T-R", "name": "R", "length_m": 100, "circumference_m": 10}
    bad = client.post("/api/tunnels/", {**tunnel, "lining_zones": "crown 1 2"})
    assert bad.status_code == 400 and "line 1" in bad.json()["lining_zones"][0]
    good = client.post("/api/tunnels/", {**tunnel, "ring_length_m": 1.5, "segments_per_ring": 6})
    assert good.status_code == 201 and good.json()["ring_length_m"] == 1.5
