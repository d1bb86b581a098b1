from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "crackportal.accounts"
    verbose_name = "Accounts and roles"
