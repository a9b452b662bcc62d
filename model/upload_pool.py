"""Training digits rendered as uploads and passed through the serving preprocessing.

The pool is built once before training (in worker processes: rendering a phone photo
takes tens of milliseconds) and training draws part of every batch from it. It calls
the service's own `app.imaging.preprocess.preprocess`, the one function that turns an upload
into the network's input, so what the network learns from and what it is shown cannot
drift apart. (This is the one place `model` imports `app`: the preprocessing is the
service's, and training must not keep a copy of it.)
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from convlens.app.core.errors import DomainError
from convlens.app.imaging import preprocess as serving
from convlens.model.uploads import TRAIN, TRAINING_FAMILIES

log = logging.getLogger(__name__)

MAX_PIXELS = 50_000_000
CHUNK = 500


def render(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each digit as an upload of a family taken in turn, as the service would see it:
    (N', 28, 28) uint8 inputs, their labels, and the families of uploads it refused."""
    rng = np.random.default_rng(seed)
    names = list(TRAINING_FAMILIES)
    out, kept, refused = [], [], []
    for i, (digit, label) in enumerate(zip(images, labels, strict=True)):
        name = names[(i + seed) % len(names)]
        data, _ = TRAINING_FAMILIES[name](digit, int(label), rng, TRAIN)
        try:
            pixels = serving.preprocess(data, MAX_PIXELS).pixels
        except DomainError:
            refused.append(name)
            continue
        out.append(np.round(pixels * 255).astype(np.uint8))
        kept.append(label)
    empty = np.zeros((0, 28, 28), np.uint8)
    return (np.stack(out) if out else empty), np.array(kept, np.uint8), refused


def build_pool(
    images: np.ndarray, labels: np.ndarray, seed: int, workers: int = 1
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Render every image once, in chunks with their own seeds (same pool for any
    `workers`). Returns inputs, labels and how many uploads each family had refused."""
    starts = range(0, len(images), CHUNK)
    jobs = [(images[s : s + CHUNK], labels[s : s + CHUNK], seed * 100_003 + s) for s in starts]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(render, *zip(*jobs, strict=True)))
    else:
        parts = [render(*job) for job in jobs]
    refused: dict[str, int] = {}
    for _, _, names in parts:
        for name in names:
            refused[name] = refused.get(name, 0) + 1
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    log.info("upload pool: %d inputs rendered from %d digits; refused %s", len(x), len(images), refused or "none")
    return x, y, refused
