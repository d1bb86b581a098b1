"""Start a wider U-Net decoder from a trained narrower one, computing the same function.

A model version's weights fill the first channels of each decoder layer of the wider
network; the new channels get fresh weights for what they compute and zero weights wherever
a later layer reads them, so the wider network's logits equal the trained one's at the start
and training grows the new channels from there (function-preserving widening, as in
Chen et al. 2016, "Net2Net"). Only smp's Unet decoder is handled: block i reads the
upsampled output of block i-1 (or the encoder's deepest features) followed by skip channels.
"""

from __future__ import annotations

import re

import torch

_BLOCK = re.compile(r"decoder\.blocks\.(\d+)\.(conv1|conv2)\.(\d)\.(.+)")


def decoder_widths(state: dict[str, torch.Tensor]) -> list[int]:
    """The output channels of each decoder block in a Unet state dict."""
    widths = []
    while f"decoder.blocks.{len(widths)}.conv2.0.weight" in state:
        widths.append(state[f"decoder.blocks.{len(widths)}.conv2.0.weight"].shape[0])
    return widths


def _fan_in(weight: torch.Tensor, target: torch.Tensor, reads: int, old_reads: int) -> None:
    """Copy weight's input channels into target: the first old_reads of them read a widened
    tensor (now `reads` wide, the new channels read with weight zero), the rest (skip
    channels) come after it, unchanged."""
    out = weight.shape[0]
    target[:out] = 0
    target[:out, :old_reads] = weight[:, :old_reads]
    target[:out, reads : reads + weight.shape[1] - old_reads] = weight[:, old_reads:]


def widen_state(
    state: dict[str, torch.Tensor], network: torch.nn.Module
) -> dict[str, torch.Tensor]:
    """network's state dict with state's weights in the first channels (see the module doc).

    Tensors of equal shape are copied (equal shape means the same channels in and out); a
    decoder or head tensor of another shape must be at least as large in every dimension.
    Raises ValueError where state does not fit.
    """
    target = {k: v.detach().clone() for k, v in network.state_dict().items()}
    missing = sorted(set(target) ^ set(state))
    if missing:
        raise ValueError(f"the weights do not fit this network: {missing[:4]}")
    old, new = decoder_widths(state), decoder_widths(target)
    if len(old) != len(new) or any(n < o for o, n in zip(old, new, strict=True)):
        raise ValueError(f"decoder {old} cannot be widened to {new}")
    for key, value in state.items():
        have = target[key]
        if have.shape == value.shape:  # the same channels in and out: the same layout
            have.copy_(value)
            continue
        match = _BLOCK.fullmatch(key)
        if match is None and not key.startswith("segmentation_head."):
            raise ValueError(f"{key}: {tuple(value.shape)} does not fit {tuple(have.shape)}")
        if match is None:  # the head's convolution reads the last block's channels
            _fan_in(value, have, new[-1], old[-1])
            continue
        block, conv, part = int(match[1]), match[2], match[3]
        if part == "1":  # batch norm: the old channels first, the new keep their defaults
            have[: value.shape[0]] = value
        elif conv == "conv2":  # reads its own block's conv1
            _fan_in(value, have, new[block], old[block])
        elif block == 0:  # reads the encoder's deepest features and a skip: unchanged
            have[: value.shape[0]] = value
        else:  # reads the block before it, then the skip
            _fan_in(value, have, new[block - 1], old[block - 1])
    return target
