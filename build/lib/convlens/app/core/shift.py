"""The article's claim that pooling tolerates small shifts, tested on one digit.

The 28 x 28 input the network saw is moved by every (dx, dy) with |dx|, |dy| <= k, the
uncovered border filled with background; every model predicts every shifted copy.
For a CNN we also compare, shift by shift, its first conv output and its last pool
output with the unshifted ones (cosine similarity of the flattened maps, not realigned):
a conv output moves with the input, so its similarity drops; the pools should keep more.
"""

from __future__ import annotations

import numpy as np
import torch


def offsets(k: int) -> list[tuple[int, int]]:
    """Every (dx, dy) with |dx|, |dy| <= k, row by row, (0, 0) included."""
    return [(dx, dy) for dy in range(-k, k + 1) for dx in range(-k, k + 1)]


def shifted(pixels: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The ink map moved right by dx and down by dy; what leaves the frame is lost."""
    out = np.zeros_like(pixels)
    h, w = pixels.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = pixels[ys, xs]
    return out


def all_shifts(pixels: np.ndarray, k: int) -> list[np.ndarray]:
    return [shifted(pixels, dx, dy) for dx, dy in offsets(k)]


def cosine_to_first(maps: torch.Tensor, reference: torch.Tensor) -> list[float]:
    """Cosine similarity of each row of `maps` (N, ...) with `reference` (...)."""
    flat = maps.reshape(len(maps), -1).double()
    ref = reference.reshape(1, -1).double()
    return torch.nn.functional.cosine_similarity(flat, ref, dim=1).tolist()
