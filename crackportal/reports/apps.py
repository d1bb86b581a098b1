from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "crackportal.reports"
    verbose_name = "Maintenance reports"
