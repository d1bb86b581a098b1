from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "crackportal.accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from django.contrib import admin

        from crackportal.accounts.roles import admin_site_permission

        admin.site.has_permission = admin_site_permission
