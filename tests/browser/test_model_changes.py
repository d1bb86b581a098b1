"""An admin changes the active model in the browser: figures first, a reason when it is
worse, the record afterwards; and the training form says what a run will use and cost."""

import pytest

from crackportal.modelops import services
from crackportal.modelops.models import ModelActivation, ModelVersion
from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_activating_a_worse_model_needs_a_reason_and_is_recorded(
    live_server, page, admin_user, artifacts_dir
):
    default = ModelVersion.objects.create(
        name="default",
        path="default",
        architecture="Unet",
        encoder="mobilenet_v2",
        metrics={"val": {"f1": 0.883}, "cfd-test": {"f1": 0.735, "iou": 0.581, "ods": 0.946}},
    )
    services.activate_model_version(version=default, require_reason=False)
    tiny = ModelVersion.objects.create(
        name="unet-tiny-run3",
        path="x",
        architecture="Unet",
        encoder="resnet18",
        metrics={"val": {"f1": 0.059, "iou": 0.031}},
    )
    login(page, live_server, "admin", "admin-pass-123")
    page.goto(f"{live_server.url}/models/")
    page.click(f"tr[data-model='{tiny.name}'] a.button")
    page.wait_for_selector("#comparison")
    assert "Worse than the active model" in page.inner_text("#worse-warning")
    assert "0.059" in page.inner_text("#comparison") and "0.883" in page.inner_text("#comparison")
    page.screenshot(path=str(artifacts_dir / "model-activate-worse.png"), full_page=True)
    page.click("#confirm-activation")
    page.wait_for_selector(".errorlist")
    assert "state a reason" in page.inner_text(".errorlist")
    assert ModelVersion.objects.get(is_active=True) == default
    page.fill("#id_reason", "try the small network on the demo tunnel")
    page.click("#confirm-activation")
    page.wait_for_selector("#activations")
    assert ModelVersion.objects.get(is_active=True) == tiny
    row = page.inner_text("#activations tbody tr:first-child")
    assert "unet-tiny-run3" in row and "admin" in row and "try the small network" in row
    page.screenshot(path=str(artifacts_dir / "model-activations.png"), full_page=True)
    assert ModelActivation.objects.first().activated_by == admin_user


def test_training_form_estimates_the_run_from_the_chosen_settings(
    live_server, page, admin_user, synthetic_dataset, artifacts_dir
):
    login(page, live_server, "admin", "admin-pass-123")
    page.goto(f"{live_server.url}/training/")
    estimate = page.locator("#training-estimate")
    page.wait_for_function(
        "() => document.getElementById('training-estimate').textContent.length > 0"
    )
    assert "Uses 6 images" in estimate.inner_text() and "12 epochs" in estimate.inner_text()
    page.fill("#id_epochs", "24")
    page.dispatch_event("#id_epochs", "input")
    assert "24 epochs" in estimate.inner_text()
    page.select_option("#id_dataset", "")
    assert "No images chosen" in estimate.inner_text()
    page.select_option("#id_dataset", "synthetic")
    page.screenshot(path=str(artifacts_dir / "training-form.png"), full_page=True)


def test_the_adapt_form_offers_balanced_or_these_tunnels_first(
    live_server, page, admin_user, tunnel, settings, tmp_path, artifacts_dir
):
    from tests.modelops.test_adaptation import _annotated_images

    settings.MEDIA_ROOT = tmp_path
    _annotated_images(tunnel, 3, admin_user)
    login(page, live_server, "admin", "admin-pass-123")
    page.goto(f"{live_server.url}/training/")
    form = page.locator("form:has(#id_share)")
    assert "T-TEST-01" in form.inner_text() and "3 annotated images" in form.inner_text()
    balanced, first = page.locator("#id_share_0"), page.locator("#id_share_1")
    assert balanced.is_checked() and not first.is_checked()
    assert "These tunnels first: three quarters" in form.inner_text()
    # the trade, as measured, beside the choice
    help_text = page.locator("#id_share_helptext").inner_text()
    assert "balanced reached 87–93 %" in help_text and "three quarters reached 91–92 %" in help_text
    first.check()
    assert first.is_checked() and not balanced.is_checked()
    form.screenshot(path=str(artifacts_dir / "adapt-form.png"))


def test_an_adaptation_run_page_compares_active_and_candidate_image_by_image(
    live_server, page, admin_user, tunnel, artifacts_dir
):
    from crackportal.modelops.models import TrainingRun
    from tests.factories import make_image, make_run

    run = make_run(tunnel)
    held = [make_image(run, f"h{i}.jpg", (i, i + 0.48), (0, 0.32), (480, 320)) for i in range(2)]
    default = ModelVersion.objects.create(
        name="default",
        path="default",
        architecture="Unet",
        encoder="mobilenet_v2",
        metrics={"val": {"f1": 0.72}},
    )
    services.activate_model_version(version=default, require_reason=False)
    adaptation = TrainingRun.objects.create(
        kind="adapt",
        config_name="unet-mobilenetv2-cpu-real",
        status="done",
        minutes=15,
        config={"new_share": 0.75},
        init_from=default,
        held_back=[h.pk for h in held],
        comparison={
            "baseline_model": "default",
            "baseline": {
                "held-back": {"f1": 0.31, "iou": 0.18},
                "cfd-test (first 20)": {"f1": 0.72, "iou": 0.56},
            },
            "held_back_rows": [
                {
                    "name": f"portal-{held[0].pk}",
                    "active_f1": 0.40,
                    "candidate_f1": 0.35,
                    "change": -0.05,
                },
                {
                    "name": f"portal-{held[1].pk}",
                    "active_f1": 0.22,
                    "candidate_f1": 0.61,
                    "change": 0.39,
                },
            ],
        },
    )
    adaptation.tunnels.set([tunnel])
    candidate = ModelVersion.objects.create(
        name="unet-mobilenetv2-run9",
        path="x",
        architecture="Unet",
        encoder="mobilenet_v2",
        training_run=adaptation,
        metrics={
            "held-back": {"f1": 0.54, "iou": 0.37},
            "cfd-test (first 20)": {"f1": 0.70, "iou": 0.54},
            "val": {"f1": 0.6},
        },
    )
    TrainingRun.objects.filter(pk=adaptation.pk).update(result=candidate)
    login(page, live_server, "admin", "admin-pass-123")
    # the runs list says what a timed adaptation is (its epochs read "0/0")
    page.goto(f"{live_server.url}/training/")
    row = page.inner_text(f'tr[data-run="{adaptation.pk}"]')
    assert "adaptation" in row and "0 in 15 min" in row and "/0" not in row
    page.goto(f"{live_server.url}/training/{adaptation.pk}/")
    page.wait_for_selector("#comparison-images")
    info = page.inner_text("#adapt-info")
    assert "T-TEST-01" in info and "75 % of the crops from the tunnels" in info
    splits = page.inner_text("#comparison-splits")
    assert "held-back" in splits and "+0.230" in splits and "-0.020" in splits
    rows = page.locator("#comparison-images tbody tr")
    assert rows.count() == 2 and "-0.050" in rows.nth(0).inner_text()
    # each names its photo and inspection (it said "image 12")
    assert f"{held[0].original_name} T-TEST-01" in rows.nth(0).inner_text()
    page.screenshot(path=str(artifacts_dir / "adapt-compare.png"), full_page=True)
    page.click("text=Make unet-mobilenetv2-run9 active…")
    page.wait_for_selector("#comparison")
    # worse on the base test images: a reason is due, and the held-back figures come first
    assert page.locator("#comparison tbody tr").first.get_attribute("data-split") == "held-back"
    assert "cfd-test (first 20)" in page.inner_text("#worse-warning")


def test_a_replaced_shipped_default_shows_on_the_models_page(
    live_server, page, admin_user, artifacts_dir, tmp_path, settings
):
    from tests.modelops.test_shipped_default_changes import _ship_new_weights, shipped_default_in

    folder = shipped_default_in(tmp_path, settings)
    first = services.active_model_version()
    _ship_new_weights(folder)  # an upgrade ships a retrained default over the folder
    second = services.active_model_version()
    login(page, live_server, "admin", "admin-pass-123")
    page.goto(f"{live_server.url}/models/")
    old_row = page.inner_text(f"tr[data-model='{first.name}']")
    assert "files replaced" in old_row and "Make active" not in old_row
    assert "active" in page.inner_text(f"tr[data-model='{second.name}']")
    latest = page.inner_text("#activations tbody tr:first-child")
    assert second.name in latest and "replaced on disk" in latest and "system" in latest
    page.screenshot(path=str(artifacts_dir / "model-default-replaced.png"), full_page=True)
