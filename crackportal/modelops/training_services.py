"""Services for training runs started from the portal: queue, run on the training queue, record, register."""

from __future__ import annotations

import json
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from crackportal import jobs, media
from crackportal.modelops.models import ModelVersion, TrainingRun
from crackportal.modelops.services import register_model_version
from training.shares import BALANCED_SHARE

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


def network_differences(version, config: dict) -> list[str]:
    """The network settings in which a training config differs from a model version's."""
    from inference.config import ModelConfig

    ours = ModelConfig.from_dict(config["model"]).__dict__
    return [k for k in NETWORK_KEYS if version.config.get(k) != ours.get(k)]


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
    active = ModelVersion.objects.filter(is_active=True).first()
    configs = {}
    for name in available_configs():
        data = load_config(name)
        train = data.get("train", {})
        configs[name] = {
            "epochs": train.get("epochs", 40),
            "crops_per_epoch": train.get("crops_per_epoch"),
            "val_fraction": train.get("val_fraction", 0.15),
            # can it start from the active model's weights (the same network)?
            "fits_active": active is not None and not network_differences(active, data),
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
        different = network_differences(init_from, config)
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


def _annotation_samples(tunnel_ids: list[int] | None = None):
    """The newest verified annotation of each image (of these tunnels, when given)."""
    from crackportal.inspections.models import Annotation
    from training.data import Sample

    annotations = Annotation.objects.filter(is_current=True).select_related("image")
    if tunnel_ids is not None:
        annotations = annotations.filter(image__run__tunnel_id__in=tunnel_ids)
    samples, seen = [], set()
    for annotation in annotations:
        if annotation.image_id in seen or not annotation.image.file:
            continue  # the newest annotation of an image wins
        seen.add(annotation.image_id)
        with annotation.image.file.open("rb") as fh, Image.open(fh) as im:
            rgb = np.asarray(im.convert("RGB"))
        with annotation.mask.open("rb") as fh, Image.open(fh) as im:
            mask = np.asarray(im.convert("L")) > 127
        if mask.shape != rgb.shape[:2]:
            continue  # a mask of another size cannot teach this image
        samples.append(Sample(f"portal-{annotation.image_id}", rgb, mask))
    return samples


def annotation_counts_by_tunnel() -> dict[int, int]:
    """Tunnel id -> images with a verified annotation."""
    from django.db.models import Count

    from crackportal.inspections.models import Annotation

    rows = (
        Annotation.objects.values("image__run__tunnel_id")
        .annotate(n=Count("image", distinct=True))
        .order_by()
    )
    return {r["image__run__tunnel_id"]: r["n"] for r in rows}


MIN_ADAPT_IMAGES = 2  # one to learn from, one to hold back


def start_adaptation(
    *, tunnels, minutes: float, share: float = BALANCED_SHARE, created_by=None
) -> TrainingRun:
    """Queue "adapt the active model to these tunnels" (one run at a time); share: the part
    of the training crops cut from the tunnels' images, the rest from the base datasets."""
    from crackportal.modelops.services import active_model_version

    tunnels = list(tunnels)
    if not tunnels:
        raise TrainingError("choose at least one tunnel")
    if not 0.5 <= minutes <= 600:
        raise TrainingError("the time budget must be between 0.5 and 600 minutes")
    if not 0.05 <= share <= 0.95:
        raise TrainingError("the tunnels' share of the crops must be between 0.05 and 0.95")
    counts = annotation_counts_by_tunnel()
    have = sum(counts.get(t.pk, 0) for t in tunnels)
    if have < MIN_ADAPT_IMAGES:
        raise TrainingError(
            f"adapting needs at least {MIN_ADAPT_IMAGES} images with a verified annotation in "
            f"the chosen tunnels; they have {have}"
        )
    init_from = active_model_version()
    config = load_config(DEFAULT_CONFIG)
    config["base_datasets"] = available_datasets()  # as configured now, read by the worker
    config["new_share"] = share
    with transaction.atomic():
        if TrainingRun.objects.select_for_update().filter(status__in=ACTIVE).exists():
            raise TrainingError(
                "a training run is already queued or running; wait for it or cancel it"
            )
        run = TrainingRun.objects.create(
            kind=TrainingRun.Kind.ADAPT,
            config_name=DEFAULT_CONFIG,
            config=config,
            include_annotations=True,
            init_from_active=True,
            init_from=init_from,
            minutes=minutes,
            epochs=0,
            created_by=created_by,
        )
        run.tunnels.set(tunnels)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _log(run_id: int, line: str) -> None:
    run = TrainingRun.objects.get(pk=run_id)
    run.log_tail = "\n".join((run.log_tail.splitlines() + [line])[-40:])
    run.save(update_fields=["log_tail"])


def _callbacks(run_id: int):
    """(progress after each epoch, step_progress inside epochs): both store what the page
    shows and answer False once a cancel was asked for."""
    points: list[list[float]] = []

    def progress(report) -> bool:
        row = {k: round(v, 5) if isinstance(v, float) else v for k, v in report.__dict__.items()}
        current = TrainingRun.objects.get(pk=run_id)
        current.epoch = report.epoch
        current.history = [*current.history, row]
        current.save(update_fields=["epoch", "history"])
        _log(
            run_id,
            f"epoch {report.epoch}: loss {report.train_loss:.4f} "
            f"val F1 {report.val_f1:.4f} IoU {report.val_iou:.4f}",
        )
        return not current.cancel_requested

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

    return progress, step_progress


def _workdir(run: TrainingRun) -> Path:
    # unique per run (ids can repeat after a database reset); the same run resumes its own checkpoint
    return Path(settings.VAR_DIR) / "training" / f"run-{run.pk}-{run.created_at:%Y%m%dT%H%M%S%f}"


def _register(
    run: TrainingRun, state_dict, model_config, metrics: dict, provenance: dict, samples=()
):
    """Export the model, make its int8 file from crops of the run's training images (so a CPU
    worker can run it as fast as the default), publish and register it (not activated)."""
    from training.export import export_model_version

    model_config.name = f"{model_config.name}-run{run.pk}"
    model_config.provenance = {"command": f"portal training run #{run.pk}", **provenance}
    model_config.metrics = metrics
    folder = Path(settings.TRAINED_MODEL_DIR) / model_config.name
    export_model_version(state_dict, model_config, folder)
    if samples:
        _quantize(run, folder, model_config, samples)
    # a copy in media storage: inference workers on other hosts load it from there
    prefix = f"models/{model_config.name}"
    media.publish_tree(folder, prefix)
    return register_model_version(
        folder=folder, name=model_config.name, training_run=run, stored_prefix=prefix
    )


def _quantize(run: TrainingRun, folder: Path, model_config, samples) -> None:
    """model-int8.onnx beside the weights, calibrated on 40 crops of the run's images; where
    that fails the model still registers and runs in float ("auto" passes over int8)."""
    try:
        from inference.backends import openvino_available
        from inference.quantize import crops_of_images, quantize

        if not openvino_available():
            return
        crops = crops_of_images(model_config, [s.image for s in samples])
        quantize(folder, crops, f"{len(crops)} crops of training run #{run.pk}'s images")
        _log(run.pk, f"int8 model made from {len(crops)} crops of this run's images")
    except Exception as exc:  # the float model is still good
        _log(run.pk, f"no int8 model ({type(exc).__name__}: {exc}); it runs in float")


def execute_training_run(*, run_id: int) -> None:
    """Train (or adapt), save progress, export and register the result (not activated)."""
    from training.loop import CancelledError

    claimable = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.PENDING)
    if not jobs.claim(claimable, status=TrainingRun.Status.RUNNING, started_at=timezone.now()):
        return
    run = TrainingRun.objects.select_related("init_from").get(pk=run_id)
    # each ending writes its last log line before the status: whoever sees the run finished
    # (its page, a poll) also sees why
    try:
        if run.kind == TrainingRun.Kind.ADAPT:
            version = _adapt(run)
        else:
            version = _train(run)
        _log(run_id, f"done: model version {version.name}")
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingRun.Status.DONE, finished_at=timezone.now(), result=version
        )
    except CancelledError as exc:
        _log(run_id, str(exc))
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingRun.Status.CANCELLED, finished_at=timezone.now()
        )
    except Exception as exc:
        _log(run_id, traceback.format_exc(limit=3))
        jobs.fail(TrainingRun, run_id, exc, finished_at=timezone.now())


def _init_state(run: TrainingRun):
    if run.init_from is None:
        return None
    from inference.predictor import _load_state_dict

    _log(run.pk, f"starting from the weights of {run.init_from.name}")
    return _load_state_dict(run.init_from.folder)


def _train(run: TrainingRun):
    from inference.config import ModelConfig
    from training.data import load_dataset
    from training.loop import TrainSettings, train

    samples, problems = [], []
    if run.dataset:
        root = Path(run.dataset)
        found, problems = load_dataset(root, "train" if (root / "train").is_dir() else None)
        samples += found
    if run.include_annotations:
        samples += _annotation_samples()
    for problem in problems[:20]:
        _log(run.pk, f"skipped: {problem}")
    if not samples:
        raise TrainingError("no training images: the dataset is empty and there are no annotations")
    _log(run.pk, f"training {run.config_name} on {len(samples)} images")
    model_config = ModelConfig.from_dict(run.config["model"])
    progress, step_progress = _callbacks(run.pk)
    result = train(
        samples,
        model_config,
        # a Celery pool process is a daemon: no loader processes of its own
        replace(TrainSettings(**run.config.get("train", {})), num_workers=0),
        _workdir(run),
        progress=progress,
        resume=True,
        init_state=_init_state(run),
        step_progress=step_progress,
        step_every_s=CANCEL_CHECK_S,
    )
    model_config.threshold = result.threshold
    provenance = {
        "data": [run.dataset or "(none)"]
        + (["portal annotations"] if run.include_annotations else []),
        **({"initialised_from": run.init_from.name} if run.init_from else {}),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 1),
        "machine": "portal training worker",
    }
    metrics = {"val": {k: round(v, 4) for k, v in result.best_val.items()}}
    return _register(run, result.state_dict, model_config, metrics, provenance, samples)


def _base_samples(datasets: dict[str, str]):
    """Each base dataset's train split (source = its name)."""
    from training.data import load_train_split

    return [s for name, folder in datasets.items() for s in load_train_split(folder, name)[0]]


def _test_samples(datasets: dict[str, str], limit: int):
    """The first `limit` test images (by name) of each base dataset that has a test split."""
    from training.data import find_pairs, load_samples

    out = {}
    for name, folder in datasets.items():
        if not (Path(folder) / "test").is_dir():
            continue
        pairs, _ = find_pairs(folder, "test")
        samples, _ = load_samples(sorted(pairs, key=lambda p: p.name)[:limit])
        if samples:
            out[name] = samples
    return out


def _rounded(figures: dict) -> dict:
    return {k: round(v, 4) for k, v in figures.items() if isinstance(v, float)}


def _adapt(run: TrainingRun):
    """Fine-tune the active model on the tunnels' verified annotations (a fifth held back)
    plus a share of the base datasets; then judge it against the model it started from."""
    import inference
    from inference.backends import openvino_available
    from training.adapt import AdaptSettings, adapt, compare, hold_back, judge

    tunnel_ids = list(run.tunnels.values_list("pk", flat=True))
    samples = _annotation_samples(tunnel_ids)
    learn, held = hold_back(samples)
    if not learn or not held:
        raise TrainingError(
            f"adapting needs at least {MIN_ADAPT_IMAGES} annotated images; found {len(samples)}"
        )
    held_ids = [int(s.name.split("-")[1]) for s in held]
    TrainingRun.objects.filter(pk=run.pk).update(held_back=held_ids)
    datasets = {n: f for n, f in run.config.get("base_datasets", {}).items() if Path(f).is_dir()}
    base = _base_samples(datasets)
    share = float(run.config.get("new_share", AdaptSettings.new_share))
    # a Celery pool process is a daemon: no loader processes of its own
    adapt_settings = AdaptSettings(minutes=run.minutes or 15.0, new_share=share, num_workers=0)
    checkpoint_rule = (
        f"checkpoint from the epochs ending after {adapt_settings.select_from:.0%} of the time"
    )
    _log(
        run.pk,
        f"adapting {run.init_from.name} to {len(tunnel_ids)} tunnel(s): {len(learn)} annotated "
        f"images (+{len(held)} held back), base datasets {', '.join(datasets) or '—'}; "
        f"{run.minutes:g} min, {share:.0%} of the crops from the tunnels, "
        f"{adapt_settings.batch_size} a step; {checkpoint_rule}",
    )
    progress, step_progress = _callbacks(run.pk)
    model_config, result = adapt(
        _init_state(run),
        learn,
        base,
        _workdir(run),
        adapt_settings,
        progress=progress,
        step_progress=step_progress,
    )
    from training.export import export_model_version

    # judge the candidate against the model it started from, on the same images
    folder = _workdir(run) / "candidate"
    export_model_version(result.state_dict, model_config, folder)
    # both in float32, so the comparison is of the weights alone (on a CPU "auto" may run the
    # active model in int8, while the candidate has no int8 file yet)
    float32 = "openvino" if openvino_available() else "auto"
    active = inference.load(run.init_from.folder, backend=float32)
    candidate = inference.load(folder, backend=float32)
    _log(run.pk, f"judging on {len(held)} held-back images and the base test splits")
    held_active, held_candidate = judge(active, held), judge(candidate, held)
    tests = {}
    for name, test in _test_samples(datasets, settings.ADAPT_TEST_IMAGES).items():
        tests[name] = {"active": judge(active, test), "candidate": judge(candidate, test)}
    metrics = {
        "held-back": _rounded(held_candidate),
        **{
            f"{n}-test (first {settings.ADAPT_TEST_IMAGES})": _rounded(t["candidate"])
            for n, t in tests.items()
        },
        "val": {k: round(v, 4) for k, v in result.best_val.items()},
    }
    baseline = {
        "held-back": _rounded(held_active),
        **{
            f"{n}-test (first {settings.ADAPT_TEST_IMAGES})": _rounded(t["active"])
            for n, t in tests.items()
        },
    }
    TrainingRun.objects.filter(pk=run.pk).update(
        comparison={
            "baseline_model": run.init_from.name,
            "baseline": baseline,
            "held_back_rows": compare(held_active, held_candidate),
        }
    )
    provenance = {
        "data": [f"verified annotations of tunnel(s) {', '.join(map(str, tunnel_ids))}"]
        + [f"{name} (train split, share)" for name in datasets],
        "initialised_from": run.init_from.name,
        "held_back_images": held_ids,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "checkpoint": checkpoint_rule,
        "train_seconds": round(result.seconds, 1),
        "machine": "portal training worker",
    }
    return _register(run, result.state_dict, model_config, metrics, provenance, learn + base)
