from django.contrib import admin

from crackportal.reports.models import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "kind", "status", "progress", "created_by", "created_at")
    list_filter = ("kind", "status")
    readonly_fields = ("created_at", "finished_at")
