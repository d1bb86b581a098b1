"""Model versions: registering the shipped default, choosing the active one."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from crackportal.modelops.models import ModelVersion
from inference.config import ModelConfig


class NoModelError(RuntimeError):
    """No active model version and no shipped default to register."""


def register_model_version(
    *, folder: Path | str, name: str | None = None, activate: bool = False, training_run=None
) -> ModelVersion:
    """Record a model-version folder (it must load) in the registry."""
    folder = Path(folder)
    config = ModelConfig.load(folder / "config.json")
    try:
        stored_path = str(folder.resolve().relative_to(Path(settings.MODEL_DIR).resolve()))
    except ValueError:
        stored_path = str(folder.resolve())
    version = ModelVersion.objects.create(
        name=name or config.name,
        path=stored_path,
        architecture=config.architecture,
        encoder=config.encoder,
        metrics=config.metrics,
        config={k: v for k, v in config.__dict__.items() if k not in ("metrics", "provenance")},
        training_run=training_run,
    )
    if activate:
        activate_model_version(version=version)
    return version


@transaction.atomic
def activate_model_version(*, version: ModelVersion) -> ModelVersion:
    """Make version the one the workers use (promote or roll back)."""
    ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
    version.is_active = True
    version.activated_at = timezone.now()
    version.save(update_fields=["is_active", "activated_at"])
    return version


def active_model_version() -> ModelVersion:
    """The active version; on a fresh install, the shipped default is registered and activated."""
    version = ModelVersion.objects.filter(is_active=True).first()
    if version is not None:
        return version
    folder = Path(settings.MODEL_DIR) / settings.DEFAULT_MODEL_NAME
    if not (folder / "config.json").is_file():
        raise NoModelError(f"no active model version and no default model at {folder}")
    try:
        with transaction.atomic():
            existing = (
                ModelVersion.objects.select_for_update()
                .filter(name=settings.DEFAULT_MODEL_NAME)
                .first()
            )
            version = existing or register_model_version(
                folder=folder, name=settings.DEFAULT_MODEL_NAME
            )
            if not ModelVersion.objects.filter(is_active=True).exists():
                activate_model_version(version=version)
    except IntegrityError:
        # two workers of a fresh install registered it at the same moment: the other won,
        # and its transaction (registration and activation) has committed
        pass
    return ModelVersion.objects.get(is_active=True)
