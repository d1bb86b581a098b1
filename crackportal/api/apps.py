from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "crackportal.api"
    verbose_name = "REST API"

    def ready(self):
        from crackportal.api import authentication  # noqa: F401 (token revocation signals)
