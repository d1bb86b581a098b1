from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from crackportal.assets.models import TunnelScopedQuerySet


class RunQuerySet(TunnelScopedQuerySet):
    tunnel_path = "tunnel"


class ImageQuerySet(TunnelScopedQuerySet):
    tunnel_path = "run__tunnel"


class TrackQuerySet(TunnelScopedQuerySet):
    tunnel_path = "tunnel"


class CrackQuerySet(TunnelScopedQuerySet):
    tunnel_path = "image__run__tunnel"

    def counted(self):
        """The cracks every figure counts: all but those a reviewer rejected."""
        return self.exclude(review=Crack.Review.REJECTED)


class InspectionRun(models.Model):
    """One inspection of a tunnel: a survey of images taken on one date."""

    class Status(models.TextChoices):
        UPLOADING = "uploading"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"  # finished, but every image failed

    tunnel = models.ForeignKey("assets.Tunnel", on_delete=models.PROTECT, related_name="runs")
    date = models.DateField()
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    model_version = models.ForeignKey(
        "modelops.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    tracked_at = models.DateTimeField(
        null=True, blank=True, help_text="When its cracks were last matched to earlier inspections"
    )
    tracking_error = models.TextField(blank=True, help_text="Why the last tracking failed")
    requested_model = models.ForeignKey(
        "modelops.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Segment with this model rather than the active one (a reprocess asked for it)",
    )

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "-created_at"]

    def __str__(self) -> str:
        return f"{self.tunnel.code} {self.date} {self.label}".strip()

    def get_absolute_url(self) -> str:
        return reverse("run-detail", args=[self.pk])


class SurveyImage(models.Model):
    """A survey photo, its footprint on the unrolled lining, and its processing state."""

    class Status(models.TextChoices):
        PENDING = "pending"
        QUEUED = "queued"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(InspectionRun, on_delete=models.CASCADE, related_name="images")
    original_name = models.CharField(max_length=255)
    file = models.FileField(upload_to="originals/%Y/%m/", max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size_bytes = models.BigIntegerField(default=0)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    chainage_start_m = models.FloatField(null=True, blank=True)
    chainage_end_m = models.FloatField(null=True, blank=True)
    arc_start_m = models.FloatField(null=True, blank=True)
    arc_end_m = models.FloatField(null=True, blank=True)
    mm_per_px = models.FloatField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    stage_seconds = models.JSONField(
        default=dict,
        blank=True,
        help_text="Seconds per processing stage of the last run: prepare (the model), decode, "
        "predict, geometry, pyramid, encode (mask, overlay, probability PNGs stored), "
        "database, total",
    )
    worker = models.CharField(
        max_length=200, blank=True, help_text="The Celery worker that claimed it last (host name)"
    )
    mask = models.FileField(upload_to="masks/%Y/%m/", max_length=500, blank=True)
    overlay = models.FileField(upload_to="overlays/%Y/%m/", max_length=500, blank=True)
    overlay_annotation = models.ForeignKey(
        "Annotation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The verified mask the overlay (and the cracks) were drawn from; empty: the "
        "model's prediction",
    )
    probability = models.FileField(
        upload_to="probability/%Y/%m/",
        max_length=500,
        blank=True,
        help_text="The network's crack probability, 8-bit PNG (p × 255): re-measuring needs no network",
    )
    model_version = models.ForeignKey(
        "modelops.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            # the same bytes uploaded twice into one run are recognised, not stored twice
            models.UniqueConstraint(
                fields=["run", "sha256"], condition=~models.Q(sha256=""), name="unique_file_per_run"
            )
        ]

    def __str__(self) -> str:
        return self.original_name

    def get_absolute_url(self) -> str:
        return reverse("image-detail", args=[self.pk])

    @property
    def pyramid_prefix(self) -> str:
        """The stored folder of the image's deep-zoom tiles (only large images have them)."""
        return f"pyramids/{self.pk}"

    @property
    def overlay_stamp(self) -> str:
        """Changes whenever the overlay does (a new prediction or verified mask): part of its
        URLs, so a browser never shows tiles it kept from before."""
        processed = int(self.processed_at.timestamp()) if self.processed_at else 0
        return f"{processed}-{self.overlay_annotation_id or 0}"

    def has_pyramid(self) -> bool:
        from django.core.files.storage import default_storage

        return default_storage.exists(f"{self.pyramid_prefix}/photo.dzi")

    def place(self, polyline_px, bbox_px) -> dict:
        """A crack's position in tunnel metres from its pixels: polyline_m and its extent."""
        polyline_m = [
            [[round(v, 4) for v in self.px_to_m(x, y)] for x, y in branch] for branch in polyline_px
        ]
        x0, y0, x1, y1 = bbox_px
        (c0, a0), (c1, a1) = self.px_to_m(x0, y0), self.px_to_m(x1, y1)
        return {
            "polyline_m": polyline_m,
            "chainage_min_m": min(c0, c1),
            "chainage_max_m": max(c0, c1),
            "arc_min_m": min(a0, a1),
            "arc_max_m": max(a0, a1),
        }

    def px_to_m(self, x: float, y: float) -> tuple[float, float]:
        """Image pixel (x right, y down) → tunnel (chainage m, arc m) by the linear footprint."""
        cx = self.chainage_start_m + (self.chainage_end_m - self.chainage_start_m) * x / self.width
        cy = self.arc_start_m + (self.arc_end_m - self.arc_start_m) * y / self.height
        return cx, cy

    def m_to_px(self, chainage_m: float, arc_m: float) -> tuple[float, float]:
        """Image pixel (x, y) of a point of the lining: px_to_m turned round."""
        x = (chainage_m - self.chainage_start_m) / (self.chainage_end_m - self.chainage_start_m)
        y = (arc_m - self.arc_start_m) / (self.arc_end_m - self.arc_start_m)
        return x * self.width, y * self.height


class UploadArchive(models.Model):
    """A large zip of one upload, stored as sent and unpacked by a worker, with its progress.

    A big survey never depends on one request's time: the request only stores the archive.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(InspectionRun, on_delete=models.CASCADE, related_name="archives")
    name = models.CharField(max_length=255)
    file = models.FileField(upload_to="uploads/%Y/%m/", max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    manifest_csv = models.TextField(blank=True, help_text="The upload's own manifest, if any")
    start_chainage_m = models.FloatField(null=True, blank=True)
    direction = models.CharField(max_length=20, default="increasing")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    members = models.PositiveIntegerField(default=0)
    done_members = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return self.name


class CrackTrack(models.Model):
    """One physical crack followed across inspections of a tunnel."""

    tunnel = models.ForeignKey("assets.Tunnel", on_delete=models.CASCADE, related_name="tracks")
    first_run = models.ForeignKey(
        InspectionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_seen = models.DateField(null=True, blank=True)
    last_seen = models.DateField(null=True, blank=True)
    length_mm = models.FloatField(default=0.0, help_text="When last seen")
    width_max_mm = models.FloatField(default=0.0, help_text="When last seen")
    length_growth_mm_per_year = models.FloatField(null=True, blank=True)
    width_growth_mm_per_year = models.FloatField(null=True, blank=True)
    history = models.JSONField(
        default=list, blank=True, help_text="Per inspection: run, date, length_mm, width_max_mm"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TrackQuerySet.as_manager()

    def __str__(self) -> str:
        return self.label

    def get_absolute_url(self) -> str:
        latest = self.cracks.order_by("-image__run__date").first()
        return latest.get_absolute_url() if latest else ""

    @property
    def label(self) -> str:
        """The crack's stable name across inspections, in pages and reports: T-0042."""
        from crackportal.inspections.stationing import track_label

        return track_label(self.pk)


class Crack(models.Model):
    """A crack found on one survey image, with its geometry in pixels and tunnel metres."""

    class Review(models.TextChoices):
        UNREVIEWED = "", "not reviewed"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    class RejectReason(models.TextChoices):
        NONE = "", "—"
        JOINT = "joint", "segment or construction joint"
        FORMWORK = "formwork", "formwork line"
        EDGE = "edge", "edge of the lining or image"
        STAIN = "stain", "stain or moisture"
        CABLE = "cable", "cable or fixture"
        OTHER = "other", "other"

    class Orientation(models.TextChoices):
        LONGITUDINAL = "longitudinal"
        TRANSVERSE = "transverse"
        DIAGONAL = "diagonal"
        NETWORK = "network"

    image = models.ForeignKey(SurveyImage, on_delete=models.CASCADE, related_name="cracks")
    index = models.PositiveIntegerField(help_text="Order within the image, longest first")
    polyline_px = models.JSONField(help_text="Branches, each a list of [x, y] image pixels")
    polyline_m = models.JSONField(help_text="Branches, each a list of [chainage m, arc m]")
    bbox_px = models.JSONField()
    # extent on the unrolled lining, for map windows and chainage filters
    chainage_min_m = models.FloatField(default=0.0, db_index=True)
    chainage_max_m = models.FloatField(default=0.0)
    arc_min_m = models.FloatField(default=0.0)
    arc_max_m = models.FloatField(default=0.0)
    length_mm = models.FloatField()
    width_max_mm = models.FloatField()
    width_mean_mm = models.FloatField()
    width_p95_mm = models.FloatField()
    resolution_mm = models.FloatField(
        default=0.0, help_text="One pixel in mm: a narrower width is below what the image resolves"
    )
    area_mm2 = models.FloatField()
    orientation = models.CharField(max_length=20, choices=Orientation.choices)
    severity = models.CharField(max_length=20, blank=True)
    track = models.ForeignKey(
        CrackTrack, null=True, blank=True, on_delete=models.SET_NULL, related_name="cracks"
    )
    model_version = models.ForeignKey(
        "modelops.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # the latest review (its history: CrackReview); rejected cracks leave map, tracks, reports
    review = models.CharField(max_length=20, choices=Review.choices, blank=True, db_index=True)
    review_reason = models.CharField(max_length=20, choices=RejectReason.choices, blank=True)

    objects = CrackQuerySet.as_manager()

    # measurements in mm and the power of mm/px each scales with (a rescaled image's cracks)
    SCALES_WITH_MM_PER_PX = {
        "length_mm": 1,
        "width_max_mm": 1,
        "width_mean_mm": 1,
        "width_p95_mm": 1,
        "resolution_mm": 1,
        "area_mm2": 2,
    }

    class Meta:
        ordering = ["image", "index"]
        constraints = [
            models.UniqueConstraint(fields=["image", "index"], name="unique_crack_index")
        ]

    def __str__(self) -> str:
        return f"crack {self.index + 1} on {self.image}"

    def get_absolute_url(self) -> str:
        return reverse("crack-detail", args=[self.pk])

    @property
    def width_below_resolution(self) -> bool:
        return self.width_max_mm < self.resolution_mm

    @property
    def width_max_label(self) -> str:
        """The max width as a person should read it: "< 0.50 mm (< 1 px)" when unresolved."""
        if self.width_below_resolution:
            return f"< {self.resolution_mm:.2f} mm (< 1 px)"
        return f"{self.width_max_mm:.2f} mm"


class Annotation(models.Model):
    """A verified ground-truth crack mask for a survey image; retraining learns from these."""

    class Source(models.TextChoices):
        UPLOADED = "uploaded", "uploaded mask"
        CONFIRMED = "confirmed_prediction", "confirmed prediction"
        CORRECTED = "corrected", "corrected in the browser"

    image = models.ForeignKey(SurveyImage, on_delete=models.CASCADE, related_name="annotations")
    mask = models.FileField(upload_to="annotations/%Y/%m/", max_length=500)
    source = models.CharField(max_length=30, choices=Source.choices)
    crack_pixels = models.PositiveIntegerField(default=0)
    # versions of an image's verified mask: 1, 2, ...; the newest is the current one, which
    # training and the image's cracks use; older ones stay viewable
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["image"], condition=Q(is_current=True), name="one_current_annotation"
            ),
            models.UniqueConstraint(fields=["image", "version"], name="annotation_version"),
        ]

    def __str__(self) -> str:
        return f"annotation v{self.version} of {self.image} ({self.source})"


class CrackReview(models.Model):
    """One reviewer's decision on a detected crack: the history behind Crack.review."""

    class Action(models.TextChoices):
        DECISION = "decision", "accepted or rejected"
        RECLASS = "reclass", "re-classed"
        MERGE = "merge", "merged"
        SPLIT = "split", "split"

    crack = models.ForeignKey(Crack, on_delete=models.CASCADE, related_name="reviews")
    action = models.CharField(max_length=20, choices=Action.choices, default=Action.DECISION)
    decision = models.CharField(max_length=20, choices=Crack.Review.choices, blank=True)
    reason = models.CharField(max_length=20, choices=Crack.RejectReason.choices, blank=True)
    detail = models.JSONField(
        default=dict, blank=True, help_text="What a re-class, merge or split changed"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.decision} {self.crack} by {self.reviewer}"


class Reprocessing(models.Model):
    """An inspection segmented again with a chosen model: what it was before, for comparison."""

    run = models.ForeignKey(InspectionRun, on_delete=models.CASCADE, related_name="reprocessings")
    version = models.ForeignKey(
        "modelops.ModelVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_version = models.ForeignKey(
        "modelops.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField(default=dict, help_text="The run's summary before it was reprocessed")
    reviews_discarded = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.run} reprocessed with {self.version}"
