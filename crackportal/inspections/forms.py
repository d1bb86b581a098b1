from django import forms
from django.utils import timezone


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


class RunForm(UploadForm):
    date = forms.DateField(
        initial=timezone.localdate,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )
    label = forms.CharField(
        max_length=200, required=False, help_text="e.g. 'Spring survey, eastbound'"
    )

    field_order = ["date", "label", "files", "manifest"]
