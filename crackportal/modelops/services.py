"""Model versions: registering the shipped default, choosing the active one, safely."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from crackportal.modelops.models import UNRECORDED, ModelActivation, ModelVersion
from inference.config import ModelConfig, fingerprint


class NoModelError(RuntimeError):
    """No active model version and no shipped default to register."""


class ActivationRefused(ValueError):
    """An activation that needs a stated reason (the candidate is worse) and has none."""


COMPARED = ("f1", "iou", "ods")
WORSE_BY = 0.005  # an F1 this much below the active model's counts as worse


@dataclass
class Comparison:
    """A candidate's figures beside the active model's, split by split."""

    rows: list[dict] = field(default_factory=list)  # split, candidate, active, delta_f1
    worse_on: list[str] = field(default_factory=list)


def _figures(metrics: dict) -> dict:
    return {k: metrics[k] for k in COMPARED if isinstance(metrics.get(k), int | float)}


def compare_versions(candidate: ModelVersion, active: ModelVersion | None) -> Comparison:
    """Rows for every split either model has figures on; worse_on = the splits both have where
    the candidate's F1 is lower by more than WORSE_BY (held-back images first, then the test
    splits). Each model's own validation split counts only when they share nothing else:
    validation splits of different training data are not the same images."""
    comparison = Comparison()
    theirs = active.metrics if active is not None and active.pk != candidate.pk else {}
    run = candidate.training_run
    if run is not None and active is not None and active.pk != candidate.pk:
        # an adaptation judged the model it started from on the same images: use those figures
        if run.comparison.get("baseline_model") == active.name:
            theirs = {**theirs, **run.comparison.get("baseline", {})}
    order = lambda split: (not split.startswith("held-back"), split == "val", split)  # noqa: E731
    for split in sorted(set(candidate.metrics) | set(theirs), key=order):
        mine, other = _figures(candidate.metrics.get(split, {})), _figures(theirs.get(split, {}))
        delta = mine["f1"] - other["f1"] if "f1" in mine and "f1" in other else None
        comparison.rows.append(
            {"split": split, "candidate": mine, "active": other, "delta_f1": delta}
        )
        if delta is not None and delta < -WORSE_BY:
            comparison.worse_on.append(split)
    shared = [r["split"] for r in comparison.rows if r["delta_f1"] is not None]
    if any(split != "val" for split in shared):
        # different images: no change to show (an adaptation's own validation split is the
        # tunnel's images, the active model's its training data's) and none to judge by
        for row in comparison.rows:
            if row["split"] == "val":
                row["delta_f1"] = None
        if "val" in comparison.worse_on:
            comparison.worse_on.remove("val")
    return comparison


def register_model_version(
    *,
    folder: Path | str,
    name: str | None = None,
    activate: bool = False,
    training_run=None,
    stored_prefix: str = "",
) -> ModelVersion:
    """Record a model-version folder (it must load) in the registry; stored_prefix: where a
    copy lies in media storage, for workers on hosts without the folder."""
    folder = Path(folder)
    config = ModelConfig.load(folder / "config.json")
    try:
        stored_path = str(folder.resolve().relative_to(Path(settings.MODEL_DIR).resolve()))
    except ValueError:
        stored_path = str(folder.resolve())
    try:
        files = fingerprint(folder)
    except FileNotFoundError:  # no weights file here: not checked (inference.load will say)
        files = ""
    version = ModelVersion.objects.create(
        name=name or config.name,
        path=stored_path,
        architecture=config.architecture,
        encoder=config.encoder,
        fingerprint=files,
        metrics=config.metrics,
        config={k: v for k, v in config.__dict__.items() if k not in ("metrics", "provenance")},
        training_run=training_run,
        stored_prefix=stored_prefix,
    )
    if activate:
        activate_model_version(version=version, require_reason=False)
    return version


@transaction.atomic
def activate_model_version(
    *, version: ModelVersion, by=None, reason: str = "", require_reason: bool = True
) -> ModelVersion:
    """Make version the one the workers use (promote or roll back), and keep the record.

    A version worse than the active one (see `compare_versions`) needs a stated reason unless
    require_reason is False (the system's own activation of the shipped default). A shipped
    default whose files a newer one has replaced cannot run, so it is refused.
    """
    if files_replaced(version):
        raise ActivationRefused(
            f"{version.name} cannot be made active: a newer shipped default has replaced the "
            "files it was registered with (its cracks keep its name)"
        )
    active = ModelVersion.objects.select_for_update().filter(is_active=True).first()
    if active is not None and active.pk == version.pk:
        return version
    comparison = compare_versions(version, active)
    reason = reason.strip()
    if comparison.worse_on and require_reason and not reason:
        raise ActivationRefused(
            f"{version.name} is worse than the active {active.name} on "
            f"{', '.join(comparison.worse_on)}: state a reason to make it active anyway"
        )
    ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
    version.is_active = True
    version.activated_at = timezone.now()
    version.save(update_fields=["is_active", "activated_at"])
    ModelActivation.objects.create(
        version=version,
        previous=active,
        activated_by=by,
        reason=reason,
        worse_on=comparison.worse_on,
        comparison=comparison.rows,
    )
    return version


def _default_folder() -> Path:
    return Path(settings.MODEL_DIR) / settings.DEFAULT_MODEL_NAME


def files_replaced(version: ModelVersion) -> bool:
    """version was registered from the shipped default's folder, which now holds other files
    (an upgrade shipped a newer default over it)."""
    if version.path != settings.DEFAULT_MODEL_NAME:
        return False
    return version.replaced_by(_default_folder()) is not None


def active_model_version() -> ModelVersion:
    """The active version. On a fresh install the shipped default is registered and activated;
    where an upgrade has replaced the shipped default's files under the active version, they
    are registered as a new version (`default-<fingerprint>`) and activated, with the reason
    recorded: the cracks measured before keep the version that measured them."""
    version = ModelVersion.objects.filter(is_active=True).first()
    if version is not None and not files_replaced(version):
        return version
    folder = _default_folder()
    if not (folder / "config.json").is_file():
        raise NoModelError(f"no active model version and no default model at {folder}")
    files = fingerprint(folder)
    try:
        with transaction.atomic():
            active = ModelVersion.objects.select_for_update().filter(is_active=True).first()
            if active is not None and not files_replaced(active):
                return active  # another worker got here first
            shipped = ModelVersion.objects.select_for_update().filter(
                path=settings.DEFAULT_MODEL_NAME, fingerprint__in=["", files]
            )
            version = shipped.order_by("pk").first()
            if version is None:
                taken = ModelVersion.objects.filter(name=settings.DEFAULT_MODEL_NAME).exists()
                name = f"{settings.DEFAULT_MODEL_NAME}-{files[:8]}" if taken else None
                version = register_model_version(
                    folder=folder, name=name or settings.DEFAULT_MODEL_NAME
                )
            if active is None:
                reason = "the shipped default, registered on first use"
            else:
                was = "unrecorded" if active.fingerprint == UNRECORDED else active.fingerprint[:8]
                reason = (
                    f"the shipped default model was replaced on disk (files {was} → "
                    f"{files[:8]}): {active.name} cannot run any more, {version.name} does"
                )
            activate_model_version(version=version, reason=reason, require_reason=False)
    except IntegrityError:
        # two workers registered it at the same moment: the other won, and its transaction
        # (registration and activation) has committed
        pass
    return ModelVersion.objects.get(is_active=True)
