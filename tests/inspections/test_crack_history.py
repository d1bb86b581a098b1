"""One crack history: one row per inspection (stitched pieces merged), growth computed once."""

import pytest

from crackportal.inspections.growth import growth_per_year, observations
from crackportal.inspections.tracking import track_run
from tests.factories import make_crack, make_image, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def stitched_track(tunnel):
    """2025: one crack across two images (two pieces, 400 + 300 mm); 2026: one piece of 900 mm."""
    old = make_run(tunnel, "2025-05-01")
    left = make_image(old, "l.jpg", chainage_m=(10.0, 11.0), arc_m=(0.0, 0.5))
    right = make_image(old, "r.jpg", chainage_m=(11.0, 12.0), arc_m=(0.0, 0.5))
    make_crack(left, 0, start_m=(10.6, 0.2), end_m=(11.0, 0.2), width_mm=0.3)
    make_crack(right, 0, start_m=(11.0, 0.2), end_m=(11.3, 0.2), width_mm=0.5)
    track_run(old)
    new = make_run(tunnel, "2026-05-01")
    whole = make_image(new, "w.jpg", chainage_m=(10.0, 12.0), arc_m=(0.0, 0.5))
    crack = make_crack(whole, 0, start_m=(10.5, 0.2), end_m=(11.4, 0.2), width_mm=0.6)
    track_run(new)
    crack.refresh_from_db()
    return crack


def test_stitched_pieces_are_one_row_with_total_length_and_widest_width(stitched_track):
    history = observations(stitched_track.track.cracks.select_related("image__run"))
    assert [(o.date.isoformat(), len(o.cracks)) for o in history] == [
        ("2025-05-01", 2),
        ("2026-05-01", 1),
    ]
    assert history[0].length_mm == pytest.approx(700.0)
    assert history[0].width_max_mm == pytest.approx(0.5)
    assert history[0].crack.length_mm == pytest.approx(400.0)  # the longest piece represents it


def test_growth_is_computed_by_hand_and_stored_on_the_track(stitched_track):
    track = stitched_track.track
    years = 365 / 365.25
    assert track.length_growth_mm_per_year == pytest.approx((900 - 700) / years)
    assert track.width_growth_mm_per_year == pytest.approx((0.6 - 0.5) / years)
    growth = growth_per_year(observations(track.cracks.select_related("image__run")))
    assert growth.length_mm_per_year == track.length_growth_mm_per_year


def test_crack_page_shows_one_row_per_inspection_and_the_tracks_growth(
    client, inspector, stitched_track
):
    client.force_login(inspector)
    page = client.get(stitched_track.get_absolute_url())
    assert page.status_code == 200
    history = page.context["history"]
    assert len(history) == 2 and "2 pieces" in page.content.decode()
    track = stitched_track.track
    assert page.context["growth"].length_mm_per_year == pytest.approx(
        track.length_growth_mm_per_year
    )
    assert "Seen in one inspection so far" not in page.content.decode()


def test_the_map_and_the_exports_show_the_same_growth(stitched_track):
    from crackportal.inspections.maps import MapFilters, map_data
    from crackportal.reports.exports import crack_rows

    run = stitched_track.image.run
    track = stitched_track.track
    (on_map,) = map_data(run, MapFilters())["cracks"]
    assert on_map["length_growth_mm_per_year"] == round(track.length_growth_mm_per_year, 1)
    (row,) = crack_rows(run)
    assert row["length_growth_mm_per_year"] == on_map["length_growth_mm_per_year"]
    assert row["width_growth_mm_per_year"] == round(track.width_growth_mm_per_year, 3)
