"""Losses on logits. Dice is bounded to [0, 1] by construction (probabilities, smooth term)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss over the whole batch, always in [0, 1]."""
    probs = torch.sigmoid(logits)
    target = target.float()
    intersection = (probs * target).sum()
    total = probs.sum() + target.sum()
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


def dice_bce_loss(
    logits: torch.Tensor, target: torch.Tensor, bce_weight: float = 0.5
) -> torch.Tensor:
    """Dice + binary cross-entropy, both on logits; never negative."""
    bce = F.binary_cross_entropy_with_logits(logits, target.float())
    return dice_loss(logits, target) + bce_weight * bce
