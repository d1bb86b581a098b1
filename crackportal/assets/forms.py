from django import forms

from crackportal.assets.models import Tunnel


class TunnelForm(forms.ModelForm):
    class Meta:
        model = Tunnel
        fields = ["code", "name", "length_m", "circumference_m", "notes", "require_review"]
