from django.apps import AppConfig


class ModelopsConfig(AppConfig):
    name = "crackportal.modelops"
    verbose_name = "Models and training"
