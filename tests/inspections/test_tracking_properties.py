"""Tracking that cannot crash: random tunnels and inspection sequences (hypothesis).

Each physical crack runs along its own lane of the lining; per inspection it is seen whole,
split in two (a gap wider than the tolerance), or not at all, it may grow, and every
inspection is surveyed with an offset up to half the tolerance. Cracks crossing an image
border are cut into pieces, one per image, as the worker would store them.
"""

import datetime as dt
import itertools
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crackportal.assets.models import Tunnel
from crackportal.inspections.models import Crack, CrackTrack
from crackportal.inspections.tracking import track_from, track_run
from tests.factories import make_crack, make_image, make_run

IMAGE_M = 2.0  # images 2 m along the chainage, 5 m around
GAP_M = 0.15  # a split crack's gap: three tolerances
_codes = itertools.count()

crack_state = st.tuples(
    st.sampled_from(["whole", "whole", "split", "gone"]),
    st.floats(1.0, 1.3),  # length grown by up to 30 %
    st.floats(0.2, 3.0),  # max width, mm
)
tunnel_history = st.fixed_dictionaries(
    {
        "cracks": st.lists(
            st.tuples(st.floats(0.1, 6.5), st.floats(0.5, 2.5), st.floats(-0.08, 0.08)),
            min_size=1,
            max_size=6,
        ),
        "runs": st.integers(2, 4),
        "states": st.lists(st.lists(crack_state, min_size=6, max_size=6), min_size=4, max_size=4),
        "offsets": st.lists(
            st.tuples(st.floats(-0.025, 0.025), st.floats(-0.025, 0.025)), min_size=4, max_size=4
        ),
        "rerun": st.sampled_from([None, 0, 1]),
    }
)


def _pieces(c0, c1, arc0, slope):
    """Cut a segment (chainage c0→c1 on an arc line) at every image border it crosses."""
    borders = [b * IMAGE_M for b in range(1, 6) if c0 < b * IMAGE_M < c1]
    stops = [c0, *borders, c1]
    return [
        ((a, arc0 + slope * (a - c0)), (b, arc0 + slope * (b - c0)))
        for a, b in zip(stops, stops[1:], strict=False)
        if b - a > 0.01
    ]


def _build(history):
    tunnel = Tunnel.objects.create(
        code=f"T-PROP-{next(_codes)}", name="prop", length_m=12, circumference_m=5
    )
    runs, truth = [], {}
    for r in range(history["runs"]):
        run = make_run(tunnel, (dt.date(2020, 1, 1) + dt.timedelta(days=300 * r)).isoformat())
        dx, dy = history["offsets"][r]
        images = [
            make_image(run, f"{k}.jpg", (k * IMAGE_M, (k + 1) * IMAGE_M), (0.0, 5.0), (2000, 5000))
            for k in range(6)
        ]
        index = defaultdict(int)
        for lane, (start, length, slope) in enumerate(history["cracks"]):
            state, grown, width = history["states"][r][lane]
            if state == "gone":
                continue
            arc0 = 0.4 + 0.75 * lane + dy
            c0, c1 = start + dx, start + dx + length * (grown if r else 1.0)
            c1 = min(c1, 11.9)
            parts = (
                [(c0, c1)]
                if state == "whole"
                else [(c0, (c0 + c1 - GAP_M) / 2), ((c0 + c1 + GAP_M) / 2, c1)]
            )
            for part, (a, b) in enumerate(parts):
                for p0, p1 in _pieces(a, b, arc0 + slope * (a - c0), slope):
                    image = images[min(int(p0[0] // IMAGE_M), 5)]
                    crack = make_crack(image, index[image.pk], p0, p1, width_mm=width)
                    index[image.pk] += 1
                    truth[crack.pk] = (run.pk, lane, part)
        runs.append(run)
    return runs, truth


def _partition(runs) -> set[frozenset]:
    groups = defaultdict(set)
    for pk, track in Crack.objects.filter(image__run__in=runs).values_list("pk", "track_id"):
        groups[track].add(pk)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=tunnel_history)
def test_tracking_never_raises_and_keeps_every_rule(history):
    runs, truth = _build(history)
    for run in runs:
        track_run(run)
    if history["rerun"] is not None:
        track_from(runs[history["rerun"]])  # a re-run re-tracks the later inspections too
    before = _partition(runs)
    track_run(runs[-1])  # idempotent
    assert _partition(runs) == before

    cracks = list(Crack.objects.filter(image__run__in=runs).select_related("image__run"))
    # every crack belongs to exactly one track
    assert all(c.track_id is not None for c in cracks)
    # in the latest inspection a track holds the pieces of one crack only (border-cut pieces
    # of one part); earlier inspections may hold more after two tracks were joined
    latest = defaultdict(set)
    for c in cracks:
        if c.image.run_id == runs[-1].pk:
            latest[c.track_id].add(truth[c.pk][1:])
    assert all(len(parts) == 1 for parts in latest.values()), latest
    # growth figures equal those computed by hand from the rows
    for track in CrackTrack.objects.filter(tunnel=runs[0].tunnel):
        per_run = defaultdict(lambda: [0.0, 0.0])
        for c in cracks:
            if c.track_id == track.pk:
                per_run[c.image.run.date][0] += c.length_mm
                per_run[c.image.run.date][1] = max(per_run[c.image.run.date][1], c.width_max_mm)
        dates = sorted(per_run)
        assert [h["length_mm"] for h in track.history] == pytest.approx(
            [per_run[d][0] for d in dates], abs=1e-2
        )
        if len(dates) > 1:
            years = (dates[-1] - dates[0]).days / 365.25
            expected = (per_run[dates[-1]][0] - per_run[dates[0]][0]) / years
            assert track.length_growth_mm_per_year == pytest.approx(expected, abs=0.1)
        else:
            assert track.length_growth_mm_per_year is None


@pytest.mark.django_db
def test_a_crack_spanning_two_old_tracks_joins_them_without_a_crash(tunnel):
    """The defect that stopped tracking: two old tracks joined, then a later crack matched one."""
    first = make_run(tunnel, "2024-05-01")
    image = make_image(first, "a.jpg", (0.0, 4.0), (0.0, 5.0), (4000, 5000))
    make_crack(image, 0, (0.5, 1.0), (1.5, 1.0))
    make_crack(image, 1, (1.7, 1.0), (2.7, 1.0))
    track_run(first)
    second = make_run(tunnel, "2025-05-01")
    image = make_image(second, "a.jpg", (0.0, 4.0), (0.0, 5.0), (4000, 5000))
    make_crack(image, 0, (0.5, 1.0), (2.7, 1.0))  # spans both old tracks
    make_crack(image, 1, (1.6, 1.02), (2.6, 1.02))  # and a second crack near the joined one
    result = track_run(second)
    assert result.joined == 1
    assert Crack.objects.filter(track__isnull=True).count() == 0
