from django.apps import AppConfig


class AssetsConfig(AppConfig):
    name = "crackportal.assets"
    verbose_name = "Tunnels"
