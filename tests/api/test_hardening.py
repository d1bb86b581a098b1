"""Inputs that used to answer 500, API tokens that expire, codes that cannot be enumerated."""

import datetime as dt
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from crackportal.assets.models import Tunnel
from crackportal.modelops.models import TrainingRun
from crackportal.reports.models import Report
from tests.factories import make_image, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(tunnel):
    run = make_run(tunnel)
    make_image(run)
    return run


def test_page_json_endpoints_answer_400_for_bad_ids(client, inspector, tunnel, run):
    client.force_login(inspector)
    bad_run = client.get(f"/tunnels/{tunnel.code}/map.json?run=abc")
    assert bad_run.status_code == 400 and "inspection id" in bad_run.json()["error"]
    bad_ids = client.get(f"/runs/{run.pk}/progress.json?ids=%C2%B2")
    assert bad_ids.status_code == 400 and "image ids" in bad_ids.json()["error"]


def test_a_nul_in_a_json_tunnel_code_is_a_400(client, inspector):
    client.force_login(inspector)
    response = client.post(
        "/api/runs/",
        json.dumps({"tunnel": "T\x00X", "date": "2026-01-01"}),
        content_type="application/json",
    )
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


def test_json_nested_100000_deep_is_a_400(client, inspector):
    client.force_login(inspector)
    body = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/runs/", body, content_type="application/json")
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]


def test_a_manifest_field_over_the_csv_limit_is_a_400(client, inspector, run):
    client.force_login(inspector)
    manifest = (
        "filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m\n"
        + "x" * 140_000
        + ",0,1,0,1\n"
    ).encode()
    response = client.post(
        f"/api/runs/{run.pk}/images/",
        {
            "files": [SimpleUploadedFile("a.jpg", b"not really", "image/jpeg")],
            "manifest": SimpleUploadedFile("m.csv", manifest),
        },
    )
    assert response.status_code == 400
    assert "not a readable CSV" in json.dumps(response.json())


def test_an_unassigned_tunnel_reads_like_a_missing_one(client, inspector):
    Tunnel.objects.create(code="T-SECRET", name="Secret", length_m=10, circumference_m=5)
    client.force_login(inspector)
    answers = [
        client.post(
            "/api/runs/", {"tunnel": code, "date": "2026-01-01"}, content_type="application/json"
        )
        for code in ("T-SECRET", "T-NOWHERE")
    ]
    assert [a.status_code for a in answers] == [400, 400]
    first, second = (a.json()["tunnel"][0] for a in answers)
    assert first.replace("T-SECRET", "?") == second.replace("T-NOWHERE", "?")


def _token(client, username, password):
    response = client.post("/api/token/", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def test_tokens_expire(client, inspector, settings):
    body = _token(client, "inspector", "inspect-pass-123")
    assert "expires" in body
    auth = {"HTTP_AUTHORIZATION": f"Token {body['token']}"}
    assert client.get("/api/tunnels/", **auth).status_code == 200
    Token.objects.filter(key=body["token"]).update(
        created=timezone.now() - dt.timedelta(hours=settings.API_TOKEN_TTL_HOURS + 1)
    )
    assert client.get("/api/tunnels/", **auth).status_code == 401
    fresh = _token(client, "inspector", "inspect-pass-123")
    assert fresh["token"] != body["token"]


def test_a_password_change_and_a_sign_out_revoke_tokens(client, inspector):
    key = _token(client, "inspector", "inspect-pass-123")["token"]
    inspector.set_password("a-new-pass-456")
    inspector.save()
    assert client.get("/api/tunnels/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    key = _token(client, "inspector", "a-new-pass-456")["token"]
    client.force_login(inspector)
    client.post("/accounts/logout/")
    assert not Token.objects.filter(key=key).exists()


def test_pages_send_a_content_security_policy(client, inspector):
    client.force_login(inspector)
    policy = client.get("/").headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(
        [
            "run",
            "ids",
            "severity",
            "orientation",
            "min_width_mm",
            "chainage_from_m",
            "chainage_to_m",
            "new",
        ]
    ),
    value=st.text(max_size=40),
    which=st.sampled_from(["map", "progress", "report", "training"]),
)
def test_page_json_endpoints_never_answer_500(client, admin_user, tunnel, run, name, value, which):
    report = Report.objects.filter(run=run).first() or Report.objects.create(run=run, kind="pdf")
    training = TrainingRun.objects.first() or TrainingRun.objects.create(
        config_name="x", status="done"
    )
    client.force_login(admin_user)
    value = value.replace("\x00", "")  # a NUL is refused by the middleware (tested elsewhere)
    path = {
        "map": f"/tunnels/{tunnel.code}/map.json",
        "progress": f"/runs/{run.pk}/progress.json",
        "report": f"/reports/{report.pk}/status.json",
        "training": f"/training/{training.pk}/status.json",
    }[which]
    params = {name: value}
    if which == "map" and name != "run":
        params["run"] = str(run.pk)
    assert client.get(path, params).status_code < 500
