from django.contrib import admin

from crackportal.assets.models import Tunnel


@admin.register(Tunnel)
class TunnelAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "length_m", "circumference_m", "created_at"]
    search_fields = ["code", "name"]
