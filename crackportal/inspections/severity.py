"""Severity classes from crack width, and growth alerts.

Default classes follow the width bands commonly used for concrete tunnel linings
(e.g. the German DB Ril 853 / DAfStb crack-width practice and JSCE-style inspection
manuals, simplified): hairline < 0.2 mm, minor 0.2–0.5 mm, moderate 0.5–1.0 mm,
severe 1.0–3.0 mm, critical ≥ 3.0 mm. Override with settings.SEVERITY_CLASSES_MM,
a list of (upper bound in mm, exclusive; name), ascending. Colours (map, pages, PDF) come
from severity_colours(): settings.SEVERITY_COLOURS by name, else a green-to-red ramp by the
class's place in the list, so configured classes are coloured too.
"""

from django.conf import settings

DEFAULT_CLASSES = [
    (0.2, "hairline"),
    (0.5, "minor"),
    (1.0, "moderate"),
    (3.0, "severe"),
    (float("inf"), "critical"),
]


# green → red, sampled by a class's position among the classes
_RAMP = ["#2b8a3e", "#74b816", "#f59f00", "#e8590c", "#c92a2a"]


def severity_classes() -> list[tuple[float, str]]:
    return list(getattr(settings, "SEVERITY_CLASSES_MM", DEFAULT_CLASSES))


def severity_for_width(width_max_mm: float) -> str:
    """The first class whose upper bound (mm, exclusive) exceeds the crack's maximum width."""
    classes = severity_classes()
    for upper_mm, name in classes:
        if width_max_mm < upper_mm:
            return name
    return classes[-1][1]


def severity_colours() -> dict[str, str]:
    """Colour (#rrggbb) per severity class name, mildest first: the one palette of every page and report."""
    names = [name for _, name in severity_classes()]
    chosen = dict(getattr(settings, "SEVERITY_COLOURS", {}))
    last = max(len(names) - 1, 1)
    return {
        name: chosen.get(name) or _RAMP[round(i * (len(_RAMP) - 1) / last)]
        for i, name in enumerate(names)
    }


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """ "#rrggbb" as an RGB triple."""
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def severity_rgb(name: str) -> tuple[int, int, int]:
    """A class's colour as an RGB triple (grey for an unknown name)."""
    return hex_rgb(severity_colours().get(name, "#505050"))


# What the maintenance report recommends per class (override with settings.SEVERITY_ACTIONS).
DEFAULT_ACTIONS = {
    "hairline": "Record; check again at the next routine inspection.",
    "minor": "Record and monitor; re-inspect within 12 months, seal where water enters.",
    "moderate": "Seal or inject; re-inspect within 6 months and watch for growth.",
    "severe": "Structural assessment and repair (injection, local strengthening) within 3 months.",
    "critical": "Immediate engineering assessment; restrict use if stability is in doubt.",
}


def severity_actions() -> dict[str, str]:
    """Recommended maintenance action per severity class name."""
    return dict(getattr(settings, "SEVERITY_ACTIONS", DEFAULT_ACTIONS))
