"""Crack-friendly augmentation for survey conditions.

albumentations does the geometry (flips, rotation, scale 0.5–2×, perspective), the crop that
usually keeps crack pixels, and the photometry of real surveys: motion and focus blur, low
contrast, noise and JPEG. Two steps are our own, on the finished crop:

- `uneven_light`: a smooth illumination field (a lamp's fall-off, a shadow across the lining);
- `add_frame`: the crop meets the edge of a photo (a black scan margin, a bright sky, a
  lining edge) on one or two sides, labelled background, so the model learns that the edge
  of an image is never a crack (see also the predictor's border rule).
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


def train_transform(crop_size: int, survey: bool = False) -> A.Compose:
    """Random geometry and photometry, then a crop that usually keeps crack pixels.

    survey=True widens the scale range to 0.5–2× and adds the survey photometry (strong blur,
    low contrast, JPEG); False keeps the original recipe of the earlier models.
    """
    scale = (0.5, 2.0) if survey else (0.85, 1.25)
    photometry = [
        A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.5),
        A.RandomGamma(gamma_limit=(80, 125), p=0.3),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 3)), A.MotionBlur(blur_limit=3)], p=0.15),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.2),
    ]
    if survey:
        photometry = [
            A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.5),
            # low contrast: a faint hairline on a flat grey lining
            A.RandomBrightnessContrast(brightness_limit=0.0, contrast_limit=(-0.6, -0.3), p=0.2),
            A.RandomGamma(gamma_limit=(70, 140), p=0.3),
            A.OneOf(
                [
                    A.GaussianBlur(blur_limit=(3, 5)),
                    A.MotionBlur(blur_limit=(3, 7)),
                    A.Defocus(radius=(1, 3)),
                ],
                p=0.25,
            ),
            A.GaussNoise(std_range=(0.01, 0.06), p=0.25),
            A.ImageCompression(quality_range=(35, 95), p=0.3),
        ]
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(
                scale=scale,
                translate_percent=(-0.05, 0.05),
                rotate=(-20, 20),
                border_mode=cv2.BORDER_REFLECT_101,
                p=0.5,
            ),
            A.Perspective(scale=(0.02, 0.05), border_mode=cv2.BORDER_REFLECT_101, p=0.2),
            A.PadIfNeeded(
                min_height=crop_size, min_width=crop_size, border_mode=cv2.BORDER_REFLECT_101
            ),
            A.OneOf(
                [
                    A.CropNonEmptyMaskIfExists(height=crop_size, width=crop_size, p=0.8),
                    A.RandomCrop(height=crop_size, width=crop_size, p=0.2),
                ],
                p=1.0,
            ),
            *photometry,
        ]
    )


def uneven_light(image: np.ndarray, rng: np.random.Generator, strength: float = 0.5) -> np.ndarray:
    """Multiply by a smooth light field: a linear fall-off and a soft spot, gain 1 ± strength."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * 2
    cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.3, 1.0) * max(h, w)
    spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * 2 - 1
    field = 1 + strength * rng.uniform(0.3, 1.0) * (0.6 * ramp + 0.4 * spot)
    out = image.astype(np.float32) * np.clip(field, 0.2, 2.0)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def add_frame(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, max_share: float = 0.35
) -> tuple[np.ndarray, np.ndarray]:
    """Put the edge of a photo into the crop: one or two sides become a flat margin (dark,
    bright or the mean colour, with a little noise), up to max_share of the crop deep, and
    the mask is cleared there. The edge is a hard step, the kind an image border makes."""
    h, w = mask.shape
    image, mask = image.copy(), mask.copy()
    for side in rng.choice(4, size=1 + int(rng.random() < 0.3), replace=False):
        depth = int(rng.integers(2, max(3, int(max_share * min(h, w)))))
        kind = rng.integers(3)
        colour = (
            rng.uniform(0, 30, 3)
            if kind == 0
            else rng.uniform(200, 255, 3)
            if kind == 1
            else image.reshape(-1, 3).mean(axis=0) * rng.uniform(0.5, 1.5)
        )
        region = (
            (slice(0, depth), slice(None)),
            (slice(h - depth, h), slice(None)),
            (slice(None), slice(0, depth)),
            (slice(None), slice(w - depth, w)),
        )[side]
        shape = image[region].shape
        image[region] = np.clip(colour + rng.normal(0, 3, shape), 0, 255).astype(np.uint8)
        mask[region] = 0
    return image, mask
