"""A photographed or scanned page -> its ink, bright on zero, at a working resolution.

The single-digit pipeline reads the paper off the picture's frame; a page photo's frame
is often the table it lies on, so here the paper is what most of the picture is (ink is
sparse on a page), measured locally: a grey closing on a reduced copy erases every
stroke and keeps the paper with its shadows and uneven light, and ink is read as a share
of the paper under it (light falls on paper and ink alike). A dark table around the page
is its own "paper" and so is not ink either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from convlens.app.imaging.preprocess import DECODER_ERRORS, MIN_CONTRAST, decode, drop_specks, remove_rules, to_gray

READ_SIDE = 2048  # pages are read at most this big: a 4000 x 3000 photo at half its side
PAPER_SIDE = 256  # resolution of the local paper estimate
PAPER_KERNEL = 1 / 24  # closing square, as a share of the reduced copy's longer side
MIN_KERNEL = 25  # ... and at least this many working pixels
INK_FLOOR = 0.08  # ink departs from its paper by at least this share ...
NOISE_SIGMAS = 5.0  # ... and by this many of the paper's noise sigmas


@dataclass(frozen=True)
class Page:
    ink: np.ndarray  # (h, w) float32 in [0, 1] at the working resolution, ink high
    scale: float  # upload pixels per working pixel (>= 1)
    width: int  # of the upload as a person sees it (after EXIF orientation)
    height: int
    format: str


def _upright_size(img: Image.Image) -> tuple[int, int]:
    """The size after EXIF orientation, read before decoding: 5-8 swap the sides."""
    w, h = img.size
    try:
        orientation = int(img.getexif().get(0x0112, 1))
    except DECODER_ERRORS:  # a broken EXIF block: the pixels are decoded as stored
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _local_paper(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    s = min(1.0, PAPER_SIDE / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = np.asarray(Image.fromarray(gray, mode="F").resize(size, Image.Resampling.BOX), np.float32)
    # a stroke wider than the square would be kept as paper: at least MIN_KERNEL working
    # pixels (a picture filled by one thick digit is not reduced, and its strokes are ~10 px)
    k = max(3, round(PAPER_KERNEL * max(small.shape)), round(MIN_KERNEL * s)) | 1
    paper = ndimage.grey_closing(small, size=(k, k), mode="nearest")
    paper = ndimage.uniform_filter(paper, size=3, mode="nearest")
    return np.asarray(Image.fromarray(paper, mode="F").resize((w, h), Image.Resampling.BILINEAR), np.float32)


def ink_of(gray: np.ndarray) -> np.ndarray:
    """Luminance in [0, 1] -> ink strength in [0, 1] (an all-zero map when blank)."""
    lo, mid, hi = np.percentile(gray, (0.5, 50, 99.5))
    if mid - lo < hi - mid:  # light ink on dark (a board, a drawing app's black canvas)
        gray = 1.0 - gray
    paper = _local_paper(gray)
    ink = np.clip((paper - gray) / np.maximum(paper, 0.1), 0.0, None)
    # most pixels are paper: their spread is the noise
    sample = ink[:: max(1, ink.shape[0] // 256), :: max(1, ink.shape[1] // 256)]
    noise = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))
    floor = max(INK_FLOOR, NOISE_SIGMAS * noise)
    strong = ink[ink > floor]
    if strong.size == 0 or float(strong.max()) < MIN_CONTRAST:
        return np.zeros_like(ink, dtype=np.float32)
    top = max(float(np.percentile(strong, 95)), floor + MIN_CONTRAST)
    ink = np.clip((ink - floor) / (top - floor), 0.0, 1.0).astype(np.float32)
    ink = remove_rules(remove_rules(ink, horizontal=True), horizontal=False)
    return drop_specks(ink) if noise > 0 else ink


def read_page(img: Image.Image, side: int = READ_SIDE) -> Page:
    """An image from `open_image` -> its ink at the working resolution (at most `side`)."""
    fmt = img.format or ""
    width, height = _upright_size(img)
    gray = to_gray(decode(img, side))
    return Page(ink_of(gray), max(width, height) / max(gray.shape), width, height, fmt)
