from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "crackportal.api"
    verbose_name = "REST API"
