"""Roles: who may open which page, and tunnels reachable only by those assigned to them."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from crackportal.assets.models import Tunnel
from crackportal.inspections.models import InspectionRun, SurveyImage


@pytest.fixture
def other_tunnel(db):
    tunnel = Tunnel.objects.create(
        code="T-OTHER", name="Other tunnel", length_m=100, circumference_m=10
    )
    run = InspectionRun.objects.create(tunnel=tunnel, date="2026-01-01")
    SurveyImage.objects.create(run=run, original_name="secret.jpg")
    return tunnel


def test_create_roles_makes_groups_and_demo_users(db):
    call_command("create_roles", "--demo-users", "--password", "demo-pass-123")
    from django.contrib.auth.models import Group, User

    assert set(Group.objects.values_list("name", flat=True)) >= {"inspector", "manager", "admin"}
    assert User.objects.get(username="demo-manager").groups.filter(name="manager").exists()


def test_inspector_sees_only_assigned_tunnels(client, inspector, tunnel, other_tunnel):
    client.force_login(inspector)
    page = client.get(reverse("tunnel-list")).content.decode()
    assert "T-TEST-01" in page and "T-OTHER" not in page


def test_objects_of_another_tunnel_are_not_reachable_by_id(client, inspector, other_tunnel):
    client.force_login(inspector)
    run = other_tunnel.runs.get()
    image = run.images.get()
    for url in (
        reverse("tunnel-detail", args=[other_tunnel.code]),
        reverse("run-detail", args=[run.pk]),
        reverse("run-progress", args=[run.pk]),
        reverse("image-detail", args=[image.pk]),
        reverse("image-original", args=[image.pk]),
    ):
        assert client.get(url).status_code == 404, url


def test_manager_sees_every_tunnel_and_may_add_one(client, manager, tunnel, other_tunnel):
    client.force_login(manager)
    page = client.get(reverse("tunnel-list")).content.decode()
    assert "T-TEST-01" in page and "T-OTHER" in page
    response = client.post(
        reverse("tunnel-create"),
        {"code": "T-NEW", "name": "New", "length_m": 10, "circumference_m": 5},
    )
    assert response.status_code == 302 and Tunnel.objects.filter(code="T-NEW").exists()


def test_inspector_may_not_add_tunnels(client, inspector):
    client.force_login(inspector)
    response = client.get(reverse("tunnel-create"))
    assert response.status_code == 403 and "Not allowed" in response.content.decode()


def test_user_without_a_role_is_refused(client, outsider, tunnel):
    client.force_login(outsider)
    assert client.get(reverse("tunnel-list")).status_code == 403


def test_admin_sees_training_links(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("tunnel-list")).content.decode()
    assert reverse("training-list") in page and reverse("model-list") in page
