"""Access: every page URL × anonymous / no role / inspector / manager / admin, ids of other tunnels,
CSRF on every form, login throttling, and `check --deploy` with production settings."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from crackportal.assets.models import Tunnel
from tests.conftest import ROOT, make_user, survey_jpeg
from tests.factories import make_page_objects, page_cases

RANK = {"anonymous": 0, "outsider": 0, "inspector": 1, "manager": 2, "admin": 3}
POST_DATA = {"report-request": {"kind": "xlsx"}}


@pytest.fixture
def objects(tunnel, manager, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return make_page_objects(tunnel, manager, survey_jpeg(seed=1))


def _named_page_urls() -> set[str]:
    names = set()
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLPattern) and entry.name:
            names.add(entry.name)
        elif isinstance(entry, URLResolver) and not str(entry.pattern).startswith(
            ("admin/", "api/")
        ):
            names |= {p.name for p in entry.url_patterns if p.name}
    return names


def test_every_page_url_is_in_the_matrix(objects):
    assert {case[0] for case in page_cases(objects)} == _named_page_urls()


def test_permission_matrix_for_every_page(objects, inspector, manager, admin_user, outsider):
    users = {
        "anonymous": None,
        "outsider": outsider,
        "inspector": inspector,
        "manager": manager,
        "admin": admin_user,
    }
    failures = []
    for name, method, path, least, ok in page_cases(objects):
        for who, user in users.items():
            client = Client()
            if user is not None:
                client.force_login(user)
            status = getattr(client, method)(path, POST_DATA.get(name, {})).status_code
            if least is None or RANK[who] >= RANK[least]:
                expected = ok if who != "anonymous" or least is None else 302
            elif who == "anonymous":
                expected = 302  # to the login page
            else:
                expected = 403
            if status != expected:
                failures.append((name, who, status, expected))
    assert failures == [], "\n".join(map(str, failures))


def test_forbidden_is_a_403_page_not_a_crash(client, inspector, objects):
    client.force_login(inspector)
    response = client.get("/models/")
    assert response.status_code == 403
    assert b"Not allowed" in response.content


def test_ids_of_an_unassigned_tunnel_are_not_reachable(client, objects, django_user_model):
    other = Tunnel.objects.create(code="T-ELSE", name="Else", length_m=100, circumference_m=10)
    stranger = make_user(django_user_model, "stranger", "inspector")
    stranger.tunnels.add(other)
    client.force_login(stranger)
    o = objects
    for path in [
        f"/tunnels/{o['code']}/",
        f"/tunnels/{o['code']}/map.json",
        f"/runs/{o['run']}/",
        f"/runs/{o['run']}/progress.json",
        f"/images/{o['image']}/",
        f"/images/{o['image']}/original",
        f"/cracks/{o['crack']}/",
        f"/cracks/{o['crack']}/thumb.jpg",
    ]:
        assert client.get(path).status_code == 404, path
    assert client.post(f"/runs/{o['run']}/retry/").status_code == 404


def test_every_post_form_carries_a_csrf_token():
    templates = Path(ROOT / "templates").rglob("*.html")
    missing = []
    for template in templates:
        text = template.read_text()
        for form in re.findall(r"<form\b[^>]*>.*?</form>", text, re.S | re.I):
            if re.search(r'method="post"', form, re.I) and "{% csrf_token %}" not in form:
                missing.append(template.name)
    assert missing == []


def test_a_post_without_the_csrf_token_is_refused(inspector, objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(inspector)
    assert client.post(f"/runs/{objects['run']}/retry/").status_code == 403
    page = client.get(f"/runs/{objects['run']}/").content.decode()
    assert 'name="csrfmiddlewaretoken"' in page


def test_repeated_wrong_passwords_lock_the_account_for_pages_and_api(db, inspector, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        response = client.post(
            "/accounts/login/", {"username": "inspector", "password": "wrong-password"}
        )
    assert response.status_code == 429
    right = {"username": "inspector", "password": "inspect-pass-123"}
    locked = client.post("/accounts/login/", right)
    assert locked.status_code == 429 and b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in client.session
    api = Client().post("/api/token/", right)
    assert api.status_code == 429 and "token" not in api.json()
    # another user from the same address is not locked out
    assert (
        Client().post("/accounts/login/", {"username": "nobody", "password": "x"}).status_code
        == 200
    )


def test_correct_password_signs_in_and_resets_the_count(db, inspector, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    client.post("/accounts/login/", {"username": "inspector", "password": "wrong-password"})
    ok = client.post("/accounts/login/", {"username": "inspector", "password": "inspect-pass-123"})
    assert ok.status_code == 302


def test_check_deploy_is_clean_with_production_settings():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DEBUG", "SECRET_KEY", "VAR_DIR"))
    }
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.org",
        DJANGO_SETTINGS_MODULE="crackportal.settings",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deleting_a_run_asks_for_confirmation_and_the_api_cannot_delete(
    client, objects, django_user_model, inspector
):
    from crackportal.inspections.models import InspectionRun

    staff = django_user_model.objects.create_superuser("root", password="root-pass-123")
    client.force_login(staff)
    page = client.get(f"/admin/inspections/inspectionrun/{objects['run']}/delete/")
    assert page.status_code == 200 and b"Are you sure" in page.content
    assert InspectionRun.objects.filter(pk=objects["run"]).exists()  # nothing gone yet

    from rest_framework.authtoken.models import Token

    api = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=inspector).key}")
    assert api.delete(f"/api/runs/{objects['run']}/").status_code == 405
    assert api.delete(f"/api/images/{objects['image']}/").status_code == 405
    assert InspectionRun.objects.filter(pk=objects["run"]).exists()


def test_nul_bytes_are_a_400_not_a_crash(db, inspector):
    client = Client()
    assert (
        client.post("/api/token/", {"username": "in\x00spector", "password": "x"}).status_code
        == 400
    )
    form = {"username": "inspector", "password": "wrong", "note": "a\x00b"}
    assert client.post("/accounts/login/", form).status_code == 400
    assert client.post("/api/token/", form).status_code == 400
    assert client.get("/api/cracks/?orientation=\x00").status_code in (400, 401)
    json_body = '{"username": "in\\u0000spector", "password": "x"}'
    response = client.post("/api/token/", json_body, content_type="application/json")
    assert response.status_code == 400
