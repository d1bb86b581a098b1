"""Crack tracks across inspections, in tunnel metres (synthetic inspections)."""

import pytest

from crackportal.inspections.models import Crack, CrackTrack
from crackportal.inspections.tracking import track_run
from tests.factories import make_crack, make_image, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def first_inspection(tunnel):
    run = make_run(tunnel, "2024-05-01")
    image = make_image(run, "a.jpg", chainage_m=(10.0, 12.0), arc_m=(0.0, 1.0))
    crack = make_crack(image, 0, start_m=(10.2, 0.3), end_m=(11.2, 0.3), width_mm=0.3)
    track_run(run)
    crack.refresh_from_db()
    return crack


def test_first_inspection_starts_one_track_per_crack(first_inspection):
    track = first_inspection.track
    assert track is not None and track.first_seen.isoformat() == "2024-05-01"
    assert track.history == [
        {
            "run": first_inspection.image.run_id,
            "date": "2024-05-01",
            "length_mm": 1000.0,
            "width_max_mm": 0.3,
            "pieces": 1,
        }
    ]


def test_crack_grown_20_percent_is_one_track_with_its_growth(tunnel, first_inspection):
    run = make_run(tunnel, "2026-05-01")  # 730 days later
    image = make_image(run, "a.jpg", chainage_m=(10.0, 12.0), arc_m=(0.0, 1.0))
    grown = make_crack(image, 0, start_m=(10.2, 0.3), end_m=(11.4, 0.3), width_mm=0.5)
    result = track_run(run)
    grown.refresh_from_db()
    assert result.matched == 1 and result.new == 0
    track = grown.track
    assert track.pk == first_inspection.track_id
    assert [h["length_mm"] for h in track.history] == pytest.approx([1000.0, 1200.0])
    assert track.length_growth_mm_per_year == pytest.approx(200 / (730 / 365.25))
    assert track.width_growth_mm_per_year == pytest.approx(0.2 / (730 / 365.25))
    assert track.last_seen.isoformat() == "2026-05-01"


def test_new_crack_starts_a_new_track(tunnel, first_inspection):
    run = make_run(tunnel, "2025-05-01")
    image = make_image(run, "a.jpg", chainage_m=(10.0, 12.0), arc_m=(0.0, 1.0))
    make_crack(image, 0, start_m=(10.2, 0.3), end_m=(11.2, 0.3))
    parallel = make_crack(image, 1, start_m=(10.2, 0.5), end_m=(11.2, 0.5))  # 200 mm away
    transverse = make_crack(image, 2, start_m=(11.6, 0.1), end_m=(11.6, 0.9))
    result = track_run(run)
    assert result.matched == 1 and result.new == 2
    parallel.refresh_from_db(), transverse.refresh_from_db()
    assert len({first_inspection.track_id, parallel.track_id, transverse.track_id}) == 3


def test_survey_shifted_30_mm_still_matches(tunnel, first_inspection):
    run = make_run(tunnel, "2025-05-01")
    image = make_image(run, "a.jpg", chainage_m=(10.03, 12.03), arc_m=(0.02, 1.02))
    shifted = make_crack(image, 0, start_m=(10.23, 0.32), end_m=(11.23, 0.32))
    track_run(run)
    shifted.refresh_from_db()
    assert shifted.track_id == first_inspection.track_id


def test_crack_cut_by_image_border_is_one_crack(tunnel):
    run = make_run(tunnel, "2025-05-01")
    left = make_image(run, "left.jpg", chainage_m=(0.0, 1.0), arc_m=(0.0, 1.0))
    right = make_image(run, "right.jpg", chainage_m=(1.0, 2.0), arc_m=(0.0, 1.0))
    a = make_crack(left, 0, start_m=(0.6, 0.4), end_m=(0.999, 0.45))
    b = make_crack(right, 0, start_m=(1.001, 0.45), end_m=(1.5, 0.5))
    # a neighbour that stops short of the border stays its own crack
    c = make_crack(left, 1, start_m=(0.3, 0.8), end_m=(0.7, 0.8))
    result = track_run(run)
    assert result.stitched == 1 and result.new == 2
    a.refresh_from_db(), b.refresh_from_db(), c.refresh_from_db()
    assert a.track_id == b.track_id != c.track_id
    assert a.track.length_mm == pytest.approx(a.length_mm + b.length_mm)


def test_only_the_piece_that_continues_a_cut_crack_is_stitched_to_it(tunnel):
    """Found on real tunnel-lining photos at 0.5 mm/px laid side by side: every crack that
    ended within 50 mm of a border was stitched to every piece of the next image within
    50 mm, so 20 cracks of one inspection became one track. A cut crack continues where it
    was cut: the piece starting at that point across the border, not a parallel crack 40 mm
    away or a crack running along the border, and an end joins one piece."""
    run = make_run(tunnel, "2025-05-01")
    left = make_image(run, "left.jpg", chainage_m=(0.0, 0.256), arc_m=(0.0, 0.256))
    right = make_image(run, "right.jpg", chainage_m=(0.256, 0.512), arc_m=(0.0, 0.256))
    cut = make_crack(left, 0, start_m=(0.05, 0.10), end_m=(0.255, 0.10))
    continued = make_crack(right, 0, start_m=(0.257, 0.101), end_m=(0.45, 0.11))
    parallel = make_crack(right, 1, start_m=(0.257, 0.14), end_m=(0.45, 0.15))
    along = make_crack(right, 2, start_m=(0.27, 0.02), end_m=(0.27, 0.09))  # 14 mm inside
    # a crack running along the left image's border, with a piece across it 30 mm away
    edge = make_crack(left, 1, start_m=(0.24, 0.16), end_m=(0.24, 0.25))
    neighbour = make_crack(right, 3, start_m=(0.27, 0.17), end_m=(0.40, 0.24))
    result = track_run(run)
    cracks = [cut, continued, parallel, along, edge, neighbour]
    for c in cracks:
        c.refresh_from_db()
    assert cut.track_id == continued.track_id
    assert len({c.track_id for c in cracks}) == 5, [c.track_id for c in cracks]
    assert result.stitched == 1 and result.new == 5


def test_on_a_coarse_survey_the_stitch_reaches_ten_pixels(tunnel):
    """At 4 mm/px the network leaves a crack's ends a few pixels short of the cut: 32 mm
    apart, more than the 20 mm a fine survey needs; a crack 80 mm (20 px) away stays apart."""
    run = make_run(tunnel, "2025-05-01")
    left = make_image(run, "left.jpg", (0.0, 2.0), (0.0, 2.0), size=(500, 500))
    right = make_image(run, "right.jpg", (2.0, 4.0), (0.0, 2.0), size=(500, 500))
    a = make_crack(left, 0, start_m=(1.0, 1.0), end_m=(1.984, 1.0))
    b = make_crack(right, 0, start_m=(2.016, 1.0), end_m=(3.0, 1.05))
    c = make_crack(right, 1, start_m=(2.016, 1.08), end_m=(3.0, 1.3))
    result = track_run(run)
    a.refresh_from_db(), b.refresh_from_db(), c.refresh_from_db()
    assert a.track_id == b.track_id != c.track_id and result.stitched == 1


def test_pieces_of_a_crack_in_overlapping_images_are_stitched(tunnel):
    """Survey images that overlap by 40 mm: the crack shows in both, its pieces overlap."""
    run = make_run(tunnel, "2025-05-01")
    left = make_image(run, "left.jpg", chainage_m=(0.0, 0.5), arc_m=(0.0, 0.5))
    right = make_image(run, "right.jpg", chainage_m=(0.46, 0.96), arc_m=(0.0, 0.5))
    a = make_crack(left, 0, start_m=(0.2, 0.3), end_m=(0.499, 0.31))
    b = make_crack(right, 0, start_m=(0.461, 0.309), end_m=(0.8, 0.32))
    result = track_run(run)
    a.refresh_from_db(), b.refresh_from_db()
    assert a.track_id == b.track_id and result.stitched == 1


def test_parallel_cracks_35_mm_apart_keep_their_own_tracks(tunnel):
    """Found on a second inspection of real tunnel-lining photos (0.5 mm/px, longitudinal
    cracks 30-40 mm apart): each crack lay within the 50 mm tolerance of its neighbours'
    tracks, so the longest took them all and 23 tracks were joined into others. Each crack
    continues the track it lies on; a track is joined only by a crack that runs on along
    it (see the next test), never by one beside it."""
    arcs = [0.10, 0.135, 0.17, 0.205]
    old = make_run(tunnel, "2025-05-01")
    image = make_image(old, "a.jpg", (0.0, 0.5), (0.0, 0.3))
    before = [
        make_crack(image, i, (0.05, arc), (0.30 + 0.02 * i, arc + 0.004))
        for i, arc in enumerate(arcs)
    ]
    track_run(old)
    new = make_run(tunnel, "2026-05-01")
    image = make_image(new, "a.jpg", (0.003, 0.503), (0.002, 0.302))  # surveyed 3 mm off
    after = [
        make_crack(image, i, (0.053, arc + 0.002), (0.33 + 0.02 * i, arc + 0.006))
        for i, arc in enumerate(arcs)
    ]
    result = track_run(new)
    assert (result.matched, result.new, result.joined) == (4, 0, 0)
    for old_crack, new_crack in zip(before, after, strict=True):
        old_crack.refresh_from_db(), new_crack.refresh_from_db()
        assert new_crack.track_id == old_crack.track_id
    assert CrackTrack.objects.count() == 4


def test_a_longer_new_crack_beside_an_old_one_does_not_take_its_track(tunnel):
    """The longest crack chose first: a new crack 35 mm beside an old one took its track, and
    the old crack, seen again in its place, started a new one."""
    old = make_run(tunnel, "2025-05-01")
    image = make_image(old, "a.jpg", (0.0, 0.5), (0.0, 0.3))
    seen = make_crack(image, 0, (0.05, 0.10), (0.25, 0.10))
    track_run(old)
    new = make_run(tunnel, "2026-05-01")
    image = make_image(new, "a.jpg", (0.0, 0.5), (0.0, 0.3))
    again = make_crack(image, 0, (0.05, 0.10), (0.25, 0.10))
    beside = make_crack(image, 1, (0.04, 0.135), (0.40, 0.135))
    result = track_run(new)
    again.refresh_from_db(), beside.refresh_from_db(), seen.refresh_from_db()
    assert again.track_id == seen.track_id != beside.track_id
    assert (result.matched, result.new) == (1, 1)


def test_one_crack_joining_two_old_ones_merges_their_tracks(tunnel):
    old = make_run(tunnel, "2024-05-01")
    image = make_image(old, "a.jpg", chainage_m=(0.0, 2.0), arc_m=(0.0, 1.0))
    make_crack(image, 0, start_m=(0.2, 0.5), end_m=(0.8, 0.5))
    make_crack(image, 1, start_m=(1.0, 0.5), end_m=(1.6, 0.5))
    track_run(old)
    assert CrackTrack.objects.count() == 2
    new = make_run(tunnel, "2025-05-01")
    joined = make_crack(
        make_image(new, "a.jpg", chainage_m=(0.0, 2.0), arc_m=(0.0, 1.0)),
        0,
        start_m=(0.2, 0.5),
        end_m=(1.6, 0.5),
    )
    result = track_run(new)
    assert result.joined == 1 and CrackTrack.objects.count() == 1
    joined.refresh_from_db()
    assert Crack.objects.filter(track=joined.track).count() == 3


def test_tracking_a_run_again_changes_nothing(tunnel, first_inspection):
    run = make_run(tunnel, "2025-05-01")
    image = make_image(run, "a.jpg", chainage_m=(10.0, 12.0), arc_m=(0.0, 1.0))
    crack = make_crack(image, 0, start_m=(10.2, 0.3), end_m=(11.2, 0.3))
    make_crack(image, 1, start_m=(11.6, 0.1), end_m=(11.6, 0.9))
    track_run(run)
    before = sorted(Crack.objects.values_list("id", "track_id"))
    tracks = CrackTrack.objects.count()
    track_run(run)
    crack.refresh_from_db()
    assert crack.track_id == first_inspection.track_id
    assert CrackTrack.objects.count() == tracks == 2
    assert len(before) == len(sorted(Crack.objects.values_list("id", "track_id")))


def test_tolerance_is_configurable(tunnel, first_inspection):
    run = make_run(tunnel, "2025-05-01")
    image = make_image(run, "a.jpg", chainage_m=(10.0, 12.0), arc_m=(0.0, 1.0))
    crack = make_crack(image, 0, start_m=(10.2, 0.38), end_m=(11.2, 0.38))  # 80 mm off
    track_run(run)
    crack.refresh_from_db()
    assert crack.track_id != first_inspection.track_id
    track_run(run, tolerance_mm=100)
    crack.refresh_from_db()
    assert crack.track_id == first_inspection.track_id


def test_track_cracks_command_reports_each_run(tunnel, first_inspection):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("track_cracks", tunnel=tunnel.code, stdout=out)
    assert "1 cracks, 0 stitched across borders, 0 continue a track, 1 new" in out.getvalue()


def test_growth_alert_thresholds_come_from_settings(tunnel, first_inspection, settings):
    from crackportal.inspections.selectors import growing_cracks

    run = make_run(tunnel, "2025-05-01")
    image = make_image(run, "a.jpg", chainage_m=(10.0, 12.0), arc_m=(0.0, 1.0))
    crack = make_crack(image, 0, start_m=(10.2, 0.3), end_m=(11.28, 0.3), width_mm=0.35)  # +8 %
    track_run(run)
    assert not growing_cracks(run).exists()  # below +10 % length and +0.1 mm width
    settings.GROWTH_ALERT_LENGTH_FRACTION = 0.05
    assert list(growing_cracks(run)) == [crack]
    settings.GROWTH_ALERT_LENGTH_FRACTION, settings.GROWTH_ALERT_WIDTH_MM = 0.10, 0.04
    assert list(growing_cracks(run)) == [crack]
