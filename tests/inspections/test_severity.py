"""Severity classes and their colours: one palette for pages, map and PDF, configured classes too."""

import pytest

from crackportal.inspections.severity import severity_colours, severity_for_width, severity_rgb


def test_default_classes_have_their_colours():
    colours = severity_colours()
    assert list(colours) == ["hairline", "minor", "moderate", "severe", "critical"]
    assert colours["critical"] == "#c92a2a" and severity_rgb("critical") == (201, 42, 42)


def test_configured_classes_are_coloured_mildest_green_to_worst_red(settings):
    settings.SEVERITY_CLASSES_MM = [(0.3, "A"), (2.0, "B"), (float("inf"), "C")]
    colours = severity_colours()
    assert colours == {"A": "#2b8a3e", "B": "#f59f00", "C": "#c92a2a"}
    assert severity_for_width(0.5) == "B"


def test_a_colour_can_be_set_by_name(settings):
    settings.SEVERITY_COLOURS = {"critical": "#000000"}
    assert severity_colours()["critical"] == "#000000"


@pytest.mark.django_db
def test_the_map_page_hands_the_palette_to_the_map(client, tunnel, inspector, settings):
    from tests.factories import make_run

    settings.SEVERITY_CLASSES_MM = [(1.0, "low"), (float("inf"), "high")]
    make_run(tunnel)
    client.force_login(inspector)
    html = client.get(f"/tunnels/{tunnel.code}/map/").content.decode()
    assert '<script id="severity-colours" type="application/json">' in html
    assert '"low": "#2b8a3e"' in html and '"high": "#c92a2a"' in html
