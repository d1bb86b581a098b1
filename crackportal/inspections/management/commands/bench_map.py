"""Benchmark the crack map's data request on a tunnel with many cracks.

    python manage.py bench_map [--cracks 5000] [--repeat 20]

Creates a temporary tunnel with one inspection of --cracks cracks (in the configured
database), times the map-data view in-process (server time, no network), prints p50 / p95
and the payload size, then deletes everything it created. Target: p95 under 300 ms.
"""

import random
import statistics
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test import RequestFactory

from crackportal.assets.models import Tunnel
from crackportal.inspections.models import Crack, InspectionRun, SurveyImage
from crackportal.inspections.severity import severity_for_width
from crackportal.inspections.views import tunnel_map_data, tunnel_map_rings

CODE = "BENCH-MAP"


def _populate(n_cracks: int) -> InspectionRun:
    rng = random.Random(0)
    tunnel = Tunnel.objects.create(
        code=CODE,
        name="Map benchmark",
        length_m=2000,
        circumference_m=15,
        ring_length_m=1.5,  # the map data then carries every ring's condition too
        segments_per_ring=6,
    )
    run = InspectionRun.objects.create(tunnel=tunnel, date="2026-01-01", status="done")
    images = SurveyImage.objects.bulk_create(
        SurveyImage(
            run=run,
            original_name=f"{i:05d}.jpg",
            status="done",
            width=4000,
            height=3000,
            chainage_start_m=i * 2.0,
            chainage_end_m=i * 2.0 + 2.0,
            arc_start_m=(i % 10) * 1.5,
            arc_end_m=(i % 10) * 1.5 + 1.5,
            mm_per_px=0.5,
        )
        for i in range(max(1, n_cracks // 5))
    )
    cracks = []
    for k in range(n_cracks):
        image = images[k % len(images)]
        c, a = image.chainage_start_m + rng.random() * 1.6, image.arc_start_m + rng.random() * 1.2
        points = [
            [round(c + j * 0.03, 4), round(a + rng.uniform(-0.01, 0.01), 4)] for j in range(12)
        ]
        width = rng.lognormvariate(-1, 0.8)
        cracks.append(
            Crack(
                image=image,
                index=k // len(images),
                polyline_px=[[[0, 0], [1, 1]]],
                polyline_m=[points],
                bbox_px=[0, 0, 1, 1],
                chainage_min_m=points[0][0],
                chainage_max_m=points[-1][0],
                arc_min_m=a - 0.01,
                arc_max_m=a + 0.01,
                length_mm=330.0,
                width_max_mm=width,
                width_mean_mm=width * 0.8,
                width_p95_mm=width * 0.95,
                area_mm2=100.0,
                orientation=rng.choice(Crack.Orientation.values),
                severity=severity_for_width(width),
            )
        )
    Crack.objects.bulk_create(cracks, batch_size=1000)
    return run


def _cleanup() -> None:
    for tunnel in Tunnel.objects.filter(code=CODE):
        Crack.objects.filter(image__run__tunnel=tunnel).delete()
        SurveyImage.objects.filter(run__tunnel=tunnel).delete()
        tunnel.runs.all().delete()
        tunnel.delete()


class Command(BaseCommand):
    help = "Time the crack-map data request on a temporary tunnel with many cracks."

    def add_arguments(self, parser):
        parser.add_argument("--cracks", type=int, default=5000)
        parser.add_argument("--repeat", type=int, default=20)

    def handle(self, *args, cracks, repeat, **options):
        _cleanup()
        with transaction.atomic():
            run = _populate(cracks)
        user = get_user_model().objects.filter(
            is_superuser=True
        ).first() or get_user_model().objects.create_superuser("bench-map-admin", password=None)
        try:
            for label, view, path, target in (
                ("map data", tunnel_map_data, "map.json", 300),
                (
                    "ring condition (its own request, after the cracks)",
                    tunnel_map_rings,
                    "rings.json",
                    None,
                ),
            ):
                request = RequestFactory().get(f"/tunnels/{CODE}/{path}", {"run": run.pk})
                request.user = user
                timings, size = [], 0
                for _ in range(repeat + 1):
                    started = time.perf_counter()
                    response = view(request, CODE)
                    timings.append((time.perf_counter() - started) * 1000)
                    size = len(response.content)
                timings = sorted(timings[1:])  # the first request warms caches
                p95 = timings[min(len(timings) - 1, int(0.95 * len(timings)))]
                verdict = (
                    f" ({'meets' if p95 < target else 'MISSES'} the {target} ms target)"
                    if target
                    else ""
                )
                self.stdout.write(
                    f"{label} for {cracks} cracks: p50 {statistics.median(timings):.0f} ms, "
                    f"p95 {p95:.0f} ms, max {timings[-1]:.0f} ms, payload {size / 1e6:.2f} MB"
                    f"{verdict}"
                )
        finally:
            _cleanup()
            get_user_model().objects.filter(username="bench-map-admin").delete()
