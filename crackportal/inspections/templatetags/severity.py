"""{% load severity %}: severity colours for templates, from the one palette in inspections.severity."""

from django import template
from django.utils.html import format_html

from crackportal.inspections.severity import severity_colours

register = template.Library()


@register.simple_tag
def severity_badge(name: str, count=None):
    """A severity label (with a count when given) and its class colour as a marker."""
    colour = severity_colours().get(name, "#505050")
    return format_html(
        '<span class="sev sev-{}"><i class="dot" style="background:{}"></i>{}</span>',
        name,
        colour,
        name if count is None else f"{name} {count}",
    )


@register.simple_tag
def severity_swatch(name: str):
    """A legend swatch in the class colour."""
    return format_html(
        '<span class="swatch" style="background:{}"></span>',
        severity_colours().get(name, "#505050"),
    )


@register.simple_tag
def worst_severity(width_max_mm):
    """The badge of the class of the widest crack (— when there is none)."""
    if width_max_mm is None:
        return "—"
    from crackportal.inspections.severity import severity_for_width

    return severity_badge(severity_for_width(width_max_mm))
