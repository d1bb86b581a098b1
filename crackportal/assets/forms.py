from django import forms

from crackportal.assets.models import Tunnel


class TunnelForm(forms.ModelForm):
    class Meta:
        model = Tunnel
        fields = [*Tunnel.EDITABLE, "require_review"]
        widgets = {"lining_zones": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["first_ring_chainage_m"].required = False

    def clean_first_ring_chainage_m(self):
        value = self.cleaned_data["first_ring_chainage_m"]
        return 0.0 if value is None else value
