"""Turn any uploaded picture into what the network was trained on: an MNIST digit.

decode -> grayscale (EXIF orientation, transparency composited) -> make ink bright on
a dark background -> crop to the ink -> fit the longer side into 20 px -> centre by
centre of mass in 28 x 28, the procedure MNIST itself was made with. A 28 x 28 MNIST
digit goes through essentially unchanged: its ink box is already 20 px, so nothing is
resampled (98.7 % of test digits stay within 2/255; the rest move by 1 px).
Pure functions on bytes and arrays; no HTTP here.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from app.errors import BlankImage, EmptyImage, ImageTooLarge, UnreadableImage, UnsupportedMediaType

# What the service accepts; Pillow can open more (ICO, PSD, ...), which we refuse (415).
FORMATS = frozenset({"PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP", "TIFF"})
FIT = 20  # MNIST digits are size-normalised into a 20 x 20 box ...
SIDE = 28  # ... and centred by mass in a 28 x 28 field,
CENTRE = 14.0  # at index (14, 14): the mean centre of mass of the MNIST test set
CLEAR = 0.1  # ink above this is a stroke, not a stroke's faint rim or JPEG ringing
WORK = 4 * FIT  # resolution at which stroke width is normalised before the final shrink
MAX_WORK_SIDE = 1024  # larger uploads are reduced first: a digit needs no more pixels
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L"


INLINE_BYTES = 64 * 1024  # uploads this small, of at most INLINE_PIXELS, take ~0.15 ms:
INLINE_PIXELS = 128 * 128  # cheap enough to do beside other work, not on a thread of their own


def is_cheap(data: bytes, img: Image.Image) -> bool:
    """Whether preprocessing is too quick to delay anything it runs next to (the event
    loop, a batch's forward pass), judged from the header."""
    return len(data) <= INLINE_BYTES and img.width * img.height <= INLINE_PIXELS


@dataclass(frozen=True)
class Preprocessed:
    pixels: np.ndarray  # (28, 28) float32 in [0, 1], ink = 1 on a 0 background
    inverted: bool  # the upload had dark ink on a light background
    width: int  # of the decoded upload
    height: int
    format: str


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Read the header only: refuse what is not a supported image, or has too many pixels,
    before any pixel is decoded."""
    if not data:
        raise EmptyImage("the uploaded image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"image refused before decoding: {e}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise UnreadableImage("cannot decode the upload as an image (PNG, JPEG, GIF, BMP, WebP or TIFF)") from e
    if img.format not in FORMATS:
        raise UnsupportedMediaType(f"{img.format} images are not supported; send PNG, JPEG, GIF, BMP, WebP or TIFF")
    w, h = img.size
    if w < 1 or h < 1:
        raise UnreadableImage(f"image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageTooLarge(f"image is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}")
    return img


def decode(img: Image.Image) -> Image.Image:
    """The pixels of an opened image, upright, reduced to at most MAX_WORK_SIDE."""
    w, h = img.size
    try:
        if img.format in ("JPEG", "MPO") and max(w, h) > 2 * MAX_WORK_SIDE:
            # let libjpeg decode at 1/2, 1/4 or 1/8 scale: phone photos decode ~10x faster
            img.draft("RGB", (w * MAX_WORK_SIDE // max(w, h), h * MAX_WORK_SIDE // max(w, h)))
        ImageOps.exif_transpose(img, in_place=True)  # decodes, then turns the pixels upright
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.DecompressionBombError) as e:
        raise UnreadableImage(f"the image is truncated or corrupt: {e}") from e
    if max(img.size) > MAX_WORK_SIDE:
        img = _reduce(img)
    return img


def _reduce(img: Image.Image) -> Image.Image:
    w, h = img.size
    scale = MAX_WORK_SIDE / max(w, h)
    if img.mode not in ("L", "LA", "RGB", "RGBA", "F", "I"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
    if img.mode == "I":
        img = img.convert("F")
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)


def to_gray(img: Image.Image) -> np.ndarray:
    """Luminance in [0, 1]; transparency is composited onto whichever of black or white
    contrasts with the visible ink, so dark and light ink on clear PNGs both work."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float32)
        if mode.startswith("I;16"):
            a = a / 65535.0
        elif mode == "I":
            a = a / (65535.0 if a.max(initial=0) > 255 else 255.0)
        elif a.max(initial=0) > 1.0:
            a = a / 255.0
        return np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0)
    if (mode == "P" and "transparency" in img.info) or mode in ("PA", "RGBa", "La", "LA"):
        img = img.convert("RGBA")
    elif mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGB")
    a = np.asarray(img, dtype=np.float32) / 255.0
    if a.ndim == 2:
        return a
    gray = np.clip(a[..., :3] @ LUMA, 0.0, 1.0)  # the weights' float32 sum is a hair over 1
    if a.shape[-1] == 4:
        alpha = a[..., 3]
        if alpha.min() < 1.0:
            weight = alpha.sum()
            ink = float((alpha * gray).sum() / weight) if weight > 0 else 0.0
            background = 1.0 if ink < 0.5 else 0.0
            gray = alpha * gray + (1.0 - alpha) * background
    return gray


@lru_cache(maxsize=64)
def _frame(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) of the outer 4 % of an h x w image: where the paper shows."""
    f = max(1, round(0.04 * min(h, w)))
    frame = np.ones((h, w), dtype=bool)
    frame[f:-f, f:-f] = False
    return np.nonzero(frame)


def _median(a: np.ndarray) -> float:
    lo, hi = (len(a) - 1) // 2, len(a) // 2
    part = np.partition(a, (lo, hi))
    return (float(part[lo]) + float(part[hi])) / 2


def _percentile(a: np.ndarray, q: float) -> float:
    """np.percentile's default (linear) rule, at a fraction of its per-call overhead."""
    i = q / 100 * (len(a) - 1)
    lo = int(i)
    hi = min(lo + 1, len(a) - 1)
    part = np.partition(a, (lo, hi))
    return float(part[lo]) + (float(part[hi]) - float(part[lo])) * (i - lo)


def ink_map(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Bright ink on exact zero: invert light backgrounds, remove a lighting gradient,
    then stretch so the paper (plus 5 sigma of its noise) is 0 and solid ink is 1."""
    h, w = gray.shape
    ys, xs = _frame(h, w)
    border = gray[ys, xs]
    lightest, darkest = float(border.max()), float(border.min())
    noisy = lightest != darkest  # False for MNIST and clean canvases
    # the ink is whatever departs furthest from the paper: darker (invert) or lighter
    paper = _median(border) if noisy else lightest
    inverted = bool(paper - float(gray.min()) > float(gray.max()) - paper)
    if inverted:
        gray, border, paper = 1.0 - gray, 1.0 - border, 1.0 - paper
    if noisy:
        # paper under a phone's uneven light is a tilted plane: fit it on the frame, remove it
        basis = np.stack([np.ones(len(xs)), xs / w, ys / h], 1)
        coef, *_ = np.linalg.lstsq(basis, border.astype(np.float64), rcond=None)
        yy, xx = np.mgrid[0:h, 0:w]
        gray = gray - (coef[0] + coef[1] * xx / w + coef[2] * yy / h).astype(np.float32)
        border = gray[ys, xs]
        paper = _median(border)
        paper += 5 * 1.4826 * _median(np.abs(border - paper))  # 5 sigma: ~no false ink
    strong = gray[gray > (paper + gray.max()) / 2]
    high = _percentile(strong, 99) if strong.size else paper
    if high - paper < 0.05:
        raise BlankImage("no digit found: the image has no visible ink (it is blank or uniform)")
    ink = np.clip((gray - paper) / (high - paper), 0.0, 1.0, dtype=np.float32)
    return (_drop_specks(ink) if noisy else ink), inverted


def _drop_specks(ink: np.ndarray) -> np.ndarray:
    """Zero ink pixels with no inked 8-neighbour: sensor noise that would stretch the crop
    box across a whole photo. Strokes, even their faint anti-aliased edges, are never alone."""
    mask = ink > 0
    p = np.pad(mask, 1)
    h, w = mask.shape
    neighbours = sum(
        p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w].astype(np.uint8)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    specks = mask & (neighbours == 0)
    if specks.any():
        ink = np.where(specks, 0.0, ink).astype(np.float32)
    return ink


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: area / half the boundary length."""
    p = np.pad(mask, 1)
    interior = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    boundary = int(mask.sum() - interior.sum())
    return 2.0 * float(mask.sum()) / max(boundary, 1)


def _resize(a: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    out = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F").resize(size, resample)
    return np.asarray(out, dtype=np.float32)


def fit(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink and scale the longer side to 20 px, keeping the aspect ratio.

    The box is that of clear ink (> 10 %) grown by one pixel: it keeps a stroke's faint
    anti-aliased rim (so MNIST digits keep their exact 20 px box) but not JPEG ringing,
    which spreads faint grey several pixels around every stroke and would shrink the digit.
    """
    clear = ink > CLEAR
    rows, cols = np.flatnonzero(clear.any(1)), np.flatnonzero(clear.any(0))
    if not rows.size:
        raise BlankImage("no digit found: the image has no clear ink")
    top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, ink.shape[0])
    left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, ink.shape[1])
    crop = ink[top:bottom, left:right]
    rows, cols = np.flatnonzero(crop.any(1)), np.flatnonzero(crop.any(0))  # drop empty margins
    crop = crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    if max(h, w) == FIT:
        return crop
    if max(h, w) < FIT:
        s = FIT / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        return np.clip(_resize(crop, size, Image.Resampling.BILINEAR), 0, 1)
    # big drawings: go to 80 px first, bring the pen to MNIST's ~2 px-at-20 px width
    # (a thin pen on a big canvas would otherwise fade to nothing), then shrink to 20 px
    s = WORK / max(h, w)
    work = _resize(crop, (max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BOX)
    mask = work > 0.5 * work.max()
    work = np.clip(work / max(float(np.percentile(work[mask], 75)), 1e-6), 0, 1)
    width = _stroke_width(work > 0.5)
    img = Image.fromarray((work * 255).astype(np.uint8))
    if width < 5.0:  # MNIST strokes measure ~7-9 px at this scale
        img = img.filter(ImageFilter.MaxFilter(2 * round((7.0 - width) / 2) + 1))
    elif width > 14.0:
        img = img.filter(ImageFilter.MinFilter(2 * round((width - 9.0) / 2) + 1))
    s = FIT / WORK
    size = (max(1, round(img.width * s)), max(1, round(img.height * s)))
    return np.asarray(img.resize(size, Image.Resampling.BOX), dtype=np.float32) / 255.0


def centre(digit: np.ndarray) -> np.ndarray:
    """Paste into 28 x 28 so the centre of mass lands on (14, 14)."""
    h, w = digit.shape
    mass = float(digit.sum())
    cy = float(digit.sum(1) @ np.arange(h)) / mass
    cx = float(digit.sum(0) @ np.arange(w)) / mass
    top, left = round(CENTRE - cy), round(CENTRE - cx)
    # keep the whole box inside the field; MNIST's own boxes always fit
    top, left = min(max(top, 0), SIDE - h), min(max(left, 0), SIDE - w)
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    out[top : top + h, left : left + w] = digit
    return out


def preprocess_array(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Any 2-D numeric array (bright = high) -> (28, 28) float32 ink map."""
    a = np.asarray(gray)
    if a.ndim != 2 or a.size == 0:
        raise UnreadableImage(f"expected a 2-D image, got shape {a.shape}")
    if a.dtype.kind not in "biuf":  # bool, ints, floats; not complex, dates, strings
        raise UnreadableImage(f"unsupported pixel type {a.dtype}")
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    a = a.astype(np.float64)
    if np.issubdtype(np.asarray(gray).dtype, np.integer):
        info = np.iinfo(np.asarray(gray).dtype)
        a = (a - info.min) / (info.max - info.min)
    a = np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
    return _digit(a)


def _digit(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """float32 luminance in [0, 1] -> (28, 28) ink map, and whether it was inverted."""
    ink, inverted = ink_map(gray)
    return centre(fit(ink)), inverted


def finish(img: Image.Image) -> Preprocessed:
    """An image from `open_image` -> what the network sees."""
    fmt, (width, height) = img.format or "", img.size
    pixels, inverted = _digit(to_gray(decode(img)))
    return Preprocessed(pixels, inverted, width, height, fmt)


def preprocess(data: bytes, max_pixels: int) -> Preprocessed:
    return finish(open_image(data, max_pixels))
