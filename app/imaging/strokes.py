"""Bring a marker's strokes back to MNIST's width before the digit is shrunk to 20 px.

A finger on a phone or a felt-tip draws strokes a fifth to a third of the digit's height
wide; MNIST's are about an eighth (median 0.125 of the ink box's longer side over 5,000
training digits, 95th percentile 0.20). Shrunk to 20 px such a stroke fills the loops of
6s, 8s and 9s and the network reads a blob. The stroke's width is measured on an 80 px
copy (twice the distance to the nearest paper along the stroke's ridge), and when it is
wider than MNIST's 95th percentile the ink is eroded along its signed distance to the
paper until the width is MNIST's 75th percentile. Erosion opens loops instead of closing
them, and a constant-width pen keeps every stroke, since each loses less than half its
width. Left alone:
- a small scan enlarged smoothly: its wide strokes are its coarse pixels, with edges as
  blurred as they are wide; so is every crop under 80 px, which would be measured on an
  enlargement;
- a typeface's hairlines: a bold serif's stems are a marker's width, its serifs and joins
  far thinner, so an erosion that breaks a stroke or removes one is halved, and if that
  breaks one too the picture is left as it was;
- anything thinner than a marker, so every other upload is read as before.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

WORK = 80  # the copy the width is measured and thinned on (longer side, px)
MIN_SIDE = WORK  # a smaller crop would be measured on an enlargement, whose edges are interpolated
THICK = 0.20  # a stroke wider than this share of the box's longer side is a marker's
TARGET = 0.15  # ... and is thinned to this width
SOLID = 0.5  # ink above this is the stroke's body
SHARP = 3.0  # ... measured only where the edges rise from paper to ink within this many px
EIGHT = np.ones((3, 3), dtype=bool)


def _work_copy(crop: np.ndarray) -> np.ndarray:
    """The crop box-reduced to WORK px on its longer side (never enlarged: MIN_SIDE)."""
    h, w = crop.shape
    s = WORK / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    img = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F").resize(size, Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32)


def stroke_width(work: np.ndarray) -> float:
    """The typical stroke width in px: twice the median depth of the stroke's ridge
    (pixels at least as far from the paper as their 8 neighbours)."""
    body = work > SOLID
    if body.sum() < 4:
        return 0.0
    depth = ndimage.distance_transform_edt(body)
    ridge = body & (depth >= ndimage.maximum_filter(depth, 3))
    return float(2 * np.median(depth[ridge]))


def edge_ramp(work: np.ndarray) -> float:
    """How many px of the copy the ink takes to rise from paper to stroke: at most 1.5 for
    drawings and photos of them (200 felt-tip uploads), 80 / the scan's side for a small
    scan enlarged smoothly (9 to 15 for 8 px scans), whose strokes are its coarse pixels."""
    body = work > SOLID
    rim = body & ~ndimage.binary_erosion(body)
    return float(((work > 0.1) & (work < 0.9)).sum() / max(int(rim.sum()), 1))


def thin_thick(crop: np.ndarray) -> np.ndarray:
    """`crop` (ink in [0, 1], cropped to the digit) unchanged, or an 80 px copy thinned to
    MNIST's stroke width if its strokes are a marker's."""
    if max(crop.shape) < MIN_SIDE:
        return crop
    work = _work_copy(crop)
    width = stroke_width(work)
    if width <= THICK * WORK or edge_ramp(work) > SHARP:
        return crop
    body = work > SOLID
    strokes = _pieces(body)
    signed = ndimage.distance_transform_edt(body) - ndimage.distance_transform_edt(~body)
    erode = (width - TARGET * WORK) / 2
    for depth in (erode, erode / 2):
        out = np.clip(signed - depth + 0.5, 0.0, 1.0)
        if _pieces(out > SOLID) == strokes:
            return out.astype(np.float32)
    return crop


def _pieces(mask: np.ndarray) -> int:
    return int(ndimage.label(mask, EIGHT)[1])
