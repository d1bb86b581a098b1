"""Measure stored cracks again with the current geometry code (no network, no re-segmentation)."""

from django.core.management.base import BaseCommand, CommandError

from crackportal.inspections import processing
from crackportal.inspections.models import InspectionRun, SurveyImage
from crackportal.inspections.tracking import track_run


class Command(BaseCommand):
    help = (
        "Re-measure the cracks of finished images from their stored mask, probability map and "
        "photo (images from before probability maps were stored are measured on the mask), "
        "then track the tunnel's inspections again, oldest first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, help="inspection run id")
        parser.add_argument("--tunnel", help="tunnel code: every finished run of it")
        parser.add_argument("--all", action="store_true", help="every finished run")

    def handle(self, *args, run=None, tunnel=None, all=False, **options):
        if sum(x is not None and x is not False for x in (run, tunnel, all or None)) != 1:
            raise CommandError("give exactly one of --run ID, --tunnel CODE or --all")
        runs = InspectionRun.objects.filter(status=InspectionRun.Status.DONE)
        if run is not None:
            runs = runs.filter(pk=run)
        elif tunnel is not None:
            runs = runs.filter(tunnel__code=tunnel)
        runs = list(runs.select_related("tunnel"))
        if not runs:
            raise CommandError("no finished inspection run matches")
        images = SurveyImage.objects.filter(run__in=runs, status=SurveyImage.Status.DONE)
        total, cracks, failed = images.count(), 0, 0
        for n, image_id in enumerate(images.order_by("id").values_list("pk", flat=True), 1):
            try:
                cracks += processing.remeasure_image(image_id=image_id)
            except (processing.ImageProcessingError, OSError) as exc:
                failed += 1
                self.stderr.write(f"image {image_id}: {exc}")
            if n % 25 == 0 or n == total:
                self.stdout.write(f"  {n}/{total} images re-measured")
        # re-measuring replaced the crack rows: match every inspection of those tunnels again
        tunnels = {r.tunnel_id for r in runs}
        again = InspectionRun.objects.filter(
            tunnel_id__in=tunnels, status=InspectionRun.Status.DONE
        ).order_by("date", "created_at")
        for r in again:
            track_run(r)
        self.stdout.write(
            f"{total - failed} image(s) re-measured, {cracks} crack(s); {failed} failed; "
            f"{again.count()} inspection(s) tracked again"
        )
