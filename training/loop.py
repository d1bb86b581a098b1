"""The training loop: seeded, validated each epoch, best-by-F1 checkpoint, resumable."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, WeightedRandomSampler
from tqdm import tqdm

from inference.arrays import normalise, pad_to_multiple
from inference.config import ModelConfig, build_network
from training.augment import add_frame, train_transform, uneven_light
from training.data import Sample
from training.lookalikes import draw_lookalikes
from training.losses import crack_loss
from training.metrics import ThresholdSweep, best_across
from training.widen import decoder_widths, widen_state


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run (the `train` block of a config file)."""

    epochs: int = 40
    batch_size: int = 8
    crop_size: int = 320
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 12
    val_fraction: float = 0.15
    seed: int = 42
    max_minutes: float | None = None
    schedule_minutes: float | None = None  # size the learning-rate cycle to this training time
    crops_per_epoch: int | None = None  # fixed work per epoch, whatever the dataset size
    num_workers: int = 0
    hard_negatives: float = 0.0  # share of crops given drawn look-alikes (training/lookalikes.py)
    balance_sources: bool = False  # each dataset gives the same share of crops, whatever its size
    # share of crops per dataset (folder name -> weight; unnamed datasets weigh 1); wins over
    # balance_sources. Example: {"tunnel-lining": 3, "cfd": 1} gives tunnel crops 3 times
    # cfd's share, however many images each has.
    mix: dict[str, float] | None = None
    survey_augment: bool = False  # scale 0.5–2×, strong blur, low contrast, JPEG (augment.py)
    uneven_light: float = 0.0  # share of crops under a smooth uneven light field
    frames: float = 0.0  # share of crops that meet a photo edge (a margin labelled background)
    skeleton_weight: float = 0.0  # weight of the clDice term beside Dice + BCE (losses.py)
    # "pooled": threshold and checkpoint by F1 over all validation pixels; "mean": by the mean
    # of each dataset's F1 at one threshold (one threshold right across surfaces);
    # "source:NAME": by that dataset's F1 alone (an adaptation to a new surface)
    select_by: str = "pooled"
    # > 0 with select_by "source:NAME": that dataset's threshold is the middle of the thresholds
    # whose F1 lies within this of its best (ThresholdSweep.best), not the noisy maximum
    threshold_plateau: float = 0.0
    # carve the validation share from each dataset alone (at least one image of each with
    # two or more), so a small dataset is never missing from validation
    stratify_val: bool = False
    # on a CPU with native bf16 instructions (AVX-512 BF16 or AMX) the training steps run in
    # bfloat16 autocast, as on a GPU (2-core CPU here: 0.66 s a step of 8 crops of 320 px
    # against 1.10 in float32); validation, thresholds and the exported weights stay float32
    cpu_bf16: bool = True
    # data echoing (Choi et al. 2019): each loaded batch makes this many optimizer steps, every
    # repeat under a fresh flip/rotation by 90 degrees; for a GPU that the crop-cutting
    # processes cannot keep busy (an H100 with 14 of them: 24 steps a second with echo 2,
    # 20.5 without; the small network's step is most of the limit there)
    echo: int = 1
    # datasets whose crops keep the plain augmentation (scale 0.85-1.25, mild photometry, no
    # drawn look-alikes) whatever survey_augment says: photos already at a survey's scale and
    # light whose real joints are the look-alikes: a new surface's own images in an adaptation
    # (training/configs/unet-mobilenetv2-wide-gpu-plain.json tried tunnel-lining and masonry
    # in the all-data recipe: model card, "tried, not shipped")
    plain_sources: tuple[str, ...] = ()
    # the plain_sources' crops still get drawn look-alikes at the hard_negatives rate (their
    # scale and light stay plain): the all-data recipe without look-alikes on masonry let the
    # drawn ones through more often (model card, "tried, not shipped"); an adaptation keeps
    # them on the new surface's crops (AdaptSettings.new_lookalikes)
    plain_lookalikes: bool = False
    # a fine-tune's weights decay towards the weights it started from instead of towards zero
    # (L2-SP, Li et al. 2018, decoupled as in AdamW): after each step every parameter moves
    # lr x anchor of the way back to its start, so what the start model knew is kept unless the
    # new data keeps asking for the change (0: off; needs init_state)
    anchor: float = 0.0
    # a fine-tune keeps the start model's batch-norm statistics (the layers normalise with the
    # running means and variances it arrived with; their scales and shifts still learn)
    frozen_norm: bool = False
    # a timed run (schedule_minutes) chooses its checkpoint only from epochs that end after this
    # share of the time budget, where the one-cycle learning rate has come down (0: any epoch)
    select_from: float = 0.0
    # a timed run also keeps the mean of the weights (batch-norm statistics included) at the
    # ends of the epochs select_from lets be chosen, and validates it once at the end
    # (stochastic weight averaging, Izmailov et al. 2018): TrainResult.averaged
    average: bool = False
    # with select_by "source:NAME", each epoch validates NAME's images alone (they alone choose
    # the checkpoint and threshold), and the chosen checkpoint is validated on every validation
    # image once after the last epoch: the other datasets' figures (what an adaptation forgot)
    # without their images' time in every epoch (an adaptation's 32 base images took 4.2 of
    # each epoch's 36 s on a 2-core EPYC)
    others_at_end: bool = False
    # a fine-tune holds the encoder's first this many blocks as they arrived (weights and
    # batch-norm statistics): no gradient is computed through them, so a step skips their
    # backward pass, the costliest part of the network at full and half resolution
    # (MobileNetV2 encoders; 0: every layer learns)
    frozen_blocks: int = 0


def cpu_has_native_bf16() -> bool:
    """The CPU runs bfloat16 in hardware (emulated bf16 would be slower than float32)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def train_step(
    network, optimizer, x, y, skeleton_weight: float, bf16: bool, channels_last: bool = True
) -> torch.Tensor:
    """One optimizer step on a batch: the network (bf16 autocast when asked; NHWC input when
    channels_last), the training loss in float32, backward, update. Returns the loss."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = network(x)
    loss = crack_loss(logits.float(), y, skeleton_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def narrow_layers(network, below: int = 16) -> list[torch.nn.Module]:
    """The decoder's blocks that end in fewer than `below` channels, and the segmentation
    head after them (smp's Unet; other networks: none)."""
    blocks = getattr(getattr(network, "decoder", None), "blocks", None) or []
    narrow = [b for b in blocks if _out_channels(b) < below]
    head = getattr(network, "segmentation_head", None)
    return [*narrow, head] if narrow and head is not None else narrow


def _out_channels(block: torch.nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    return convs[-1].out_channels if convs else 1 << 30


def _contiguous_inputs(module, args):
    return tuple(a.contiguous() if torch.is_tensor(a) else a for a in args)


def training_layout(network, device_type: str):
    """The network in NHWC (channels-last) for training, except, on a CPU, its narrow layers
    (`narrow_layers`), which keep NCHW: with 12 channels at 320 px, oneDNN's NHWC batch norm
    took 83 ms backward in bfloat16 against 10 in NCHW (2-core Xeon with AMX), and a whole
    step of 8 crops of 320 px went from 1.21 to 1.08 s. The same values either way."""
    network = network.to(memory_format=torch.channels_last)
    if device_type == "cpu":
        for module in narrow_layers(network):
            module.to(memory_format=torch.contiguous_format)
            module.register_forward_pre_hook(_contiguous_inputs)
    return network


def judging_source(select_by: str) -> str | None:
    """NAME where select_by is "source:NAME" (that dataset alone chooses), else None."""
    return select_by.removeprefix("source:") if select_by.startswith("source:") else None


def _stale(state: dict) -> int:
    """Epochs since the best one; patience counts from the first epoch that could be chosen."""
    return state["epoch"] - max(state["best_epoch"], state.get("ineligible_until", 0))


def accumulate_mean(mean: dict | None, state: dict, count: int) -> dict:
    """The running mean of count state dicts updated with one more (integer buffers: the last)."""
    if mean is None:
        # copies: a state dict's tensors are the network's own
        return {
            k: v.float().clone() if v.is_floating_point() else v.clone() for k, v in state.items()
        }
    for k, v in state.items():
        if v.is_floating_point():
            mean[k] += (v.float() - mean[k]) / (count + 1)
        else:
            mean[k] = v.clone()
    return mean


def encoder_blocks(network, count: int) -> list[torch.nn.Module]:
    """The first `count` blocks of the network's encoder (MobileNetV2's `features`)."""
    if count == 0:
        return []
    features = getattr(getattr(network, "encoder", None), "features", None)
    if not isinstance(features, torch.nn.Sequential):
        raise ValueError("frozen_blocks needs an encoder made of blocks (MobileNetV2)")
    if not 0 <= count <= len(features):
        raise ValueError(f"frozen_blocks {count}: the encoder has {len(features)} blocks")
    return list(features)[:count]


def freeze_norm_statistics(network) -> None:
    """Every batch-norm layer normalises with its running statistics and leaves them as they are."""
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


@torch.no_grad()
def pull_towards(network, anchors: list[torch.Tensor], fraction: float) -> None:
    """Move each parameter `fraction` of the way back to its anchor (the start weights)."""
    for param, anchor in zip(network.parameters(), anchors, strict=True):
        param.lerp_(anchor, min(fraction, 1.0))


def dihedral(x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the 8 flips/rotations of a batch of square crops and their masks (k in 0..7)."""
    if k & 4:
        x, y = x.flip(-1), y.flip(-1)
    return torch.rot90(x, k % 4, (-2, -1)), torch.rot90(y, k % 4, (-2, -1))


@dataclass
class EpochReport:
    """What a progress callback receives after every epoch."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_f1: float
    val_iou: float
    val_precision: float
    val_recall: float
    best_f1: float
    seconds: float


@dataclass
class TrainResult:
    """Outcome of a run: best weights, chosen threshold, history."""

    state_dict: dict
    threshold: float
    best_epoch: int
    best_val: dict
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    # a fine-tune's start weights validated the same way before the first step (train's
    # validate_start; {} otherwise): the base datasets' figures here against the chosen epoch's
    # say what was forgotten
    start_val: dict = field(default_factory=dict)
    # settings.average: the mean weights of the eligible epochs, validated like an epoch
    # (None where fewer than two epochs were eligible)
    averaged: AveragedWeights | None = None


@dataclass
class AveragedWeights:
    """The mean of a run's weights over its last epochs, validated once after the last."""

    state_dict: dict
    epochs: int  # how many epochs' weights the mean holds
    threshold: float
    val: dict


@dataclass
class StepReport:
    """What a step-progress callback receives every few seconds inside an epoch."""

    epoch: int
    epochs: int
    step: int
    steps: int
    train_loss: float  # running mean over the epoch so far
    seconds: float  # training time of the whole run so far


class CancelledError(RuntimeError):
    """The progress callback asked the run to stop."""


def load_run_config(path: Path | str) -> tuple[ModelConfig, TrainSettings]:
    """Read a training config file: {"model": {...}, "train": {...}}."""
    data = json.loads(Path(path).read_text())
    return ModelConfig.from_dict(data["model"]), TrainSettings(**data.get("train", {}))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sampling_weights(samples: list[Sample], settings: TrainSettings) -> list[float] | None:
    """Per-sample weights that give each dataset its share of crops (None: uniform).

    With `mix`, a dataset's share is its weight over the sum of the weights of the datasets
    present (unnamed ones weigh 1); with `balance_sources`, every dataset weighs 1.
    """
    if not settings.mix and not settings.balance_sources:
        return None
    sizes = Counter(s.source for s in samples)
    mix = settings.mix or {}
    return [float(mix.get(s.source, 1.0)) / sizes[s.source] for s in samples]


def crop_shares(samples: list[Sample], settings: TrainSettings) -> dict[str, float]:
    """Each dataset's expected share of training crops under the settings (for the log)."""
    weights = sampling_weights(samples, settings) or [1.0] * len(samples)
    total = sum(weights)
    shares: Counter = Counter()
    for s, w in zip(samples, weights, strict=True):
        shares[s.source] += w / total
    return dict(sorted(shares.items()))


class _CropDataset(Dataset):
    def __init__(
        self,
        samples: list[Sample],
        config: ModelConfig,
        crop_size: int,
        repeats: int,
        settings: TrainSettings | None = None,
    ):
        settings = settings or TrainSettings()
        self.samples, self.repeats, self.settings = samples, repeats, settings
        self.hard_negatives = settings.hard_negatives
        self.transform = train_transform(crop_size, survey=settings.survey_augment)
        self.plain = train_transform(crop_size) if settings.plain_sources else None
        self.mean, self.std = config.mean, config.std

    def __len__(self) -> int:
        return len(self.samples) * self.repeats

    def __getitem__(self, index: int):
        s = self.samples[index % len(self.samples)]
        plain = s.source in self.settings.plain_sources
        transform = self.plain if plain else self.transform
        out = transform(image=s.image, mask=s.mask.astype(np.uint8))
        lookalikes = self.hard_negatives and (not plain or self.settings.plain_lookalikes)
        if lookalikes and np.random.random() < self.hard_negatives:
            count = 1 + int(np.random.random() < 0.3)
            rng = np.random.default_rng(np.random.randint(2**31))
            out["image"] = draw_lookalikes(out["image"], out["mask"].astype(bool), rng, count)
        if self.settings.uneven_light and np.random.random() < self.settings.uneven_light:
            rng = np.random.default_rng(np.random.randint(2**31))
            out["image"] = uneven_light(out["image"], rng)
        if self.settings.frames and np.random.random() < self.settings.frames:
            rng = np.random.default_rng(np.random.randint(2**31))
            out["image"], out["mask"] = add_frame(out["image"], out["mask"], rng)
        image = normalise(out["image"], self.mean, self.std)
        return torch.from_numpy(image), torch.from_numpy(out["mask"][None].astype(np.float32))


def _seed_worker(worker_id: int) -> None:
    """Give each loader worker its own augmentation stream.

    Torch seeds `random`, numpy and torch per worker, but an albumentations Compose keeps an
    RNG of its own, which a forked worker would copy: every worker would repeat the others.
    """
    info = torch.utils.data.get_worker_info()
    info.dataset.transform.set_random_seed(info.seed % 2**32)
    if info.dataset.plain is not None:
        info.dataset.plain.set_random_seed((info.seed + 1) % 2**32)


def one_cycle_lr(max_lr: float, progress: float, pct_start: float = 0.1) -> float:
    """OneCycleLR's cosine shape at progress in [0, 1]: max_lr/25 up to max_lr, then down to ~0."""
    start, end = max_lr / 25, max_lr / 25 / 1e4
    progress = min(max(progress, 0.0), 1.0)
    if progress < pct_start:
        a, b, t = start, max_lr, progress / pct_start
    else:
        a, b, t = max_lr, end, (progress - pct_start) / (1 - pct_start)
    return b + (a - b) * (1 + np.cos(np.pi * t)) / 2


def split_train_val(samples: list[Sample], fraction: float, seed: int, stratify: bool = False):
    """Deterministic validation carve-out from the training samples (per dataset if stratify)."""
    if stratify:
        train_part, val_part = [], []
        for source in sorted({s.source for s in samples}):
            t, v = split_train_val([s for s in samples if s.source == source], fraction, seed)
            train_part += t
            val_part += v
        return train_part, val_part
    order = sorted(samples, key=lambda s: s.name)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * fraction)) if len(order) > 1 and fraction > 0 else 0
    return order[n_val:], order[:n_val]


@torch.inference_mode()
def validate(
    network,
    samples: list[Sample],
    config: ModelConfig,
    device,
    select_by: str = "pooled",
    skeleton_weight: float = 0.0,
    plateau: float = 0.0,
) -> tuple[float, float, dict]:
    """Whole-image validation: (loss, best threshold, metrics at that threshold).

    select_by="mean" picks the threshold with the best mean of the datasets' F1 and reports
    those means, with each dataset's own figures under "by_source".
    """
    network.eval()
    pooled, by_source, losses = ThresholdSweep(), {}, []
    for s in samples:
        image, (h, w) = pad_to_multiple(s.image, config.multiple)
        x = torch.from_numpy(normalise(image, config.mean, config.std)[None])
        x = x.contiguous(memory_format=torch.channels_last)
        logits = network(x.to(device))[:, :, :h, :w].float()
        target = torch.from_numpy(s.mask[None, None].astype(np.float32)).to(device)
        losses.append(float(crack_loss(logits, target, skeleton_weight)))
        prob = torch.sigmoid(logits)[0, 0].cpu().numpy()
        pooled.update(prob, s.mask)
        by_source.setdefault(s.source or "data", ThresholdSweep()).update(prob, s.mask)
    source = judging_source(select_by)
    if source in by_source:  # one surface decides (an adaptation judges by the new surface)
        threshold, metrics = by_source[source].best(plateau)
        per_source = {name: sweep.at(threshold) for name, sweep in sorted(by_source.items())}
        metrics = {**metrics, "by_source": per_source}
    elif select_by == "mean" or source is not None:
        threshold, metrics, per_source = best_across(by_source)
        metrics = {**metrics, "by_source": per_source}
    else:
        threshold, metrics = pooled.best()
    return float(np.mean(losses)), threshold, metrics


def _report_step(step_progress, epoch: int, epochs: int, steps: int, losses, seconds: float):
    """Tell step_progress where the epoch stands; a False answer cancels the run."""
    step = len(losses)
    mean = float(np.mean(losses)) if losses else float("nan")
    if step_progress(StepReport(epoch, epochs, step, steps, mean, seconds)) is False:
        raise CancelledError(f"cancelled in epoch {epoch} (step {step} of {steps})")


def train(
    samples: list[Sample],
    config: ModelConfig,
    settings: TrainSettings,
    workdir: Path | str,
    progress: Callable[[EpochReport], bool | None] | None = None,
    device: str | None = None,
    resume: bool = True,
    init_state: dict | None = None,
    step_progress: Callable[[StepReport], bool | None] | None = None,
    step_every_s: float = 5.0,
    validate_start: bool = False,
) -> TrainResult:
    """Train config's network on samples; checkpoints in workdir.

    progress(report) runs after each epoch, step_progress(report) every step_every_s seconds
    inside one (and before validation); either may return False to cancel the run.
    validate_start: a fine-tune's start weights are validated before the first step (into
    TrainResult.start_val, outside the time budget), for a benchmark to say what was forgotten.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    seed_everything(settings.seed)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train_set, val_set = split_train_val(
        samples, settings.val_fraction, settings.seed, settings.stratify_val
    )
    if not train_set:
        raise ValueError("no training samples")
    val_set = val_set or train_set[:1]

    network = build_network(config)
    if init_state is not None:  # fine-tune from a model version's weights
        init_state = {k: v.float() for k, v in init_state.items()}
        if decoder_widths(init_state) != decoder_widths(network.state_dict()):
            init_state = widen_state(init_state, network)  # a wider decoder: same logits
        network.load_state_dict(init_state)
    network = network.to(dev)
    on_gpu = dev.type == "cuda"
    # bf16 autocast on a GPU, and on a CPU that has bf16 in hardware
    use_bf16 = on_gpu or (settings.cpu_bf16 and cpu_has_native_bf16())
    # convolutions run fastest on NHWC tensors: on the CPU too (float32: 1.9x here), all but
    # the narrow layers at full resolution
    network = training_layout(network, dev.type)
    frozen = encoder_blocks(network, settings.frozen_blocks) if init_state is not None else []
    for block in frozen:
        block.requires_grad_(False)
    anchors = (
        [p.detach().clone() for p in network.parameters()]
        if settings.anchor and init_state is not None
        else None
    )
    optimizer = torch.optim.AdamW(
        [p for p in network.parameters() if p.requires_grad],
        lr=settings.lr,
        weight_decay=settings.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, total_steps=settings.epochs, pct_start=0.1
    )
    state = {
        "epoch": 0,
        "best_f1": -1.0,
        "best_epoch": 0,
        "threshold": 0.5,
        "history": [],
        "seconds": 0.0,
        "best_val": {},
        "start_val": {},
        "averaged_epochs": 0,
    }
    average = None  # settings.average: the running mean of the eligible epochs' weights
    last, best = workdir / "last.pt", workdir / "best.pt"
    if resume and last.exists():
        ckpt = torch.load(last, map_location=dev, weights_only=False)
        network.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scheduler.total_steps = max(settings.epochs, 1)  # a resume may extend the run
        state = ckpt["state"]
        average = ckpt.get("average")
        torch.set_rng_state(ckpt["rng"])

    judges = judging_source(settings.select_by)
    deciding = [s for s in val_set if s.source == judges] if settings.others_at_end else []
    deciding = deciding or val_set

    def validate_now(images: list[Sample] | None = None) -> tuple[float, float, dict]:
        """(loss, threshold, figures) of the network now on the validation images that decide
        (or on images)."""
        return validate(
            network,
            deciding if images is None else images,
            config,
            dev,
            settings.select_by,
            settings.skeleton_weight,
            settings.threshold_plateau,
        )

    if validate_start and init_state is not None and state["epoch"] == 0:
        _, threshold, start_val = validate_now(val_set)
        state["start_val"] = {**start_val, "threshold": threshold}
        print(
            f"start model: val_f1 {start_val['f1']:.4f} (thr {threshold:.2f})"
            + _by_source(start_val.get("by_source")),
            flush=True,
        )

    generator = torch.Generator().manual_seed(settings.seed + state["epoch"])
    if settings.crops_per_epoch:
        dataset = _CropDataset(train_set, config, settings.crop_size, 1, settings)
        weights = sampling_weights(train_set, settings)
        if weights is not None:
            sampler = WeightedRandomSampler(
                weights, settings.crops_per_epoch, replacement=True, generator=generator
            )
        else:
            sampler = RandomSampler(
                dataset,
                replacement=True,
                num_samples=settings.crops_per_epoch,
                generator=generator,
            )
    else:  # one pass, repeated so that an epoch is ~100 crops even on a tiny dataset
        dataset = _CropDataset(
            train_set,
            config,
            settings.crop_size,
            max(1, -(-100 // len(train_set))),
            settings,
        )
        sampler = RandomSampler(dataset, generator=generator)
    unknown = set(settings.mix or {}) - {s.source for s in train_set}
    if unknown:
        print(f"mix names datasets not in the data: {', '.join(sorted(unknown))}", flush=True)
    if len({s.source for s in train_set}) > 1:
        shares = crop_shares(train_set, settings)
        print("crop shares: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()), flush=True)
    if settings.num_workers:
        import cv2

        # OpenCV's thread pool does not survive fork(): a worker would wait on it for ever
        cv2.setNumThreads(0)
    loader = DataLoader(
        dataset,
        batch_size=settings.batch_size,
        sampler=sampler,
        drop_last=len(sampler) > settings.batch_size,
        num_workers=settings.num_workers,
        worker_init_fn=_seed_worker if settings.num_workers else None,
        persistent_workers=settings.num_workers > 0,
        pin_memory=on_gpu,
    )
    # a timed run (schedule_minutes) sets the learning rate each step from the time spent
    timed = settings.schedule_minutes is not None and settings.schedule_minutes > 0
    budget_s = (settings.schedule_minutes or 0) * 60
    stale = _stale(state)
    echo_rng = np.random.default_rng(settings.seed + state["epoch"])
    while state["epoch"] < settings.epochs and stale < settings.patience:
        if settings.max_minutes and state["seconds"] > settings.max_minutes * 60:
            break
        if timed and state["seconds"] >= budget_s:
            break
        epoch = state["epoch"] + 1
        started = time.monotonic()
        network.train()
        if settings.frozen_norm and init_state is not None:
            freeze_norm_statistics(network)
        for block in frozen:
            block.eval()  # its batch-norm statistics stay the start model's too
        losses = []
        steps = len(loader)
        last_report = time.monotonic()

        bar = tqdm(loader, desc=f"epoch {epoch}/{settings.epochs}", leave=False, mininterval=5)
        for x, y in bar:
            if step_progress is not None and time.monotonic() - last_report >= step_every_s:
                last_report = time.monotonic()
                seconds = state["seconds"] + time.monotonic() - started
                _report_step(step_progress, epoch, settings.epochs, steps, losses, seconds)
            if timed:
                spent = state["seconds"] + time.monotonic() - started
                if spent >= budget_s and losses:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = one_cycle_lr(settings.lr, spent / budget_s)
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            for repeat in range(max(1, settings.echo)):
                # a repeat sees the batch turned or flipped (never the identity twice)
                xs, ys = dihedral(x, y, int(echo_rng.integers(1, 8))) if repeat else (x, y)
                loss = train_step(network, optimizer, xs, ys, settings.skeleton_weight, use_bf16)
                if anchors is not None:
                    pull_towards(
                        network, anchors, optimizer.param_groups[0]["lr"] * settings.anchor
                    )
                losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", refresh=False)
        if not timed:
            scheduler.step()
        if step_progress is not None:
            seconds = state["seconds"] + time.monotonic() - started
            _report_step(step_progress, epoch, settings.epochs, steps, losses, seconds)
        val_loss, threshold, val = validate_now()
        per_source = val.pop("by_source", None)
        state["seconds"] += time.monotonic() - started
        state["epoch"] = epoch
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": val_loss,
            "threshold": threshold,
            **{f"val_{k}": v for k, v in val.items()},
            **({"val_by_source": per_source} if per_source else {}),
            "seconds": state["seconds"],
        }
        state["history"].append(row)
        # never past the budget: the epoch that crosses it is always a candidate
        eligible = not timed or state["seconds"] >= min(settings.select_from, 1.0) * budget_s
        if eligible and val["f1"] > state["best_f1"]:
            state.update(best_f1=val["f1"], best_epoch=epoch, threshold=threshold, best_val=val)
            torch.save(network.state_dict(), best)
        if not eligible:
            state["ineligible_until"] = epoch
        elif settings.average and timed:
            count = state.get("averaged_epochs", 0)
            average = accumulate_mean(average, network.state_dict(), count)
            state["averaged_epochs"] = count + 1
        stale = _stale(state)
        torch.save(
            {
                "model": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": state,
                "rng": torch.get_rng_state(),
                "average": average,
            },
            last,
        )
        print(
            f"epoch {epoch}: loss {row['train_loss']:.4f} val_loss {val_loss:.4f} "
            f"val_f1 {val['f1']:.4f} (thr {threshold:.2f}) best {state['best_f1']:.4f} "
            f"[{state['seconds'] / 60:.1f} min]" + _by_source(per_source),
            flush=True,
        )
        if progress is not None:
            report = EpochReport(
                epoch,
                settings.epochs,
                row["train_loss"],
                val_loss,
                val["f1"],
                val["iou"],
                val["precision"],
                val["recall"],
                state["best_f1"],
                state["seconds"],
            )
            if progress(report) is False:
                raise CancelledError(f"cancelled after epoch {epoch}")

    best_state = (
        torch.load(best, map_location="cpu", weights_only=True)
        if best.exists()
        else network.state_dict()
    )
    chosen = next((r for r in state["history"] if r["epoch"] == state["best_epoch"]), None)
    if deciding is not val_set and chosen is not None:  # the chosen checkpoint on every image
        network.load_state_dict(best_state)
        _, _, val = validate_now(val_set)
        chosen["val_by_source"] = val.pop("by_source", None)
        print(
            f"chosen epoch {state['best_epoch']} on every validation image:"
            + _by_source(chosen["val_by_source"]),
            flush=True,
        )
    averaged = None
    if average is not None and state.get("averaged_epochs", 0) >= 2:
        network.load_state_dict(average)
        _, threshold, val = validate_now()
        averaged = AveragedWeights(
            {k: v.cpu() for k, v in average.items()},
            state["averaged_epochs"],
            threshold,
            val,
        )
        print(
            f"mean of the last {averaged.epochs} epochs' weights: val_f1 {val['f1']:.4f} "
            f"(thr {threshold:.2f})" + _by_source(val.get("by_source")),
            flush=True,
        )
    return TrainResult(
        best_state,
        state["threshold"],
        state["best_epoch"],
        state["best_val"],
        state["history"],
        state["seconds"],
        state.get("start_val", {}),
        averaged,
    )


def _by_source(per_source: dict | None) -> str:
    """' (cfd 0.731, new 0.552)': each dataset's validation F1, for a log line."""
    if not per_source:
        return ""
    return " (" + ", ".join(f"{k} {v['f1']:.3f}" for k, v in per_source.items()) + ")"


def settings_dict(settings: TrainSettings) -> dict:
    return asdict(settings)
