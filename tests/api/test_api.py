"""REST API: every endpoint for every role, uploads, filters, tracks, reports, models, training."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crackportal.assets.models import Tunnel
from crackportal.inspections.models import SurveyImage
from crackportal.inspections.tracking import track_run
from crackportal.modelops.models import ModelVersion, TrainingRun
from crackportal.reports import services as reports
from tests.conftest import make_user, survey_jpeg, wait_for
from tests.factories import make_crack, make_image, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(tunnel, manager):
    old, new = make_run(tunnel, "2025-05-01"), make_run(tunnel, "2026-05-01")
    make_crack(make_image(old, "a.jpg"), 0, end_m=(0.5, 0.1), width_mm=0.3)
    track_run(old)
    image = make_image(new, "a.jpg")
    grown = make_crack(image, 0, end_m=(0.6, 0.1), width_mm=0.45)
    wide = make_crack(
        image, 1, start_m=(0.8, 0.1), end_m=(0.8, 0.45), width_mm=1.5, orientation="transverse"
    )
    track_run(new)
    grown.refresh_from_db(), wide.refresh_from_db()
    report = reports.request_report(run=new, kind="xlsx", user=manager)
    reports.build_report(report_id=report.pk)
    version = ModelVersion.objects.create(
        name="v-test", path="/nowhere", architecture="Unet", encoder="x"
    )
    training = TrainingRun.objects.create(config_name="unet-tiny", status="done")
    return {
        "old": old,
        "new": new,
        "image": image,
        "grown": grown,
        "wide": wide,
        "report": report,
        "version": version,
        "training": training,
    }


def _client(user=None):
    client = APIClient()
    if user is not None:
        client.credentials(
            HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}"
        )
    return client


@pytest.fixture
def users(inspector, manager, admin_user):
    return {"anonymous": None, "inspector": inspector, "manager": manager, "admin": admin_user}


def test_permission_matrix_for_reads(users, data):
    d = data
    cases = {
        "/api/tunnels/": "inspector",
        f"/api/tunnels/{d['new'].tunnel.code}/": "inspector",
        "/api/runs/": "inspector",
        f"/api/runs/{d['new'].pk}/": "inspector",
        f"/api/runs/{d['new'].pk}/progress/": "inspector",
        "/api/images/": "inspector",
        f"/api/images/{d['image'].pk}/": "inspector",
        "/api/cracks/": "inspector",
        f"/api/cracks/{d['wide'].pk}/": "inspector",
        "/api/tracks/": "inspector",
        f"/api/tracks/{d['grown'].track_id}/": "inspector",
        "/api/reports/": "manager",
        f"/api/reports/{d['report'].pk}/": "manager",
        f"/api/reports/{d['report'].pk}/download/": "manager",
        "/api/models/": "admin",
        f"/api/models/{d['version'].pk}/": "admin",
        "/api/training-runs/": "admin",
        f"/api/training-runs/{d['training'].pk}/": "admin",
    }
    rank = {"anonymous": 0, "inspector": 1, "manager": 2, "admin": 3}
    for url, needed in cases.items():
        for name, user in users.items():
            status = _client(user).get(url).status_code
            if name == "anonymous":
                expected = 401
            else:
                expected = 200 if rank[name] >= rank[needed] else 403
            assert status == expected, (url, name, status)


def test_permission_matrix_for_writes(users, data, tunnel):
    run = data["new"]
    rank = {"anonymous": 0, "inspector": 1, "manager": 2, "admin": 3}
    writes = [
        ("post", "/api/runs/", {"tunnel": tunnel.code, "date": "2026-06-01"}, "inspector", 201),
        (
            "post",
            "/api/tunnels/",
            {"code": "T-{n}", "name": "x", "length_m": 1, "circumference_m": 1},
            "manager",
            201,
        ),
        ("post", f"/api/runs/{run.pk}/reports/", {"kind": "pdf"}, "manager", 202),
        ("post", f"/api/runs/{run.pk}/retry/", {}, "inspector", 200),
        ("post", f"/api/models/{data['version'].pk}/activate/", {}, "admin", 200),
        ("post", f"/api/training-runs/{data['training'].pk}/cancel/", {}, "admin", 200),
    ]
    for method, url, body, needed, ok in writes:
        for n, (name, user) in enumerate(users.items()):
            payload = {k: (v.format(n=n) if isinstance(v, str) else v) for k, v in body.items()}
            status = getattr(_client(user), method)(url, payload, format="json").status_code
            expected = 401 if name == "anonymous" else (ok if rank[name] >= rank[needed] else 403)
            assert status == expected, (url, name, status)


def test_objects_of_unassigned_tunnels_are_not_found(data, django_user_model):
    other = Tunnel.objects.create(code="T-OTHER", name="Other", length_m=100, circumference_m=10)
    stranger = make_user(django_user_model, "stranger", "inspector")
    stranger.tunnels.add(other)
    client = _client(stranger)
    for url in [
        f"/api/runs/{data['new'].pk}/",
        f"/api/images/{data['image'].pk}/",
        f"/api/cracks/{data['wide'].pk}/",
        f"/api/tracks/{data['grown'].track_id}/",
        f"/api/tunnels/{data['new'].tunnel.code}/",
    ]:
        assert client.get(url).status_code == 404, url
    assert client.get("/api/cracks/").json()["count"] == 0
    response = client.post(
        "/api/runs/", {"tunnel": data["new"].tunnel.code, "date": "2026-06-01"}, format="json"
    )
    assert response.status_code == 400


def test_token_from_username_and_password(inspector):
    response = APIClient().post(
        "/api/token/", {"username": "inspector", "password": "inspect-pass-123"}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/tunnels/").status_code == 200


def test_crack_filters(inspector, data):
    client = _client(inspector)

    def ids(**params):
        return {c["id"] for c in client.get("/api/cracks/", params).json()["results"]}

    grown, wide = data["grown"].pk, data["wide"].pk
    assert ids(run=data["new"].pk) == {grown, wide}
    assert ids(run=data["new"].pk, severity="severe") == {wide}
    assert ids(run=data["new"].pk, orientation="transverse") == {wide}
    assert ids(run=data["new"].pk, min_width_mm="1") == {wide}
    assert ids(run=data["new"].pk, chainage_from_m="0.7") == {wide}
    assert len(ids(tunnel=data["new"].tunnel.code)) == 3
    bad = client.get("/api/cracks/", {"min_width_mm": "wide"})
    assert bad.status_code == 400 and "must be a number" in bad.json()["filter"]


def test_tracks_carry_history_and_growth(inspector, data):
    track = _client(inspector).get(f"/api/tracks/{data['grown'].track_id}/").json()
    assert [h["length_mm"] for h in track["history"]] == pytest.approx([300.0, 400.0])
    assert track["length_growth_mm_per_year"] == pytest.approx(100 / (365 / 365.25))


def test_report_request_status_and_download(manager, data):
    client = _client(manager)
    report = client.get(f"/api/reports/{data['report'].pk}/").json()
    assert report["status"] == "done" and report["download"].endswith(
        f"/api/reports/{data['report'].pk}/download/"
    )
    download = client.get(report["download"])
    assert download.status_code == 200 and b"".join(download.streaming_content)[:2] == b"PK"
    queued = client.post(f"/api/runs/{data['new'].pk}/reports/", {"kind": "pdf"}, format="json")
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    assert client.get(f"/api/reports/{queued.json()['id']}/download/").status_code == 404
    assert (
        client.post(
            f"/api/runs/{data['new'].pk}/reports/", {"kind": "doc"}, format="json"
        ).status_code
        == 400
    )


def test_model_activation_and_training_errors(admin_user, data):
    client = _client(admin_user)
    response = client.post(f"/api/models/{data['version'].pk}/activate/")
    assert response.status_code == 200 and response.json()["is_active"] is True
    bad = client.post("/api/training-runs/", {"config_name": "nope"}, format="json")
    assert bad.status_code == 400 and "unknown config" in bad.json()["detail"]


def test_batch_upload_through_the_api_reports_each_file(inspector, tunnel):
    client = _client(inspector)
    run = client.post(
        "/api/runs/", {"tunnel": tunnel.code, "date": "2026-06-01"}, format="json"
    ).json()
    files = [
        SimpleUploadedFile("a.jpg", survey_jpeg(seed=1), "image/jpeg"),
        SimpleUploadedFile("b.jpg", survey_jpeg(seed=2), "image/jpeg"),
        SimpleUploadedFile("notes.jpg", b"this is not a picture", "image/jpeg"),
    ]
    response = client.post(f"/api/runs/{run['id']}/images/", {"files": files}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted(body["accepted"]) == ["a.jpg", "b.jpg"]
    assert [f["file"] for f in body["failed"]] == ["notes.jpg"] and body["failed"][0]["reason"]
    statuses = dict(
        SurveyImage.objects.filter(run_id=run["id"]).values_list("original_name", "status")
    )
    assert statuses["notes.jpg"] == "failed"
    empty = client.post(f"/api/runs/{run['id']}/images/", {}, format="multipart")
    assert empty.status_code == 400


@pytest.mark.integration
def test_api_upload_is_processed_by_the_worker(worker, inspector, tunnel):
    client = _client(inspector)
    run = client.post(
        "/api/runs/", {"tunnel": tunnel.code, "date": "2026-06-01"}, format="json"
    ).json()
    files = [SimpleUploadedFile("a.jpg", survey_jpeg(seed=5), "image/jpeg")]
    assert (
        client.post(
            f"/api/runs/{run['id']}/images/", {"files": files}, format="multipart"
        ).status_code
        == 201
    )
    wait_for(
        lambda: client.get(f"/api/runs/{run['id']}/").json()["status"] == "done", what="the run"
    )
    cracks = client.get("/api/cracks/", {"run": run["id"]}).json()
    assert cracks["count"] >= 1 and cracks["results"][0]["length_mm"] > 0


def test_openapi_schema_and_docs_need_a_sign_in(client, inspector):
    assert client.get("/api/schema/").status_code == 401
    assert client.get("/api/docs/").status_code in (401, 403)
    client.force_login(inspector)
    assert client.get("/api/schema/").status_code == 200


def test_openapi_schema_lists_every_resource(client, inspector):
    client.force_login(inspector)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in [
        "/api/tunnels/",
        "/api/runs/{id}/images/",
        "/api/cracks/",
        "/api/tracks/",
        "/api/reports/{id}/download/",
        "/api/models/{id}/activate/",
        "/api/training-runs/",
    ]:
        assert path in schema["paths"], path


def test_api_docs_are_served_locally(client, inspector):
    client.force_login(inspector)
    page = client.get("/api/docs/").content.decode()
    assert "drf_spectacular_sidecar/redoc" in page and "cdn" not in page.lower()


def _every_api_path(data):
    """Every route of the API router with its parameters filled in from data."""
    import re

    from crackportal.api.urls import router

    values = {"pk": str(data["new"].pk), "code": data["new"].tunnel.code}
    for pattern in router.urls:
        regex = pattern.pattern.regex.pattern
        if "format" in regex or pattern.name == "api-root":
            continue
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values.get(m.group(1), "1"), regex)
        yield "/api/" + path.strip("^$").replace("\\.", ".")


def test_every_api_endpoint_and_method_refuses_anonymous_and_roleless_users(data, outsider):
    paths = list(_every_api_path(data))
    assert len(paths) >= 20, paths
    roleless = _client(outsider)
    for path in paths:
        for method in ("get", "post", "put", "patch", "delete"):
            assert getattr(_client(), method)(path).status_code == 401, (method, path)
            assert getattr(roleless, method)(path).status_code == 403, (method, path)
