"""Services for training runs started from the portal: queue, run on the training queue, record, register."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from crackportal import jobs
from crackportal.modelops.models import TrainingRun
from crackportal.modelops.services import register_model_version

CONFIG_DIR = Path(settings.BASE_DIR) / "training" / "configs"
ACTIVE = (TrainingRun.Status.PENDING, TrainingRun.Status.RUNNING)
# the shipped recipe, sized for the CPU: a fine-tune of the active model on the five-dataset
# mix (models/default/MODEL_CARD.md); what the training form starts from
DEFAULT_CONFIG = "unet-mobilenetv2-cpu-real"
NETWORK_KEYS = ("architecture", "encoder", "encoder_depth", "decoder_channels", "in_channels")
CANCEL_CHECK_S = 5.0  # a running run looks for a cancel this often (inside epochs too)
LIVE_POINTS = 400  # points of the running-loss curve kept


class TrainingError(ValueError):
    """A training run that cannot be started; the message is for the admin."""


def available_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name: str) -> dict:
    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


def verified_annotation_count() -> int:
    """Images with a verified annotation: what "include the portal's annotations" adds."""
    from crackportal.inspections.models import Annotation

    return Annotation.objects.values("image").distinct().count()


def _dataset_images(folder: str) -> int:
    root = Path(folder)
    images = root / "train" / "images" if (root / "train" / "images").is_dir() else root / "images"
    return sum(1 for p in images.iterdir() if p.is_file()) if images.is_dir() else 0


def estimate_minutes(config: dict, images: int, epochs: int | None = None) -> float:
    """Rough training time on this host: crops per epoch at TRAINING_SECONDS_PER_CROP, plus a
    whole-image validation pass over the validation share at TRAINING_SECONDS_PER_VAL_IMAGE."""
    train = config.get("train", {})
    epochs = epochs or train.get("epochs", 40)
    crops = train.get("crops_per_epoch") or max(100, images)
    val_images = max(1, round(images * train.get("val_fraction", 0.15))) if images else 0
    per_epoch = crops * settings.TRAINING_SECONDS_PER_CROP + (
        val_images * settings.TRAINING_SECONDS_PER_VAL_IMAGE
    )
    return epochs * per_epoch / 60


def form_facts() -> dict:
    """What the training form shows beside its fields: each config's epochs and crops, each
    dataset's image count, the verified annotations, and the per-crop time used to estimate."""
    configs = {}
    for name in available_configs():
        train = load_config(name).get("train", {})
        configs[name] = {
            "epochs": train.get("epochs", 40),
            "crops_per_epoch": train.get("crops_per_epoch"),
            "val_fraction": train.get("val_fraction", 0.15),
        }
    return {
        "configs": configs,
        "datasets": {name: _dataset_images(path) for name, path in available_datasets().items()},
        "annotations": verified_annotation_count(),
        "seconds_per_crop": settings.TRAINING_SECONDS_PER_CROP,
        "seconds_per_val_image": settings.TRAINING_SECONDS_PER_VAL_IMAGE,
    }


def available_datasets() -> dict[str, str]:
    """Dataset name → folder, from settings.TRAINING_DATASETS, keeping those that exist."""
    return {name: path for name, path in settings.TRAINING_DATASETS.items() if Path(path).is_dir()}


def start_training_run(
    *,
    config_name: str,
    dataset: str,
    include_annotations: bool,
    epochs: int | None = None,
    init_from_active: bool = False,
    created_by=None,
) -> TrainingRun:
    """Record a training run and queue it (one at a time).

    init_from_active fine-tunes the active model: the configuration must describe the same
    network (architecture, encoder, depth, decoder channels)."""
    if config_name not in available_configs():
        raise TrainingError(
            f"unknown config {config_name!r}; choose one of {', '.join(available_configs())}"
        )
    datasets = available_datasets()
    if dataset and dataset not in datasets:
        raise TrainingError(f"unknown dataset {dataset!r}")
    if not dataset and not include_annotations:
        raise TrainingError("choose a dataset, or include the portal's annotations, or both")
    config = load_config(config_name)
    if epochs:
        config.setdefault("train", {})["epochs"] = int(epochs)
    init_from = None
    if init_from_active:
        from crackportal.modelops.services import active_model_version

        init_from = active_model_version()
        theirs = {k: init_from.config.get(k) for k in NETWORK_KEYS}
        from inference.config import ModelConfig

        ours = ModelConfig.from_dict(config["model"]).__dict__
        different = [k for k in NETWORK_KEYS if theirs.get(k) != ours.get(k)]
        if different:
            raise TrainingError(
                f"{config_name} builds a different network from the active model "
                f"{init_from.name} ({', '.join(different)}): choose a configuration of the same "
                "network, or untick 'start from the active model'"
            )
    with transaction.atomic():
        if TrainingRun.objects.select_for_update().filter(status__in=ACTIVE).exists():
            raise TrainingError(
                "a training run is already queued or running; wait for it or cancel it"
            )
        run = TrainingRun.objects.create(
            config_name=config_name,
            config=config,
            dataset=datasets.get(dataset, ""),
            include_annotations=include_annotations,
            init_from_active=init_from is not None,
            init_from=init_from,
            epochs=config.get("train", {}).get("epochs", 0),
            created_by=created_by,
        )
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def retry_training_run(*, run: TrainingRun, created_by=None) -> TrainingRun:
    """Queue a failed or cancelled run again as a new run with the same settings."""
    if run.status not in (TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED):
        raise TrainingError("only a failed or cancelled training run can be started again")
    with transaction.atomic():
        if TrainingRun.objects.select_for_update().filter(status__in=ACTIVE).exists():
            raise TrainingError(
                "a training run is already queued or running; wait for it or cancel it"
            )
        again = TrainingRun.objects.create(
            config_name=run.config_name,
            config=run.config,
            dataset=run.dataset,
            include_annotations=run.include_annotations,
            init_from_active=run.init_from_active,
            init_from=run.init_from,
            epochs=run.epochs,
            created_by=created_by,
        )
        transaction.on_commit(lambda: _enqueue(again.pk))
    return again


def _enqueue(run_id: int) -> None:
    from crackportal.modelops.tasks import train_model_task

    train_model_task.delay(run_id)


def request_cancel(*, run: TrainingRun) -> None:
    """Ask a run to stop: a running one stops within CANCEL_CHECK_S seconds and the current
    training step (a validation pass under way finishes first); a queued one at once."""
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.PENDING).update(
        status=TrainingRun.Status.CANCELLED, finished_at=timezone.now(), cancel_requested=True
    )
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
        cancel_requested=True
    )


def _annotation_samples():
    from crackportal.inspections.models import Annotation
    from training.data import Sample

    samples, seen = [], set()
    for annotation in Annotation.objects.select_related("image").order_by("-created_at"):
        if annotation.image_id in seen or not annotation.image.file:
            continue  # the newest annotation of an image wins
        seen.add(annotation.image_id)
        with annotation.image.file.open("rb") as fh, Image.open(fh) as im:
            rgb = np.asarray(im.convert("RGB"))
        with annotation.mask.open("rb") as fh, Image.open(fh) as im:
            mask = np.asarray(im.convert("L")) > 127
        samples.append(Sample(f"portal-{annotation.image_id}", rgb, mask))
    return samples


def _log(run_id: int, line: str) -> None:
    run = TrainingRun.objects.get(pk=run_id)
    run.log_tail = "\n".join((run.log_tail.splitlines() + [line])[-40:])
    run.save(update_fields=["log_tail"])


def execute_training_run(*, run_id: int) -> None:
    """Train, save progress per epoch, export and register the result (not activated)."""
    from inference.config import ModelConfig
    from training.data import load_dataset
    from training.export import export_model_version
    from training.loop import CancelledError, TrainSettings, train

    claimable = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.PENDING)
    if not jobs.claim(claimable, status=TrainingRun.Status.RUNNING, started_at=timezone.now()):
        return
    run = TrainingRun.objects.get(pk=run_id)
    try:
        samples, problems = [], []
        if run.dataset:
            root = Path(run.dataset)
            found, problems = load_dataset(root, "train" if (root / "train").is_dir() else None)
            samples += found
        if run.include_annotations:
            samples += _annotation_samples()
        for problem in problems[:20]:
            _log(run_id, f"skipped: {problem}")
        if not samples:
            raise TrainingError(
                "no training images: the dataset is empty and there are no annotations"
            )
        _log(run_id, f"training {run.config_name} on {len(samples)} images")
        model_config = ModelConfig.from_dict(run.config["model"])
        train_settings = TrainSettings(**run.config.get("train", {}))
        init_state = None
        if run.init_from is not None:
            from inference.predictor import _load_state_dict

            init_state = _load_state_dict(run.init_from.folder)
            _log(run_id, f"starting from the weights of {run.init_from.name}")

        def progress(report) -> bool:
            row = {
                k: round(v, 5) if isinstance(v, float) else v for k, v in report.__dict__.items()
            }
            current = TrainingRun.objects.get(pk=run_id)
            current.epoch = report.epoch
            current.history = [*current.history, row]
            current.save(update_fields=["epoch", "history"])
            _log(
                run_id,
                f"epoch {report.epoch}/{report.epochs}: loss {report.train_loss:.4f} "
                f"val F1 {report.val_f1:.4f} IoU {report.val_iou:.4f}",
            )
            return not current.cancel_requested

        points: list[list[float]] = []

        def step_progress(report) -> bool:
            if report.steps and report.train_loss == report.train_loss:  # not NaN
                points.append(
                    [
                        round(report.epoch - 1 + report.step / report.steps, 4),
                        round(report.train_loss, 5),
                    ]
                )
            live = {
                "epoch": report.epoch,
                "step": report.step,
                "steps": report.steps,
                "train_loss": round(report.train_loss, 5) if points else None,
                "seconds": round(report.seconds, 1),
                "points": points[-LIVE_POINTS:],
            }
            TrainingRun.objects.filter(pk=run_id).update(live=live)
            return not TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()

        # unique per run (ids can repeat after a database reset); the same run resumes its own checkpoint
        workdir = (
            Path(settings.VAR_DIR) / "training" / f"run-{run_id}-{run.created_at:%Y%m%dT%H%M%S%f}"
        )
        result = train(
            samples,
            model_config,
            train_settings,
            workdir,
            progress=progress,
            resume=True,
            init_state=init_state,
            step_progress=step_progress,
            step_every_s=CANCEL_CHECK_S,
        )
        model_config.threshold = result.threshold
        model_config.name = f"{model_config.name}-run{run_id}"
        model_config.provenance = {
            "data": [run.dataset or "(none)"]
            + (["portal annotations"] if run.include_annotations else []),
            **({"initialised_from": run.init_from.name} if run.init_from else {}),
            "command": f"portal training run #{run_id}",
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 1),
            "machine": "portal training worker",
        }
        model_config.metrics = {"val": {k: round(v, 4) for k, v in result.best_val.items()}}
        folder = Path(settings.TRAINED_MODEL_DIR) / model_config.name
        export_model_version(result.state_dict, model_config, folder)
        version = register_model_version(folder=folder, name=model_config.name, training_run=run)
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingRun.Status.DONE, finished_at=timezone.now(), result=version
        )
        _log(
            run_id,
            f"done: model version {version.name} (val F1 {result.best_val.get('f1', 0):.4f})",
        )
    except CancelledError as exc:
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingRun.Status.CANCELLED, finished_at=timezone.now()
        )
        _log(run_id, str(exc))
    except Exception as exc:
        jobs.fail(TrainingRun, run_id, exc, finished_at=timezone.now())
        _log(run_id, traceback.format_exc(limit=3))
