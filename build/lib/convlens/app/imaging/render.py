"""Feature maps and inputs as PNG pictures a person can look at.

Normalisation (documented in the API): values are scaled per layer by default, so
channels of one layer can be compared (`norm=channel` scales each channel alone).
Signed layers (conv, batch-norm) use a blue-white-red map centred on 0 and scaled by the
largest |value|; non-negative layers (ReLU, pool) use a black-purple-orange-yellow map
from 0 to the largest value. Each channel becomes a tile, upscaled without smoothing to
about 112 px, tiles in a near-square grid with 2 px gaps.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

TILE = 112
GAP = 2
GAP_RGB = (48, 48, 48)
NORMALIZATION = (
    "per layer (norm=layer, default) or per channel (norm=channel); conv and batch-norm "
    "outputs: blue (negative) - white (0) - red (positive), scaled by the largest |value|; "
    "ReLU and pool outputs: black (0) - purple - orange - yellow (largest value)"
)


def _lut(anchors: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    xs = np.linspace(0, 1, 256)
    pos = [a[0] for a in anchors]
    return np.stack([np.interp(xs, pos, [a[1][c] for a in anchors]) for c in range(3)], 1).astype(np.uint8)


# anchor colours chosen for monotonic lightness
SEQUENTIAL = _lut(
    [(0.0, (0, 0, 4)), (0.25, (87, 16, 110)), (0.5, (188, 55, 84)), (0.75, (249, 142, 9)), (1.0, (252, 255, 164))]
)
DIVERGING = _lut(
    [
        (0.0, (33, 102, 172)),
        (0.25, (146, 197, 222)),
        (0.5, (247, 247, 247)),
        (0.75, (244, 165, 130)),
        (1.0, (178, 24, 43)),
    ]
)


def colorize(maps: np.ndarray, signed: bool, per_channel: bool = False) -> np.ndarray:
    """(C, H, W) floats -> (C, H, W, 3) uint8."""
    axes = (1, 2) if per_channel else (0, 1, 2)
    if signed:
        scale = np.abs(maps).max(axis=axes, keepdims=True)
        unit = 0.5 + 0.5 * maps / np.where(scale > 0, scale, 1.0)
        lut = DIVERGING
    else:
        scale = maps.max(axis=axes, keepdims=True)
        unit = np.clip(maps, 0, None) / np.where(scale > 0, scale, 1.0)
        lut = SEQUENTIAL
    return lut[np.clip(np.rint(unit * 255), 0, 255).astype(np.uint8)]


def grid(tiles: np.ndarray) -> np.ndarray:
    """(C, H, W, 3) -> one (rows*h', cols*w', 3) picture, tiles upscaled by nearest neighbour."""
    c, h, w, _ = tiles.shape
    k = max(1, TILE // max(h, w))
    tiles = tiles.repeat(k, axis=1).repeat(k, axis=2)
    cols = int(np.ceil(np.sqrt(c)))
    rows = -(-c // cols)
    th, tw = h * k, w * k
    out = np.empty((rows * (th + GAP) - GAP, cols * (tw + GAP) - GAP, 3), dtype=np.uint8)
    out[:] = GAP_RGB
    for i in range(c):
        r, q = divmod(i, cols)
        out[r * (th + GAP) : r * (th + GAP) + th, q * (tw + GAP) : q * (tw + GAP) + tw] = tiles[i]
    return out


def encode_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)  # speed over bytes
    return buf.getvalue()


def feature_grid_png(maps: np.ndarray, signed: bool, per_channel: bool = False) -> bytes:
    return encode_png(grid(colorize(maps, signed, per_channel)))


def input_png(pixels: np.ndarray, scale: int = 8) -> bytes:
    """The 28 x 28 ink map in grey levels, as MNIST shows it (white on black)."""
    g = np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)
    g = g.repeat(scale, 0).repeat(scale, 1)
    return encode_png(np.stack([g] * 3, -1))


def heatmap_png(pixels: np.ndarray, heat: np.ndarray, scale: int = 8) -> bytes:
    """The heat map (black-purple-orange-yellow) laid over the 28 x 28 input, dimmed to
    grey so the heat stands out, both enlarged `scale` times; where the heat is 0 the
    input shows through."""
    grey = np.stack([np.clip(pixels, 0, 1)] * 3, -1) * 110
    colour = SEQUENTIAL[np.clip(np.rint(heat * 255), 0, 255).astype(np.uint8)].astype(np.float64)
    alpha = np.sqrt(np.clip(heat, 0, 1))[..., None]  # sqrt: weak evidence stays visible
    rgb = np.clip(np.rint((1 - alpha) * grey + alpha * colour), 0, 255).astype(np.uint8)
    return encode_png(rgb.repeat(scale, 0).repeat(scale, 1))
