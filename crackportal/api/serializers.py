"""API representations; units are in the field names (mm, m, px)."""

from rest_framework import serializers

from crackportal.assets.models import Tunnel
from crackportal.inspections.models import Crack, CrackTrack, InspectionRun, SurveyImage
from crackportal.modelops.models import ModelVersion, TrainingRun
from crackportal.reports.models import Report


class TunnelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tunnel
        fields = ["id", *Tunnel.EDITABLE, "created_at"]
        read_only_fields = ["id", "created_at"]


class VisibleTunnelField(serializers.SlugRelatedField):
    """A tunnel code among the tunnels the user may see: an unassigned tunnel reads exactly as a
    missing one, so codes cannot be discovered by asking."""

    def get_queryset(self):
        request = self.context.get("request")
        return Tunnel.objects.visible_to(request.user) if request else Tunnel.objects.none()


class RunSerializer(serializers.ModelSerializer):
    tunnel = VisibleTunnelField(slug_field="code", queryset=Tunnel.objects.all())
    model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = InspectionRun
        fields = [
            "id",
            "tunnel",
            "date",
            "label",
            "status",
            "model_version",
            "created_at",
            "finished_at",
        ]
        read_only_fields = ["id", "status", "model_version", "created_at", "finished_at"]


class ImageSerializer(serializers.ModelSerializer):
    n_cracks = serializers.IntegerField(
        read_only=True, help_text="cracks on the image; detections a reviewer rejected left out"
    )

    class Meta:
        model = SurveyImage
        fields = [
            "id",
            "run",
            "original_name",
            "sha256",
            "size_bytes",
            "width",
            "height",
            "chainage_start_m",
            "chainage_end_m",
            "arc_start_m",
            "arc_end_m",
            "mm_per_px",
            "status",
            "error",
            "attempts",
            "n_cracks",
            "stage_seconds",
            "created_at",
            "processed_at",
        ]
        read_only_fields = fields


class CrackSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="image.run_id", read_only=True)
    width_below_resolution = serializers.BooleanField(read_only=True)

    class Meta:
        model = Crack
        fields = [
            "id",
            "run",
            "image",
            "index",
            "track",
            "polyline_px",
            "polyline_m",
            "bbox_px",
            "chainage_min_m",
            "chainage_max_m",
            "arc_min_m",
            "arc_max_m",
            "length_mm",
            "width_max_mm",
            "width_mean_mm",
            "width_p95_mm",
            "resolution_mm",
            "width_below_resolution",
            "area_mm2",
            "orientation",
            "severity",
            "review",
            "review_reason",
            "created_at",
        ]
        read_only_fields = fields


class TrackSerializer(serializers.ModelSerializer):
    class Meta:
        model = CrackTrack
        fields = [
            "id",
            "tunnel",
            "first_run",
            "first_seen",
            "last_seen",
            "length_mm",
            "width_max_mm",
            "length_growth_mm_per_year",
            "width_growth_mm_per_year",
            "history",
        ]
        read_only_fields = fields


class ReportSerializer(serializers.ModelSerializer):
    download = serializers.SerializerMethodField()
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    locked = serializers.BooleanField(read_only=True)

    class Meta:
        model = Report
        fields = [
            "id",
            "run",
            "kind",
            "version",
            "status",
            "progress",
            "message",
            "error",
            "download",
            "created_at",
            "finished_at",
            "approved_by",
            "approved_at",
            "locked",
        ]
        read_only_fields = [
            "id",
            "version",
            "approved_at",
            "status",
            "progress",
            "message",
            "error",
            "download",
            "created_at",
            "finished_at",
        ]

    def get_download(self, report) -> str | None:
        if report.status != Report.Status.DONE:
            return None
        request = self.context.get("request")
        url = f"/api/reports/{report.pk}/download/"
        return request.build_absolute_uri(url) if request else url


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "architecture",
            "encoder",
            "metrics",
            "is_active",
            "created_at",
            "activated_at",
        ]
        read_only_fields = fields


class TrainingRunSerializer(serializers.ModelSerializer):
    result = serializers.SlugRelatedField(slug_field="name", read_only=True)
    percent = serializers.SerializerMethodField()

    def get_percent(self, run) -> int:
        """Share of the epochs done, counting the steps of the epoch under way; for a timed run
        (an adaptation), the share of its time budget spent."""
        if run.minutes:
            if run.status == "done":
                return 100
            return min(100, round(100 * (run.live or {}).get("seconds", 0) / (run.minutes * 60)))
        if not run.epochs:
            return 0
        done = float(run.epoch)
        live = run.live or {}
        if run.status == "running" and live.get("epoch") == run.epoch + 1 and live.get("steps"):
            done += live.get("step", 0) / live["steps"]
        return min(100, round(100 * done / run.epochs))

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "config_name",
            "dataset",
            "include_annotations",
            "status",
            "epoch",
            "epochs",
            "percent",
            "kind",
            "live",
            "init_from_active",
            "minutes",
            "held_back",
            "comparison",
            "history",
            "log_tail",
            "error",
            "result",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingRequestSerializer(serializers.Serializer):
    config_name = serializers.CharField()
    dataset = serializers.CharField(required=False, allow_blank=True, default="")
    include_annotations = serializers.BooleanField(default=False)
    epochs = serializers.IntegerField(required=False, min_value=1, max_value=500)
    init_from_active = serializers.BooleanField(
        default=False, help_text="fine-tune the active model (same network as the config)"
    )


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    manifest = serializers.FileField(required=False)
    start_chainage_m = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=1_000_000
    )
    direction = serializers.ChoiceField(
        choices=["increasing", "decreasing"], required=False, default="increasing"
    )


class UploadResultSerializer(serializers.Serializer):
    accepted = serializers.ListField(child=serializers.CharField())
    failed = serializers.ListField(child=serializers.DictField())
    duplicates = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    unplaced = serializers.ListField(child=serializers.CharField())
    unused_manifest_rows = serializers.ListField(child=serializers.CharField())
    unpacking = serializers.ListField(
        child=serializers.CharField(), help_text="big zips a worker unpacks (see the run page)"
    )


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Report.Kind.choices)
