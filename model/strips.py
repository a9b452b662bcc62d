"""Handwritten numbers on one line, with every digit's own ink: what the cut network
(`model/train_cuts.py`) learns from.

A strip is 2-6 MNIST digits (or the same digits redrawn with a constant-width pen) on one
baseline, overlapping, touching, tight or ordinarily spaced, dark on light paper with a
little noise. Each digit's mask says which pixels are its own, so any candidate the
reader cuts from the strip can be told a clean single digit or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from convlens.model.uploads import ink_box, pen_stroke

INK = 0.35  # a digit's own pixels are those of its ink above this (the reader's stroke level)
GAPS = ((-0.25, 0.0), (0.0, 0.12), (0.12, 0.5))  # overlapping or touching, tight, ordinary
GAP_ODDS = (0.4, 0.25, 0.35)


@dataclass
class Strip:
    gray: np.ndarray  # (h, w) float32 luminance in [0, 1], dark ink on light paper
    masks: list[np.ndarray]  # per digit, left to right: (h, w) bool, its own ink
    labels: list[int]


def _digit(image: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.3:
        return pen_stroke(image, height, max(1.5, rng.uniform(0.04, 0.12) * height))
    ink = ink_box(image.astype(np.float32) / 255, 0.1)
    h, w = ink.shape
    size = (max(1, round(w * height / h)), height)
    return np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BICUBIC), np.float32).clip(0, 1)


def strip(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> Strip:
    n = int(rng.integers(2, 7))
    height = int(rng.uniform(28, 90))
    lo, hi = GAPS[int(rng.choice(len(GAPS), p=GAP_ODDS))]
    picks = rng.integers(0, len(labels), n)
    inks = [_digit(images[i], max(12, round(height * rng.uniform(0.85, 1.05))), rng) for i in picks]
    margin = height // 2
    width = sum(i.shape[1] for i in inks) + 2 * margin + n * height
    canvas_h = 2 * height + 2 * margin
    placed: list[np.ndarray] = []
    x = float(margin)
    for ink in inks:
        h, w = ink.shape
        top = margin + height - h + int(rng.normal(0, 0.05 * height)) + height // 2
        left = round(x)
        layer = np.zeros((canvas_h, width), np.float32)
        layer[top : top + h, left : left + w] = ink[: canvas_h - top, : width - left]
        placed.append(layer)
        x = left + w + rng.uniform(lo, hi) * height
    total = np.maximum.reduce(placed)
    used = np.flatnonzero(total.any(0))
    right = min(width, int(used[-1]) + margin + 1)
    gray = 0.95 - 0.85 * total[:, :right] + rng.normal(0, 0.01, (canvas_h, right)).astype(np.float32)
    return Strip(
        gray.clip(0, 1).astype(np.float32), [p[:, :right] > INK for p in placed], [int(labels[i]) for i in picks]
    )
