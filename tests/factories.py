"""Row factories for portal tests: runs, images with footprints, cracks with known geometry."""

from __future__ import annotations

import datetime as dt

from crackportal.inspections.models import Crack, CrackTrack, InspectionRun, SurveyImage
from crackportal.inspections.severity import severity_for_width


def make_run(tunnel, date="2026-05-01", label="") -> InspectionRun:
    return InspectionRun.objects.create(
        tunnel=tunnel, date=dt.date.fromisoformat(date), label=label, status="done"
    )


def make_image(
    run, name="img.jpg", chainage_m=(0.0, 1.0), arc_m=(0.0, 0.5), size=(2000, 1000)
) -> SurveyImage:
    width, height = size
    return SurveyImage.objects.create(
        run=run,
        original_name=name,
        status="done",
        width=width,
        height=height,
        chainage_start_m=chainage_m[0],
        chainage_end_m=chainage_m[1],
        arc_start_m=arc_m[0],
        arc_end_m=arc_m[1],
        mm_per_px=(chainage_m[1] - chainage_m[0]) * 1000 / width,
    )


def make_crack(
    image,
    index=0,
    start_m=(0.2, 0.1),
    end_m=(0.6, 0.1),
    width_mm=0.4,
    orientation="longitudinal",
    track: CrackTrack | None = None,
) -> Crack:
    """A straight crack from start to end (chainage m, arc m) on image."""
    (c0, a0), (c1, a1) = start_m, end_m
    length_mm = ((c1 - c0) ** 2 + (a1 - a0) ** 2) ** 0.5 * 1000

    def to_px(c, a):
        return [
            (c - image.chainage_start_m) * 1000 / image.mm_per_px,
            (a - image.arc_start_m) * 1000 / image.mm_per_px,
        ]

    return Crack.objects.create(
        image=image,
        index=index,
        polyline_px=[[to_px(c0, a0), to_px(c1, a1)]],
        polyline_m=[[[c0, a0], [c1, a1]]],
        bbox_px=[0, 0, 1, 1],
        chainage_min_m=min(c0, c1),
        chainage_max_m=max(c0, c1),
        arc_min_m=min(a0, a1),
        arc_max_m=max(a0, a1),
        length_mm=length_mm,
        width_max_mm=width_mm,
        width_mean_mm=width_mm * 0.8,
        width_p95_mm=width_mm * 0.95,
        area_mm2=length_mm * width_mm * 0.8,
        orientation=orientation,
        severity=severity_for_width(width_mm),
        track=track,
    )
