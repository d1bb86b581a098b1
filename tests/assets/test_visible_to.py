"""One access rule: `visible_to(user)` scopes tunnels and everything under them."""

from pathlib import Path

import pytest

from crackportal.assets.models import Tunnel
from crackportal.inspections.models import Crack, CrackTrack, InspectionRun, SurveyImage
from crackportal.inspections.tracking import track_run
from crackportal.reports.models import Report
from tests.conftest import ROOT, make_user
from tests.factories import make_crack, make_image, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_tunnels(tunnel, manager):
    other = Tunnel.objects.create(code="T-OTHER", name="Other", length_m=10, circumference_m=5)
    for t in (tunnel, other):
        run = make_run(t)
        make_crack(make_image(run))
        track_run(run)
        Report.objects.create(run=run, kind="pdf")
    return tunnel, other


MODELS = [Tunnel, InspectionRun, SurveyImage, Crack, CrackTrack, Report]


def _tunnel_codes(model, user) -> set[str]:
    path = {
        Tunnel: "code",
        InspectionRun: "tunnel__code",
        SurveyImage: "run__tunnel__code",
        Crack: "image__run__tunnel__code",
        CrackTrack: "tunnel__code",
        Report: "run__tunnel__code",
    }[model]
    return set(model.objects.visible_to(user).values_list(path, flat=True))


def test_an_inspector_sees_only_the_assigned_tunnel(two_tunnels, inspector):
    for model in MODELS:
        assert _tunnel_codes(model, inspector) == {"T-TEST-01"}, model.__name__


def test_managers_and_admins_see_every_tunnel(two_tunnels, manager, admin_user):
    for user in (manager, admin_user):
        for model in MODELS:
            assert _tunnel_codes(model, user) == {"T-TEST-01", "T-OTHER"}, model.__name__


def test_users_without_a_role_see_nothing(two_tunnels, outsider, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    unassigned = make_user(django_user_model, "new-inspector", "inspector")
    for user in (outsider, AnonymousUser(), unassigned):
        for model in MODELS:
            assert _tunnel_codes(model, user) == set(), (user, model.__name__)


def test_no_view_scopes_tunnels_by_hand():
    views = list(Path(ROOT / "crackportal").glob("*/views.py"))
    offenders = [str(v) for v in views if "tunnel__in" in v.read_text()]
    assert views and offenders == []
