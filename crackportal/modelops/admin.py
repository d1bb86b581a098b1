from django.contrib import admin

from crackportal.modelops.models import ModelVersion, TrainingRun


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "architecture", "encoder", "is_active", "created_at"]
    list_filter = ["is_active", "architecture"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "config_name", "status", "epoch", "epochs", "created_by", "created_at"]
    list_filter = ["status"]
