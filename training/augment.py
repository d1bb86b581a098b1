"""Crack-friendly augmentation (albumentations): no resize that could erase 1-px cracks."""

from __future__ import annotations

import albumentations as A
import cv2


def train_transform(crop_size: int) -> A.Compose:
    """Random geometry and photometry, then a crop that usually keeps crack pixels."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(
                scale=(0.85, 1.25),
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
            A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.5),
            A.RandomGamma(gamma_limit=(80, 125), p=0.3),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 3)), A.MotionBlur(blur_limit=3)], p=0.15),
            A.GaussNoise(std_range=(0.01, 0.05), p=0.2),
        ]
    )
