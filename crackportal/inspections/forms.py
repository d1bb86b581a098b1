from django import forms
from django.utils import timezone

from crackportal.inspections.placement import DECREASING, INCREASING


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files in one input."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*,.zip,.tif,.tiff"}))
        # empty or odd files are judged one by one by the upload, which keeps the good ones
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    files = MultipleFileField(
        label="Survey images",
        required=True,
        help_text="Select many images at once, or a .zip of them (a manifest .csv may be inside the zip).",
    )
    manifest = forms.FileField(
        label="Manifest (CSV, optional)",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        help_text="Columns: filename, chainage_start_m, chainage_end_m, arc_start_m, arc_end_m, mm_per_px.",
    )
    start_chainage_m = forms.FloatField(
        label="Start chainage (m), for images without a manifest row",
        required=False,
        min_value=0,
        max_value=1_000_000,
        help_text="Images without a manifest row are laid out one after another from here at "
        "the default scale. Empty: after this inspection's images so far (0 for the first).",
    )
    direction = forms.ChoiceField(
        label="Survey direction",
        choices=[
            (INCREASING, "increasing chainage"),
            (DECREASING, "decreasing chainage"),
        ],
        initial=INCREASING,
        required=False,
    )

    def clean_direction(self):
        return self.cleaned_data.get("direction") or INCREASING


class RunForm(UploadForm):
    date = forms.DateField(
        initial=timezone.localdate,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )
    label = forms.CharField(
        max_length=200, required=False, help_text="e.g. 'Spring survey, eastbound'"
    )

    field_order = ["date", "label", "files", "manifest", "start_chainage_m", "direction"]


class FootprintForm(forms.Form):
    """Where an image lies on the unrolled lining (metres) and its scale."""

    chainage_start_m = forms.FloatField()
    chainage_end_m = forms.FloatField()
    arc_start_m = forms.FloatField()
    arc_end_m = forms.FloatField()
    mm_per_px = forms.FloatField(
        required=False, help_text="Empty: from the chainage span and the image width."
    )
