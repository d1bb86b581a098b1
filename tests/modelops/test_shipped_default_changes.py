"""An upgrade that ships a new default model over models/default: the registered version
must not silently run other files than it was registered with (its cracks, metrics and
growth figures would belong to a model that no longer exists). The new files become a new
version, activated with the reason recorded; the old version refuses to run."""

import importlib
import json
import shutil
from pathlib import Path

import pytest
from django.apps import apps
from django.urls import reverse
from safetensors.torch import load_file, save_file

from crackportal.modelops import services
from crackportal.modelops.models import UNRECORDED, ModelActivation, ModelFilesChanged, ModelVersion
from crackportal.modelops.predictors import get_predictor
from inference.config import fingerprint

ROOT = Path(__file__).resolve().parents[2]


def shipped_default_in(model_dir: Path, settings) -> Path:
    """A copy of the shipped default as MODEL_DIR/default, with MODEL_DIR pointed there."""
    shutil.copytree(
        ROOT / "models" / "default",
        model_dir / "default",
        ignore=shutil.ignore_patterns("*.onnx", "*.md"),
    )
    settings.MODEL_DIR = model_dir
    return model_dir / "default"


@pytest.fixture
def model_dir(tmp_path, settings):
    return shipped_default_in(tmp_path, settings)


def _ship_new_weights(folder: Path) -> None:
    """What `git pull` of a retrained default does to the folder."""
    weights = load_file(str(folder / "weights.safetensors"))
    key = next(k for k, v in weights.items() if v.is_floating_point())
    weights[key] = weights[key] * 0.5
    save_file(weights, str(folder / "weights.safetensors"))


def test_new_shipped_weights_become_a_new_version_and_the_old_one_refuses_to_run(
    db, model_dir, client, admin_user
):
    first = services.active_model_version()
    assert first.name == "default" and first.fingerprint == fingerprint(model_dir)

    _ship_new_weights(model_dir)
    second = services.active_model_version()
    files = fingerprint(model_dir)
    assert second.pk != first.pk and second.is_active
    assert (second.name, second.fingerprint) == (f"default-{files[:8]}", files)
    record = ModelActivation.objects.get(version=second)
    assert record.previous == first and "replaced on disk" in record.reason
    with pytest.raises(ModelFilesChanged, match="'default' cannot run"):
        get_predictor(first)
    assert get_predictor(second).config.threshold == second.config["threshold"]
    with pytest.raises(services.ActivationRefused, match="replaced the files"):
        services.activate_model_version(version=first, reason="roll back")
    client.force_login(admin_user)
    page = client.get(reverse("model-list")).content.decode()
    row = page[page.index('data-model="default"') :].split("</tr>")[0]
    assert "files replaced" in row and "Make active" not in row

    # asked again: the same version; new figures in config.json are not new files
    config = json.loads((model_dir / "config.json").read_text())
    config["metrics"]["val"] = {"f1": 0.5}
    (model_dir / "config.json").write_text(json.dumps(config))
    assert services.active_model_version() == second
    assert ModelVersion.objects.count() == 2


def test_a_default_registered_before_fingerprints_is_registered_again(db, model_dir):
    legacy = ModelVersion.objects.create(
        name="default",
        path="default",
        architecture="Unet",
        encoder="mobilenet_v2",
        fingerprint=UNRECORDED,
        is_active=True,  # as the migration leaves an install's active default
    )
    version = services.active_model_version()
    assert version != legacy and version.fingerprint == fingerprint(model_dir)
    assert "unrecorded" in ModelActivation.objects.get(version=version).reason
    with pytest.raises(ModelFilesChanged, match="before fingerprints were kept"):
        get_predictor(legacy)


def test_an_active_model_of_the_users_choice_stays_active(db, model_dir, tmp_path):
    services.active_model_version()
    adapted = tmp_path / "adapted"
    shutil.copytree(model_dir, adapted)
    mine = services.register_model_version(folder=adapted, name="tunnel-7-adapted")
    services.activate_model_version(version=mine, require_reason=False)
    _ship_new_weights(model_dir)
    assert services.active_model_version() == mine
    assert get_predictor(mine) is not None


def test_the_migration_marks_shipped_defaults_as_unrecorded(db, settings):
    migration = importlib.import_module("crackportal.modelops.migrations.0006_model_fingerprint")
    shipped = ModelVersion.objects.create(name="default", path=settings.DEFAULT_MODEL_NAME)
    trained = ModelVersion.objects.create(name="run-3", path="/var/models/run-3")
    migration.mark_shipped_defaults(apps, None)
    shipped.refresh_from_db(), trained.refresh_from_db()
    assert (shipped.fingerprint, trained.fingerprint) == (UNRECORDED, "")


def test_workers_run_int8_where_the_model_has_a_current_int8_file(db, model_dir, monkeypatch):
    """INFERENCE_BACKEND=openvino-int8: the shipped default's int8 file serves; a model whose
    int8 file was made from other weights runs on the default backend instead of failing."""
    from crackportal.modelops import predictors

    shutil.copy(ROOT / "models" / "default" / "model-int8.onnx", model_dir)
    monkeypatch.setenv("INFERENCE_BACKEND", "openvino-int8")
    monkeypatch.setattr(predictors, "_predictors", {})
    assert get_predictor(services.active_model_version()).backend_name == "openvino-int8"
    _ship_new_weights(model_dir)  # its int8 file now belongs to the old weights
    assert get_predictor(services.active_model_version()).backend_name != "openvino-int8"
