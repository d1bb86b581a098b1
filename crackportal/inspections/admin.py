from django.contrib import admin

from crackportal.inspections.models import Crack, CrackTrack, InspectionRun, SurveyImage


@admin.register(InspectionRun)
class InspectionRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "tunnel",
        "date",
        "label",
        "status",
        "model_version",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "tunnel"]
    search_fields = ["label", "tunnel__code"]


@admin.register(SurveyImage)
class SurveyImageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "original_name",
        "run",
        "status",
        "attempts",
        "width",
        "height",
        "mm_per_px",
    ]
    list_filter = ["status"]
    search_fields = ["original_name", "sha256"]
    readonly_fields = ["sha256", "created_at", "started_at", "processed_at"]


@admin.register(Crack)
class CrackAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "image",
        "index",
        "length_mm",
        "width_max_mm",
        "orientation",
        "severity",
        "track",
    ]
    list_filter = ["orientation", "severity"]
    raw_id_fields = ["image", "track"]


@admin.register(CrackTrack)
class CrackTrackAdmin(admin.ModelAdmin):
    list_display = ["id", "tunnel", "created_at"]
