"""Row factories for portal tests: runs, images with footprints, cracks with known geometry."""

from __future__ import annotations

import datetime as dt

from django.core.files.base import ContentFile

from crackportal.inspections.models import (
    Annotation,
    Crack,
    CrackTrack,
    InspectionRun,
    SurveyImage,
)
from crackportal.inspections.severity import severity_for_width
from crackportal.inspections.tracking import track_run
from crackportal.modelops.models import ModelVersion, TrainingRun
from crackportal.reports import services as reports


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


def make_page_objects(tunnel, manager, jpeg: bytes) -> dict:
    """One of every row a page shows (run, image with files, crack, track, report, model, training run); ids by name."""
    run = make_run(tunnel)
    image = make_image(run, size=(480, 320))
    image.file.save("o.jpg", ContentFile(jpeg), save=False)
    image.mask.save("m.png", ContentFile(b""), save=False)
    image.overlay.save("v.png", ContentFile(b""), save=False)
    image.save()
    crack = make_crack(image)
    annotation = Annotation.objects.create(image=image, source="uploaded", crack_pixels=0)
    annotation.mask.save("a.png", ContentFile(b"png"), save=True)
    track_run(run)
    report = reports.request_report(run=run, kind="xlsx", user=manager)
    reports.build_report(report_id=report.pk)
    version = ModelVersion.objects.create(
        name="v-matrix", path="/nowhere", architecture="Unet", encoder="x"
    )
    training = TrainingRun.objects.create(config_name="unet-tiny", status="done")
    return {
        "code": tunnel.code,
        "run": run.pk,
        "image": image.pk,
        "crack": crack.pk,
        "annotation": annotation.pk,
        "report": report.pk,
        "version": version.pk,
        "training": training.pk,
    }


def page_cases(o) -> list[tuple]:
    """(url name, method, path, least role, status for an allowed user)."""
    return [
        ("health", "get", "/health/", None, 200),
        ("login", "get", "/accounts/login/", None, 200),
        ("logout", "post", "/accounts/logout/", None, 302),
        ("tunnel-list", "get", "/", "inspector", 200),
        ("tunnel-create", "get", "/tunnels/new/", "manager", 200),
        ("tunnel-detail", "get", f"/tunnels/{o['code']}/", "inspector", 200),
        ("tunnel-edit", "get", f"/tunnels/{o['code']}/edit/", "manager", 200),
        ("tunnel-members", "post", f"/tunnels/{o['code']}/members/", "manager", 404),
        ("tunnel-map", "get", f"/tunnels/{o['code']}/map/", "inspector", 200),
        (
            "tunnel-map-data",
            "get",
            f"/tunnels/{o['code']}/map.json?run={o['run']}",
            "inspector",
            200,
        ),
        (
            "tunnel-map-rings",
            "get",
            f"/tunnels/{o['code']}/rings.json?run={o['run']}",
            "inspector",
            200,
        ),
        ("crack-detail", "get", f"/cracks/{o['crack']}/", "inspector", 200),
        ("crack-thumbnail", "get", f"/cracks/{o['crack']}/thumb.jpg", "inspector", 200),
        ("crack-review", "post", f"/cracks/{o['crack']}/review/", "inspector", 302),
        ("crack-split", "post", f"/cracks/{o['crack']}/split/", "inspector", 302),
        ("crack-reclass", "post", f"/cracks/{o['crack']}/reclass/", "inspector", 302),
        ("image-merge", "post", f"/images/{o['image']}/merge/", "inspector", 302),
        ("run-create", "get", f"/tunnels/{o['code']}/runs/new/", "inspector", 200),
        ("run-detail", "get", f"/runs/{o['run']}/", "inspector", 200),
        ("run-progress", "get", f"/runs/{o['run']}/progress.json", "inspector", 200),
        ("run-retry", "post", f"/runs/{o['run']}/retry/", "inspector", 302),
        ("run-track", "post", f"/runs/{o['run']}/track/", "inspector", 302),
        ("report-request", "post", f"/runs/{o['run']}/reports/", "manager", 302),
        ("run-export-csv", "get", f"/runs/{o['run']}/cracks.csv", "manager", 200),
        ("run-export-geojson", "get", f"/runs/{o['run']}/cracks.geojson", "manager", 200),
        ("run-export-dxf", "get", f"/runs/{o['run']}/cracks.dxf", "manager", 200),
        ("report-status", "get", f"/reports/{o['report']}/status.json", "manager", 200),
        ("report-download", "get", f"/reports/{o['report']}/download/", "manager", 200),
        # an XLSX report is not approved: allowed users are sent back with a message
        ("report-approve", "post", f"/reports/{o['report']}/approve/", "manager", 302),
        ("image-detail", "get", f"/images/{o['image']}/", "inspector", 200),
        ("image-original", "get", f"/images/{o['image']}/original", "inspector", 200),
        ("image-thumbnail", "get", f"/images/{o['image']}/thumb.jpg", "inspector", 200),
        ("image-overlay", "get", f"/images/{o['image']}/overlay.png", "inspector", 200),
        ("image-mask", "get", f"/images/{o['image']}/mask.png", "inspector", 200),
        # small images have no deep-zoom pyramid: allowed users get 404, the others 403
        ("image-dzi", "get", f"/images/{o['image']}/dz/photo.dzi", "inspector", 404),
        ("image-tile", "get", f"/images/{o['image']}/dz/photo_files/0/0_0.jpg", "inspector", 404),
        ("image-annotate", "post", f"/images/{o['image']}/annotate/", "inspector", 302),
        ("image-correct", "get", f"/images/{o['image']}/correct/", "inspector", 200),
        ("annotation-mask", "get", f"/annotations/{o['annotation']}/mask.png", "inspector", 200),
        ("image-footprint", "post", f"/images/{o['image']}/footprint/", "manager", 302),
        ("image-review", "post", f"/images/{o['image']}/review/", "inspector", 302),
        ("run-reprocess", "post", f"/runs/{o['run']}/reprocess/", "admin", 302),
        ("model-list", "get", "/models/", "admin", 200),
        ("model-activate", "get", f"/models/{o['version']}/activate/", "admin", 200),
        ("model-activate", "post", f"/models/{o['version']}/activate/", "admin", 302),
        ("training-list", "get", "/training/", "admin", 200),
        ("training-adapt", "post", "/training/adapt/", "admin", 302),
        ("training-detail", "get", f"/training/{o['training']}/", "admin", 200),
        ("training-status", "get", f"/training/{o['training']}/status.json", "admin", 200),
        ("training-cancel", "post", f"/training/{o['training']}/cancel/", "admin", 302),
        ("training-retry", "post", f"/training/{o['training']}/retry/", "admin", 302),
    ]
