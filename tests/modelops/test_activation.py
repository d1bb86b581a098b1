"""Safe model changes: an activation shows both models' figures, a worse candidate needs a
stated reason, and every activation is kept (issue 18: a 1-epoch test model, validation F1
0.059, replaced the 0.883 default with one click)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from crackportal.modelops import services
from crackportal.modelops.models import ModelActivation, ModelVersion

DEFAULT_METRICS = {
    "val": {"f1": 0.883, "iou": 0.79},
    "cfd-test": {"f1": 0.735, "iou": 0.581, "ods": 0.946},
}


@pytest.fixture
def default(db):
    version = ModelVersion.objects.create(
        name="default",
        path="default",
        architecture="Unet",
        encoder="mobilenet_v2",
        metrics=DEFAULT_METRICS,
    )
    services.activate_model_version(version=version, require_reason=False)
    return version


def _candidate(name, **metrics):
    return ModelVersion.objects.create(
        name=name, path=name, architecture="Unet", encoder="mobilenet_v2", metrics=metrics
    )


def test_a_worse_test_model_is_not_activated_by_one_click(client, admin_user, default):
    test_model = _candidate("unet-tiny-run7", val={"f1": 0.059, "iou": 0.03})
    client.force_login(admin_user)
    page = client.get(reverse("model-activate", args=[test_model.pk])).content.decode()
    assert "0.059" in page and "0.883" in page and "Worse than the active model" in page

    response = client.post(reverse("model-activate", args=[test_model.pk]), {"reason": " "})
    assert response.status_code == 200
    assert "state a reason" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True) == default

    response = client.post(
        reverse("model-activate", args=[test_model.pk]), {"reason": "smoke test of the worker"}
    )
    assert response.status_code == 302
    assert ModelVersion.objects.get(is_active=True) == test_model
    record = ModelActivation.objects.first()
    assert (record.version, record.previous, record.activated_by) == (
        test_model,
        default,
        admin_user,
    )
    assert record.reason == "smoke test of the worker" and record.worse_on == ["val"]
    val_row = next(r for r in record.comparison if r["split"] == "val")
    assert val_row["candidate"]["f1"] == 0.059 and val_row["active"]["f1"] == 0.883


def test_a_better_model_needs_only_the_confirmation_and_roll_back_is_recorded(
    client, admin_user, default
):
    better = _candidate(
        "five-datasets", val={"f1": 0.9}, **{"cfd-test": {"f1": 0.76, "iou": 0.6, "ods": 0.95}}
    )
    client.force_login(admin_user)
    assert client.post(reverse("model-activate", args=[better.pk])).status_code == 302
    assert ModelVersion.objects.get(is_active=True) == better
    # rolling back to the old default is worse on the shared test split: it needs a reason
    response = client.post(reverse("model-activate", args=[default.pk]))
    assert response.status_code == 200 and ModelVersion.objects.get(is_active=True) == better
    client.post(reverse("model-activate", args=[default.pk]), {"reason": "roll back: field report"})
    assert ModelVersion.objects.get(is_active=True) == default
    history = list(ModelActivation.objects.values_list("version__name", "reason"))
    assert history[:2] == [("default", "roll back: field report"), ("five-datasets", "")]
    listing = client.get(reverse("model-list")).content.decode()
    assert "roll back: field report" in listing and listing.count('id="activations"') == 1
    assert "<title>Models" in listing and "<title>Models<" not in listing.split("</title>")[1]


def test_held_back_images_decide_before_the_test_splits():
    a = ModelVersion(pk=1, name="a", metrics={"held-back": {"f1": 0.5}, "cfd-test": {"f1": 0.9}})
    b = ModelVersion(pk=2, name="b", metrics={"held-back": {"f1": 0.7}, "cfd-test": {"f1": 0.8}})
    comparison = services.compare_versions(a, b)
    assert [r["split"] for r in comparison.rows] == ["held-back", "cfd-test"]
    assert comparison.worse_on == ["held-back"]
    assert services.compare_versions(b, a).worse_on == ["cfd-test"]
    assert services.compare_versions(a, None).worse_on == []
    # own validation splits count only when nothing else is shared
    c = ModelVersion(pk=3, name="c", metrics={"val": {"f1": 0.5}, "cfd-test": {"f1": 0.9}})
    d = ModelVersion(pk=4, name="d", metrics={"val": {"f1": 0.9}, "cfd-test": {"f1": 0.9}})
    assert services.compare_versions(c, d).worse_on == []
    # nor is a change shown for them: the activation page read "-0.179" for an adaptation
    # whose validation images were the tunnel's, the active model's its training data's
    [val] = [r for r in services.compare_versions(c, d).rows if r["split"] == "val"]
    assert val["delta_f1"] is None and val["candidate"]["f1"] == 0.5
    assert services.compare_versions(
        ModelVersion(pk=5, name="e", metrics={"val": {"f1": 0.5}}), d
    ).worse_on == ["val"]


def test_api_activation_asks_for_a_reason_when_worse(admin_user, default):
    test_model = _candidate("unet-tiny-run8", val={"f1": 0.1})
    client = APIClient()
    client.force_authenticate(admin_user)
    url = f"/api/models/{test_model.pk}/activate/"
    response = client.post(url, {}, format="json")
    assert response.status_code == 409 and "state a reason" in response.json()["detail"]
    response = client.post(url, {"reason": "compare on site"}, format="json")
    assert response.status_code == 200 and response.json()["is_active"] is True
    assert ModelActivation.objects.first().reason == "compare on site"


def test_the_first_activation_of_the_shipped_default_is_recorded_as_the_systems(db, settings):
    version = services.active_model_version()
    record = ModelActivation.objects.get()
    assert record.version == version and record.activated_by is None
    assert "shipped default" in record.reason
