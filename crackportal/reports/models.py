from django.conf import settings
from django.db import models
from django.urls import reverse

from crackportal.assets.models import TunnelScopedQuerySet


class ReportQuerySet(TunnelScopedQuerySet):
    tunnel_path = "run__tunnel"


class Report(models.Model):
    """A maintenance report of one inspection, built by a worker; the page polls this row."""

    class Kind(models.TextChoices):
        PDF = "pdf", "PDF report"
        XLSX = "xlsx", "Excel workbook"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(
        "inspections.InspectionRun", on_delete=models.CASCADE, related_name="reports"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    file = models.FileField(upload_to="reports/%Y/%m/", max_length=500, blank=True)
    # the PDF's HTML as built, so approval stamps exactly what was reviewed (no new figures)
    source = models.FileField(upload_to="reports/%Y/%m/", max_length=500, blank=True)
    version = models.PositiveIntegerField(
        default=1,
        help_text="1, 2, … per inspection and kind: a change to an approved report is a new version",
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approved_reports",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.run}"

    def get_absolute_url(self) -> str:
        return reverse("report-download", args=[self.pk])

    @property
    def filename(self) -> str:
        run = self.run
        approved = "-approved" if self.approved_at else ""
        return (
            f"{run.tunnel.code}-{run.date.isoformat()}-cracks-v{self.version}{approved}.{self.kind}"
        )

    @property
    def locked(self) -> bool:
        """An approved report never changes: a change needs a new version."""
        return self.approved_at is not None
