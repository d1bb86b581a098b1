"""Match the cracks of finished inspections to earlier ones (normally done by the worker)."""

from django.core.management.base import BaseCommand, CommandError

from crackportal.inspections.models import InspectionRun
from crackportal.inspections.tracking import track_run


class Command(BaseCommand):
    help = "Re-run crack tracking for one run, or every finished run of a tunnel, oldest first."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, help="inspection run id")
        parser.add_argument("--tunnel", help="tunnel code: all its finished runs, oldest first")
        parser.add_argument("--tolerance-mm", type=float, help="default: TRACK_TOLERANCE_MM")

    def handle(self, *args, run=None, tunnel=None, tolerance_mm=None, **options):
        if (run is None) == (tunnel is None):
            raise CommandError("give exactly one of --run ID or --tunnel CODE")
        runs = InspectionRun.objects.filter(status=InspectionRun.Status.DONE)
        runs = runs.filter(pk=run) if run is not None else runs.filter(tunnel__code=tunnel)
        runs = list(runs.order_by("date", "created_at"))
        if not runs:
            raise CommandError("no finished inspection run matches")
        for r in runs:
            result = track_run(r, tolerance_mm=tolerance_mm)
            self.stdout.write(
                f"{r}: {result.cracks} cracks, {result.stitched} stitched across borders, "
                f"{result.matched} continue a track, {result.new} new, {result.joined} tracks joined"
            )
