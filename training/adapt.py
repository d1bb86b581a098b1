"""Adapt a model to a new surface: fine-tune it on a few verified images of that surface plus
a share of the base datasets (so it forgets nothing), within a time budget.

The portal's "Adapt to this tunnel" action (crackportal/modelops/training_services.py) and
`python -m training.adapt_bench` both run `adapt`; `judge` scores a predictor image by image
on images it was not trained on (the portal's held-back fifth, a test split).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

from inference.config import ModelConfig
from training.data import Sample
from training.loop import TrainResult, TrainSettings, load_run_config, train
from training.metrics import PixelCounter, ToleranceCounter
from training.shares import BALANCED_SHARE
from training.widen import decoder_widths

RECIPE = Path(__file__).resolve().parent / "configs" / "unet-mobilenetv2-cpu-real.json"
NEW = "new"  # the source name of the surface's own images in the mix


@dataclass
class AdaptSettings:
    minutes: float = 15.0  # training time (validation included), then it stops
    # share of training crops cut from the new surface's images; TUNNELS_FIRST_SHARE (the
    # portal's "these tunnels first") scored higher on the surface's left-out images and forgot
    # more of the base: adapting to tunnel-lining, the base datasets' never-drawn train images
    # fell by 0.041 F1 against half's 0.007 (training.adapt_bench --base-images, README)
    new_share: float = BALANCED_SHARE
    # peak learning rate of the one-cycle schedule (None: the recipe's 3e-4, which suits a long
    # fine-tune on all datasets). From the 64-32-16-8 zero-shot model, 20 images, 15 minutes
    # on a 2-core EPYC, 6e-4 scored higher on the surface's left-out train images (tunnel-
    # lining 0.549 -> 0.568 and 0.567, concrete-uav 0.707 -> 0.722 and 0.719) and forgot less
    # of the base datasets at the chosen checkpoint (README, "Models in the portal")
    lr: float | None = 6e-4
    base_per_dataset: int = 40  # base images kept per dataset (keeps validation short on a CPU)
    # share of each dataset's images (the new surface's and the base's) kept for validation; the
    # new surface's share alone picks the checkpoint and the threshold. A tenth of 20 images
    # (2) chose thresholds of 0.96-0.98 where the rest of tunnel-lining's train images wanted
    # 0.8; a fifth (4) chose 0.5-0.7 and scored 0.021 F1 higher on those images
    val_share: float = 0.2
    # the new surface's threshold: the middle of those within this F1 of its best on the
    # validation images (a few images give a flat, noisy F1 curve)
    threshold_plateau: float = 0.01
    seed: int = 42
    # the new surface's own crops keep the plain augmentation (scale 0.85-1.25, mild photometry;
    # `TrainSettings.plain_sources`): its images are already at its survey's scale and light,
    # and the base datasets' crops keep the survey augmentation. On a 2-core EPYC, 20 images,
    # 15 minutes: tunnel-lining's other 38 train images 0.584 and 0.585 against 0.559-0.568 in
    # four runs without; concrete-uav's other 232, 0.711 (0.705-0.735)
    plain_new: bool = True
    # ... and still get the drawn look-alikes at the recipe's rate (`TrainSettings.
    # plain_lookalikes`). The same 2-core EPYC, tunnel-lining, 15 minutes, two runs each:
    # its other 38 train images 0.588 and 0.587 against 0.585 and 0.585 without; the base
    # datasets' validation mean at the chosen checkpoint 0.800 and 0.796 against 0.800 and 0.788;
    # concrete-uav (one run) 0.726 against 0.711, base mean 0.695 against 0.707
    new_lookalikes: bool = True
    # the weights decay towards the start model's (`TrainSettings.anchor`, L2-SP): 0, off. Tried
    # with three quarters of the crops from tunnel-lining (2-core EPYC, 15 minutes): anchor 10
    # kept the base datasets' validation mean at 0.799 (0.773 without; the start model 0.815)
    # but its other 38 train images fell to 0.568 (0.605 without), below the balanced share's
    # 0.588 at the same base mean: a weaker fine-tune, not less forgetting for free
    anchor: float = 0.0
    # the start model's batch-norm statistics kept (`TrainSettings.frozen_norm`). Tried with three
    # quarters of the crops from tunnel-lining (2-core EPYC, 15 minutes): the base datasets'
    # never-drawn train images fell by 0.045 (0.041 without): the statistics are not what forgets
    frozen_norm: bool = False
    # the checkpoint is chosen only from epochs ending after this share of the time budget
    # (`TrainSettings.select_from`; 0: any epoch), where the one-cycle learning rate has come
    # down. Four validation images of the new surface once chose epoch 12 of 38 (tunnel-lining
    # test 87.1 % of the all-data model, against 91.1 % and 93.0 % in the runs beside it). With
    # 0.5, 20 images, 15 minutes: tunnel-lining 92.0 % and 92.6 % (2-core EPYC, 39 epochs) and
    # 88.5 % and 87.5 % (2-core AMX Xeon, 21 and 19 epochs), its other 38 train images 0.600,
    # 0.601, 0.586 and 0.579; concrete-uav 91.1 % (the Xeon, 18 epochs); the base datasets'
    # never-drawn train images -0.007 to -0.013 adapting to tunnel-lining, as without it
    select_from: float = 0.5
    # also keep the mean of the weights of those epochs (`TrainSettings.average`; adapt_bench
    # --average measures it beside the chosen checkpoint). Off: on tunnel-lining (2-core EPYC,
    # 25 epochs, the mean of the last 14) it scored test F1 0.506 against the chosen epoch's
    # 0.511 and 0.585 against 0.587 on its other 38 train images; the base datasets' never-drawn
    # images 0.807 against 0.804
    average: bool = False
    # weight of the clDice term beside Dice + BCE in the adaptation's steps (None: the recipe's
    # 0.25; `adapt_bench --skeleton-weight`). Kept: on a 2-core EPYC without AMX a step took
    # 0.70 s without it against 1.05 s with it (41 epochs in 15 minutes instead of 26), yet
    # tunnel-lining scored the same (test 89.2 % of the all-data model against 88.5-89.9 %, its
    # other 38 train images 0.591 both) and forgot more (never-drawn base images -0.018
    # against -0.008 and -0.010)
    skeleton_weight: float | None = None
    # each epoch validates the new surface's images alone (they alone choose); the base
    # datasets' held-back images once, for the chosen checkpoint (`TrainSettings.others_at_end`)
    others_at_end: bool = True
    # the encoder's first blocks held as they arrived (`TrainSettings.frozen_blocks`; 0: off).
    # Tried with 4 (the stem and the blocks at half and quarter resolution) on tunnel-lining, a
    # 2-core Xeon with AMX, 15 minutes: 23 epochs instead of 19, but test 84.3 % of the all-data
    # model against 87.7 %, its other 38 train images 0.548 against 0.579, and no less
    # forgetting (never-drawn base images -0.013 against -0.010): a new lining's texture is
    # learnt in those first blocks too
    frozen_blocks: int = 0
    # side of the square training crops (None: the recipe's 320 px; `adapt_bench --crop-size`).
    # Tried with 256 on tunnel-lining, a 2-core Xeon with AMX, 15 minutes: a step 0.73 s
    # against 1.20, 37 epochs instead of 24-25, but test 88.3 % of the all-data model against
    # 88.5-88.7 %, its other 38 train images 0.576 against 0.590, and more forgetting (never-
    # drawn base images -0.017 against -0.008): more steps on smaller crops buy nothing
    crop_size: int | None = None
    # crops in each optimizer step (None: the recipe's 8; `adapt_bench --batch-size`). On a
    # 2-core CPU a crop costs about the same at 4, 8 or 16 (0.13-0.15 s at 320 px; `training.
    # bench --batch-size`), so 4 makes twice the updates in the same minutes. A 2-core Xeon
    # with AMX, 20 images, 15 minutes, two runs of each: tunnel-lining's other 38 train images
    # 0.595 and 0.599 against 8's 0.590, 0.590 and 0.589 (test 92.0 % and 92.6 % of the
    # all-data model against 88.5 %, 88.7 % and 88.8 %), concrete-uav's other 232, 0.722 and
    # 0.737 against 0.732; the base datasets' never-drawn train images -0.014 and -0.016
    # against -0.008, -0.009 and -0.009 adapting to tunnel-lining (README)
    batch_size: int | None = 4
    num_workers: int | None = None  # loader processes (None: the recipe's; 0 in a Celery worker)


def hold_back(samples: list[Sample], every: int = 5) -> tuple[list[Sample], list[Sample]]:
    """(train, held back): every `every`-th image by name is held back, at least one of two."""
    ordered = sorted(samples, key=lambda s: s.name)
    held_at = {i for i in range(len(ordered)) if i % every == every - 1}
    if not held_at and len(ordered) >= 2:
        held_at = {len(ordered) - 1}
    return (
        [s for i, s in enumerate(ordered) if i not in held_at],
        [s for i, s in enumerate(ordered) if i in held_at],
    )


def base_share(base_samples: list[Sample], adapt_settings: AdaptSettings) -> list[Sample]:
    """The base images an adaptation trains and validates on: base_per_dataset of each dataset,
    drawn with the adaptation's seed (the rest are never seen: adapt_bench measures on them)."""
    rng = random.Random(adapt_settings.seed)
    by_source: dict[str, list[Sample]] = {}
    for s in base_samples:
        by_source.setdefault(s.source or "base", []).append(s)
    base = []
    for name in sorted(by_source):
        group = sorted(by_source[name], key=lambda s: s.name)
        base += rng.sample(group, min(len(group), adapt_settings.base_per_dataset))
    return base


def recipe(minutes: float, config_path: Path = RECIPE) -> tuple[ModelConfig, TrainSettings]:
    """The shipped CPU recipe as a timed run of `minutes`."""
    config, settings = load_run_config(config_path)
    return config, replace(settings, epochs=10_000, patience=10_000, schedule_minutes=minutes)


def adapt(
    init_state: dict,
    new_samples: list[Sample],
    base_samples: list[Sample],
    workdir: Path | str,
    adapt_settings: AdaptSettings | None = None,
    config_path: Path = RECIPE,
    progress=None,
    step_progress=None,
    validate_start: bool = False,
) -> tuple[ModelConfig, TrainResult]:
    """Fine-tune init_state on new_samples plus a capped share of base_samples."""
    adapt_settings = adapt_settings or AdaptSettings()
    if not new_samples:
        raise ValueError("no verified images of the new surface to adapt to")
    config, settings = recipe(adapt_settings.minutes, config_path)
    # a fine-tune keeps the model's size: widened to the recipe's decoder, the candidate ran
    # slower than the model it would replace, and its steps took longer (from the 64-32-16-8
    # zero-shot model on a 2-core EPYC: 16 epochs in 15 minutes against 20, the same F1)
    config.decoder_channels = decoder_widths(init_state) or config.decoder_channels
    crop, batch = adapt_settings.crop_size, adapt_settings.batch_size
    if crop is not None and (crop < config.multiple or crop % config.multiple):
        raise ValueError(f"crop_size {crop}: a multiple of {config.multiple} px is needed")
    if batch is not None and batch < 2:
        raise ValueError(f"batch_size {batch}: batch norm needs 2 or more")
    base = base_share(base_samples, adapt_settings)
    for s in new_samples:
        s.source = NEW
    share = min(max(adapt_settings.new_share, 0.05), 0.95)
    mix = {s.source or "base": 1.0 for s in base}
    mix[NEW] = share / (1 - share) * len(mix) if mix else 1.0
    # the checkpoint and threshold that suit the new surface; the base share keeps the rest
    settings = replace(
        settings,
        mix=mix,
        seed=adapt_settings.seed,
        select_by=f"source:{NEW}",
        stratify_val=True,
        val_fraction=adapt_settings.val_share,
        threshold_plateau=adapt_settings.threshold_plateau,
        lr=settings.lr if adapt_settings.lr is None else adapt_settings.lr,
        plain_sources=(NEW,) if adapt_settings.plain_new else (),
        plain_lookalikes=adapt_settings.new_lookalikes,
        anchor=adapt_settings.anchor,
        frozen_norm=adapt_settings.frozen_norm,
        select_from=adapt_settings.select_from,
        average=adapt_settings.average,
        skeleton_weight=(
            settings.skeleton_weight
            if adapt_settings.skeleton_weight is None
            else adapt_settings.skeleton_weight
        ),
        others_at_end=adapt_settings.others_at_end,
        frozen_blocks=adapt_settings.frozen_blocks,
        crop_size=crop or settings.crop_size,
        batch_size=batch or settings.batch_size,
    )
    if adapt_settings.num_workers is not None:
        settings = replace(settings, num_workers=adapt_settings.num_workers)
    result = train(
        new_samples + base,
        config,
        settings,
        workdir,
        progress=progress,
        step_progress=step_progress,
        resume=False,
        init_state=init_state,
        validate_start=validate_start,
    )
    config.threshold = result.threshold
    return config, result


def judge(predictor, samples: list[Sample]) -> dict:
    """Figures of a predictor on samples: all pixels pooled (F1, IoU, ODS), and per image."""
    pixel = PixelCounter(predictor.config.threshold)
    tolerant = ToleranceCounter()
    per_image = []
    for s in samples:
        prob = predictor.predict_proba(s.image)
        one = PixelCounter(predictor.config.threshold)
        one.update(prob, s.mask)
        pixel.update(prob, s.mask)
        tolerant.update(prob, s.mask)
        figures = one.result()
        per_image.append({"name": s.name, "f1": figures["f1"], "iou": figures["iou"]})
    overall = {**pixel.result(), "ods": tolerant.result()["ods"]} if samples else {}
    return {
        **{k: float(v) for k, v in overall.items()},
        "images": len(samples),
        "per_image": per_image,
    }


def compare(active: dict, candidate: dict) -> list[dict]:
    """Image-by-image rows: F1 of the active model and of the candidate, and the change."""
    theirs = {r["name"]: r for r in active.get("per_image", [])}
    rows = []
    for r in candidate.get("per_image", []):
        before = theirs.get(r["name"], {}).get("f1")
        rows.append(
            {
                "name": r["name"],
                "active_f1": before,
                "candidate_f1": r["f1"],
                "change": None if before is None else r["f1"] - before,
            }
        )
    return sorted(rows, key=lambda r: (r["change"] is None, r["change"] or 0))
