from django.apps import AppConfig


class InspectionsConfig(AppConfig):
    name = "crackportal.inspections"
    verbose_name = "Inspections"
