"""{% load stationing %}: chainage in engineering form (0+400.030) and track names (T-0042)."""

from django import template

from crackportal.inspections.stationing import format_chainage, track_label

register = template.Library()


@register.filter
def chainage(metres, decimals: int = 3) -> str:
    return format_chainage(metres, int(decimals))


@register.filter
def track(track_id) -> str:
    return track_label(track_id)
