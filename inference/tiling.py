"""Overlapping tiles over an image and a blending window that hides tile seams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A window of the image: rows y0:y1, columns x0:x1 (pixels)."""

    y0: int
    y1: int
    x0: int
    x1: int


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)  # last tile flush with the edge
    return starts


def tile_grid(height: int, width: int, tile_size: int, overlap: int) -> list[Tile]:
    """Tiles of at most tile_size covering the image, neighbours overlapping by >= overlap px."""
    if overlap >= tile_size:
        raise ValueError("tile overlap must be smaller than the tile size")
    stride = tile_size - overlap
    return [
        Tile(y, min(y + tile_size, height), x, min(x + tile_size, width))
        for y in _starts(height, tile_size, stride)
        for x in _starts(width, tile_size, stride)
    ]


def blend_window(height: int, width: int, ramp: int) -> np.ndarray:
    """Weights that fall linearly to a small floor over `ramp` px at each tile side."""

    def ramp_1d(n: int) -> np.ndarray:
        r = max(1, min(ramp, n // 2))
        w = np.ones(n, dtype=np.float32)
        edge = (np.arange(r, dtype=np.float32) + 1.0) / (r + 1.0)
        w[:r] = edge
        w[n - r :] = np.minimum(w[n - r :], edge[::-1])
        return w

    return np.outer(ramp_1d(height), ramp_1d(width))
