"""Severity classes from crack width (settings.SEVERITY_CLASSES_MM)."""

from django.conf import settings

DEFAULT_CLASSES = [
    (0.2, "hairline"),
    (0.5, "minor"),
    (1.0, "moderate"),
    (3.0, "severe"),
    (float("inf"), "critical"),
]


def severity_for_width(width_max_mm: float) -> str:
    """The first class whose upper bound (mm, exclusive) exceeds the crack's maximum width."""
    for upper_mm, name in getattr(settings, "SEVERITY_CLASSES_MM", DEFAULT_CLASSES):
        if width_max_mm < upper_mm:
            return name
    return DEFAULT_CLASSES[-1][1]
