"""Tunnels: edited and given their inspectors on their own page; the admin role in Django admin."""

import pytest

from crackportal.assets.models import Tunnel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_a_manager_assigns_an_inspector_who_then_sees_the_tunnel(
    client, tunnel, manager, django_user_model
):
    newcomer = make_user(django_user_model, "newcomer", "inspector")
    client.force_login(newcomer)
    assert client.get(tunnel.get_absolute_url()).status_code == 404
    client.force_login(manager)
    page = client.get(tunnel.get_absolute_url()).content.decode()
    assert 'id="members"' in page and "newcomer" in page
    client.post(f"/tunnels/{tunnel.code}/members/", {"user": newcomer.pk, "action": "add"})
    client.force_login(newcomer)
    assert client.get(tunnel.get_absolute_url()).status_code == 200
    client.force_login(manager)
    client.post(f"/tunnels/{tunnel.code}/members/", {"user": newcomer.pk, "action": "remove"})
    client.force_login(newcomer)
    assert client.get(tunnel.get_absolute_url()).status_code == 404


def test_inspectors_cannot_manage_members(client, tunnel, inspector, django_user_model):
    other = make_user(django_user_model, "other", "inspector")
    client.force_login(inspector)
    page = client.get(tunnel.get_absolute_url()).content.decode()
    assert 'id="members"' not in page
    response = client.post(f"/tunnels/{tunnel.code}/members/", {"user": other.pk})
    assert response.status_code == 403 and not tunnel.members.filter(pk=other.pk).exists()


def test_a_tunnel_is_edited_and_a_zero_circumference_refused(client, tunnel, manager):
    client.force_login(manager)
    fields = {"code": tunnel.code, "name": "Renamed", "length_m": 800, "notes": ""}
    response = client.post(f"/tunnels/{tunnel.code}/edit/", {**fields, "circumference_m": 0})
    assert response.status_code == 200 and "more than 0 m" in response.content.decode()
    client.post(f"/tunnels/{tunnel.code}/edit/", {**fields, "circumference_m": 16.5})
    tunnel.refresh_from_db()
    assert (tunnel.name, tunnel.circumference_m) == ("Renamed", 16.5)


def test_the_api_refuses_a_zero_circumference(client, manager):
    client.force_login(manager)
    response = client.post(
        "/api/tunnels/",
        {"code": "T-ZERO", "name": "Zero", "length_m": 10, "circumference_m": 0},
        content_type="application/json",
    )
    assert response.status_code == 400 and not Tunnel.objects.filter(code="T-ZERO").exists()


def test_the_admin_role_can_use_the_django_admin(client, tunnel, admin_user, manager):
    assert not admin_user.is_staff  # the role alone opens it
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/assets/tunnel/").status_code == 200
    change = client.get(f"/admin/assets/tunnel/{tunnel.pk}/change/")
    assert change.status_code == 200 and b"members" in change.content
    client.force_login(manager)
    assert client.get("/admin/assets/tunnel/").status_code == 302  # to the admin login
