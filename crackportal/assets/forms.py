from django import forms

from crackportal.assets.models import Tunnel
from crackportal.inspections.condition import parse_zones


class TunnelForm(forms.ModelForm):
    class Meta:
        model = Tunnel
        fields = [
            "code",
            "name",
            "length_m",
            "circumference_m",
            "ring_length_m",
            "first_ring_chainage_m",
            "segments_per_ring",
            "lining_zones",
            "notes",
            "require_review",
        ]
        widgets = {"lining_zones": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["first_ring_chainage_m"].required = False

    def clean_first_ring_chainage_m(self):
        value = self.cleaned_data["first_ring_chainage_m"]
        return 0.0 if value is None else value

    def clean_lining_zones(self):
        text = self.cleaned_data["lining_zones"]
        try:
            parse_zones(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Lining zones, {exc}.") from None
        return text
