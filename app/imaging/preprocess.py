"""Turn any uploaded picture into what the network was trained on: an MNIST digit.

decode -> grayscale (EXIF orientation, transparency composited; a picture zoomed without
smoothing taken back to its own grid; a scan smaller than the digit box enlarged) -> crop
away a mat around the page (a desk's edge, a screenshot's frame, the light page a dark
picture is pasted on) -> tell ink from paper
(the frame's median, or the local paper under a shadow) and make ink bright on zero ->
erase ruled lines -> crop to the ink ->
Lanczos the longer side to 20 px, thin strokes back to full strength -> centre by centre
of mass in 28 x 28, the procedure MNIST itself was made with. A 28 x 28 MNIST digit goes
through essentially unchanged: its ink box is already 20 px, so nothing is resampled.
Every step was kept because it measured better on uploads than the plain pipeline
without it (`benchmarks/realworld.py`); training calls this same function on rendered
uploads, so the network learns what it will be shown.
Pure functions on bytes and arrays; no HTTP here.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from convlens.app.core.errors import BlankImage, EmptyImage, ImageTooLarge, UnreadableImage, UnsupportedMediaType
from convlens.app.imaging.paper import lift_lines
from convlens.app.imaging.strokes import thin_thick

# What the service accepts; Pillow can open more (ICO, PSD, ...), which we refuse (415).
FORMATS = frozenset({"PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP", "TIFF"})
FIT = 20  # MNIST digits are size-normalised into a 20 x 20 box ...
SIDE = 28  # ... and centred by mass in a 28 x 28 field,
CENTRE = 14.0  # at index (14, 14): the mean centre of mass of the MNIST test set
CLEAR = 0.3  # the crop box is that of ink above this: strokes, not rims or JPEG ringing
MIN_CONTRAST = 0.05  # an image whose ink departs less than this from the paper is blank
RULE_MAX = 0.03  # ruled lines are at most this share of the picture's height (or width)
SHADOW_MIN_SIDE = 128  # pictures this big may be photos with a shadow across the paper
PAPER_MAP_SIDE = 64  # resolution of the local paper estimate
SHADOW_DEPTH = 0.05  # paper whose level varies more than this across the picture is shaded
MAT_MIN_SIDE = 32  # smaller pictures (an MNIST digit) are a digit, not a page with a mat or rules
MAT_INK = 0.25  # a mat departs from the paper by at least this share of the strongest ink
MAT_SOLID = 0.95  # a line this much ink is solid: the edge of a desk, a frame, a pasted picture
MAT_GAP = 0.02  # ... and one with at most this much is paper
MAT_MAX = 1 / 3  # bands are at most this share of the picture deep
MAT_FILLED = 0.995  # a block this full has no digit inside it (a sans-serif 1 is a solid bar)
MAX_WORK_SIDE = 1024  # larger uploads are reduced first: a digit needs no more pixels
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L"


# What Pillow's decoders raise on a damaged or hostile file: besides the documented
# OSError and ValueError, fuzzed files (benchmarks/fuzz_uploads.py) reach ZeroDivisionError,
# OverflowError and TypeError deep inside the TIFF and JPEG plugins. Any of them means the
# file is unreadable (400), never a server error.
DECODER_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    MemoryError,
    ArithmeticError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    struct.error,
)

INLINE_BYTES = 64 * 1024  # uploads this small, of at most INLINE_PIXELS, take ~0.15 ms:
INLINE_PIXELS = 128 * 128  # (fewer) cheap enough to do beside other work, not on a thread of their own;
# from 128 px a side a noisy picture is also searched for a shadow, ~5 ms


def is_cheap(data: bytes, img: Image.Image) -> bool:
    """Whether preprocessing is too quick to delay anything it runs next to (the event
    loop, a batch's forward pass), judged from the header."""
    return len(data) <= INLINE_BYTES and img.width * img.height < INLINE_PIXELS


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
    except (UnidentifiedImageError, *DECODER_ERRORS) as e:
        raise UnreadableImage("cannot decode the upload as an image (PNG, JPEG, GIF, BMP, WebP or TIFF)") from e
    if img.format not in FORMATS:
        raise UnsupportedMediaType(f"{img.format} images are not supported; send PNG, JPEG, GIF, BMP, WebP or TIFF")
    w, h = img.size
    if w < 1 or h < 1:
        raise UnreadableImage(f"image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageTooLarge(f"image is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}")
    return img


def decode(img: Image.Image, max_side: int = MAX_WORK_SIDE) -> Image.Image:
    """The pixels of an opened image, upright, reduced to at most `max_side`."""
    w, h = img.size
    try:
        if img.format in ("JPEG", "MPO") and max(w, h) > 2 * max_side:
            # let libjpeg decode at 1/2, 1/4 or 1/8 scale: phone photos decode ~10x faster
            # (a side of 0 divides by zero inside Pillow: a 30 x 43,304 strip gets one)
            side = max_side / max(w, h)
            img.draft("RGB", (max(1, int(w * side)), max(1, int(h * side))))
        ImageOps.exif_transpose(img, in_place=True)  # decodes, then turns the pixels upright
        if max(img.size) > max_side:
            img = _reduce(img, max_side)
    except (*DECODER_ERRORS, Image.DecompressionBombError) as e:
        raise UnreadableImage(f"the image is truncated or corrupt: {type(e).__name__}: {e}") from e
    return img


def _reduce(img: Image.Image, max_side: int) -> Image.Image:
    w, h = img.size
    scale = max_side / max(w, h)
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
def _frame(h: int, w: int) -> tuple[np.ndarray, ...]:
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


def _levels(gray: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """The frame's pixels, the paper (their median), the darkest and the lightest level."""
    ys, xs = _frame(*gray.shape)
    border = gray[ys, xs]
    return border, _median(border), float(gray.min()), float(gray.max())


def ink_map(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Bright ink on exact zero, stretched so solid ink is 1, and whether it was inverted.

    The paper is the median of the picture's outer frame (a digit touching or filling the
    frame rarely covers half of it); the ink is whatever departs furthest from it, darker
    or lighter. A photo with a shadow across it has no single paper level: there the paper
    is measured locally (`_unshaded`). The digit is refused as blank only when nothing
    departs from the paper by 5 % of full scale: faint pencil is still a digit.
    """
    border, paper, low, high = _levels(gray)
    inverted = bool(paper - low > high - paper)
    noise = _noise(gray) if float(border.min()) != float(border.max()) else 0.0  # 0: a clean canvas
    if min(gray.shape) >= SHADOW_MIN_SIDE and (noise > 0 or _unevenly_lit(gray, inverted)):
        # A shadow darkens part of the frame: its paper is neither ink nor the paper's
        # level. Ink departs beyond the frame's whole range, on one side clearly more;
        # if neither side does (ink in the frame), the median's answer stands.
        # (A clean frame, a drawing or a screenshot, has no shadow reaching it.)
        dark, light = _percentile(border, 2) - low, high - _percentile(border, 98)
        decisive = max(dark, light) > max(2 * min(dark, light), MIN_CONTRAST)
        shaded_inverted = dark > light if decisive else inverted
        unshaded = _unshaded(gray, noise, shaded_inverted)
        if unshaded is not None:
            return unshaded, shaded_inverted
    if inverted:
        gray, paper = 1.0 - gray, 1.0 - paper
    return _stretch(gray - paper, noise), inverted


def _unevenly_lit(gray: np.ndarray, inverted: bool) -> bool:
    """A noiseless picture (rendered, not photographed) can still be shaded: the paper
    along its four edges is at different levels. Each edge's paper is read at its
    paper-side 10 %, not its median: a digit that fills the frame covers half of an edge
    or more (a low-resolution scan enlarged), and its strokes are not a shadow. A digit
    covering a whole edge still reads as shaded (docs/preprocessing.md says why that stays)."""
    q = 90.0 if inverted else 10.0
    sides = [_percentile(gray[0], q), _percentile(gray[-1], q), _percentile(gray[:, 0], q), _percentile(gray[:, -1], q)]
    return max(sides) - min(sides) > SHADOW_DEPTH


def _unshaded(gray: np.ndarray, noise: float, inverted: bool) -> np.ndarray | None:
    """The ink of a photo with a shadow across the paper, or None if the paper is evenly lit.

    On a 64 px copy, a grey closing (maximum, then minimum, over a square a quarter of the
    picture wide) removes every dark stroke and keeps the paper, shadow edges where they
    were (a median moves them wherever the digit is dense); an opening does the same for
    light strokes. Dark ink is measured as a share of the local paper, since light falls on
    paper and ink alike.
    """
    h, w = gray.shape
    s = min(1.0, PAPER_MAP_SIDE / max(h, w))
    small = _resize(gray, (max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BOX)
    k = max(3, round(0.25 * min(small.shape)) | 1)
    # one pixel wider on the way back, so a blurred shadow edge is not left as a stroke
    if inverted:
        paper = _slide(_slide(small, k, np.maximum), k + 2, np.minimum)
    else:
        paper = _slide(_slide(small, k, np.minimum), k + 2, np.maximum)
    if float(paper.max() - paper.min()) <= SHADOW_DEPTH:
        return None
    paper = _resize(paper, (w, h), Image.Resampling.BILINEAR)
    ink = (paper - gray) / np.maximum(paper, 0.1) if inverted else gray - paper
    if float(ink.max()) < MIN_CONTRAST:
        return None
    return _stretch(ink, noise)


def _slide(a: np.ndarray, k: int, op: np.ufunc) -> np.ndarray:
    """`op` (minimum or maximum) over a k x k square around each pixel, edges replicated."""
    r = k // 2
    p = np.pad(a, r, mode="edge")
    rows = op.reduce(np.lib.stride_tricks.sliding_window_view(p, k, axis=0), axis=-1)
    return op.reduce(np.lib.stride_tricks.sliding_window_view(rows, k, axis=1), axis=-1)


def _noise(gray: np.ndarray) -> float:
    """Sigma of the pixel noise, from differences of neighbours along the picture's edges:
    unlike the spread of the edge pixels, it is not raised by a digit that touches or
    fills the frame, nor by shading. Whether there is noise at all is judged from second
    differences, which a smooth ramp does not have: a digit enlarged smoothly from a
    low-resolution scan has ramps all along its edges, and is no photo. (How much is
    measured from first differences: a JPEG's smoothed noise has small second ones.)"""
    edges = [e for e in (gray[0], gray[-1], gray[:, 0], gray[:, -1]) if e.size > 2]
    if not edges or _median(np.abs(np.concatenate([np.diff(e, 2) for e in edges]))) == 0:
        return 0.0
    steps = np.concatenate([np.diff(e) for e in edges])
    return 1.4826 * _median(np.abs(steps)) / np.sqrt(2)


def _stretch(ink: np.ndarray, noise: float) -> np.ndarray:
    """Ink over the paper's noise (5 sigma, yet never above half the ink) -> [0, 1], solid
    ink at 1; a page's printed lines removed (`paper.py`, and level rules in pictures too
    small for it), and on noisy paper lone specks."""
    top = float(ink.max())
    if top < MIN_CONTRAST:
        raise BlankImage("no digit found: the image has no visible ink (it is blank or uniform)")
    floor = min(5 * noise, top / 2)
    strong = ink[ink > (floor + top) / 2]
    high = _percentile(strong, 99) if strong.size else top
    ink = np.clip((ink - floor) / max(high - floor, 1e-6), 0.0, 1.0, dtype=np.float32)
    if min(ink.shape) >= MAT_MIN_SIDE:  # a page, perhaps askew (an MNIST digit is none)
        ink, blank = lift_lines(ink)
        if blank:
            raise BlankImage("no digit found: the image has nothing on it but the paper's printed lines")
    ink = remove_rules(remove_rules(ink, horizontal=True), horizontal=False)
    return drop_specks(ink) if noise > 0 else ink


def remove_rules(ink: np.ndarray, horizontal: bool) -> np.ndarray:
    """Ruled or squared paper: thin lines across most of the picture, at least two of
    them, are replaced by what lies beside them (so a stroke crossing a line stays whole).
    A digit's own bar is never thin enough: only lines under 3 % of the height qualify."""
    a = ink if horizontal else ink.T
    h = a.shape[0]
    if h < 1 / RULE_MAX:  # not even a 1 px line is thin enough
        return ink
    across = (a > 0.2).mean(1) > 0.6
    if not across.any():
        return ink
    edges = np.flatnonzero(np.diff(np.concatenate([[0], across.astype(np.int8), [0]])))
    runs = [(i, j) for i, j in zip(edges[::2], edges[1::2], strict=True) if j - i <= RULE_MAX * h]
    if len(runs) < 2:
        return ink
    a = a.copy()
    for i, j in runs:
        above = a[i - 1] if i > 0 else a[min(j, h - 1)]
        below = a[j] if j < h else above
        a[i:j] = np.minimum(a[i:j], np.maximum(above, below))
    return a if horizontal else a.T


def drop_specks(ink: np.ndarray) -> np.ndarray:
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


def _resize(a: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    out = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F").resize(size, resample)
    return np.asarray(out, dtype=np.float32)


def _trim(a: np.ndarray) -> np.ndarray:
    """`a` without its empty margins (it holds some ink)."""
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit(ink: np.ndarray) -> np.ndarray:
    """Crop to the clear ink, thin a marker's strokes to MNIST's width (`strokes.py`),
    Lanczos the longer side to 20 px, and bring thin strokes back to full strength.

    A thin pen on a big canvas averages down to a faint line; rescaling so the typical
    stroke pixel is 1 restores it without thickening anything, so loops stay open at any
    pen width (the earlier dilate/erode stroke normalisation closed them).
    """
    clear = ink > CLEAR
    rows, cols = np.flatnonzero(clear.any(1)), np.flatnonzero(clear.any(0))
    if not rows.size:
        raise BlankImage("no digit found: the image has no clear ink")
    # grown by a pixel to keep a stroke's faint rim, so an MNIST digit keeps its 20 px box
    top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, ink.shape[0])
    left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, ink.shape[1])
    crop = _trim(ink[top:bottom, left:right])
    thinned = thin_thick(crop)
    if thinned is not crop:  # a marker's strokes, eroded: its box shrank with them
        crop = _trim(thinned)
    h, w = crop.shape
    if max(h, w) == FIT:
        return crop
    s = FIT / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    out = np.clip(_resize(crop, size, Image.Resampling.LANCZOS), 0.0, 1.0)
    visible = out[out > 0.05]
    level = _percentile(visible, 95) if visible.size else 1.0
    if level < 0.9:
        out = np.clip(out / max(level, 0.05), 0.0, 1.0)
    return out


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
    return _to_mnist(a)


def native_grid(gray: np.ndarray) -> np.ndarray:
    """A picture enlarged without smoothing (a low-resolution scan or pixel art zoomed in
    an editor) reduced back to the grid it was drawn on.

    Every row and every column of such a picture repeats at least once: blocks of the
    zoom factor, or of its floor and ceiling when the factor is not whole. Their staircase
    edges are the grid's, not the digit's, and read as a different digit from the same
    scan enlarged smoothly; back on its own grid, the scan is read the same way at every
    zoom. Only a reduction that loses nothing is made: the smaller grid, zoomed again,
    must give back every pixel. A picture with a row or column of its own anywhere (any
    anti-aliased edge, any noise), or blocks off the grid (a zoomed picture pasted on a
    page), is left alone.
    """
    h, w = gray.shape
    if min(h, w) < 2:
        return gray
    rows = _grid_side(gray)
    cols = _grid_side(gray.T) if rows is not None else None
    if rows is None or cols is None:
        return gray
    small = _resize(gray, (cols, rows), Image.Resampling.NEAREST)
    return small if np.array_equal(_resize(small, (w, h), Image.Resampling.NEAREST), gray) else gray


def _grid_side(a: np.ndarray) -> int | None:
    """The fewest rows that `a` was zoomed from without smoothing, or None."""
    h = a.shape[0]
    new = (a[1:] != a[:-1]).any(1)  # row i + 1 differs from row i
    if new[0] or new[-1] or (new[1:] & new[:-1]).any():
        return None  # a run of one row: the usual answer, found without measuring every run
    k = int(np.diff(np.flatnonzero(new) + 1, prepend=0, append=h).min())
    # a zoom of h / n makes runs of its floor and ceiling, so between h / (k + 1) and h / k
    # rows; the coarsest whose zoom starts a new row wherever `a` does is the grid
    for n in range(max(1, -(-h // (k + 1))), h // k + 1):
        source = _resize(np.arange(n, dtype=np.float32)[:, None], (1, h), Image.Resampling.NEAREST)[:, 0]
        if not (new & (source[1:] == source[:-1])).any():
            return n
    return None


def _to_mnist(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """float32 luminance in [0, 1] -> (28, 28) ink map, and whether it was inverted."""
    gray = native_grid(gray)
    h, w = gray.shape
    if max(h, w) < FIT:
        # A scan smaller than the digit box: its strokes are a pixel wide and touch the
        # frame, so the paper's noise (read along the frame) and the lone-speck filter
        # would take the digit itself for noise. Enlarged smoothly first, it is read like
        # any other picture.
        k = -(-2 * FIT // max(h, w))
        gray = np.clip(_resize(gray, (w * k, h * k), Image.Resampling.BILINEAR), 0.0, 1.0)
    box = _mat_box(_departure(gray)) if min(h, w) >= MAT_MIN_SIDE else None
    if box is not None:
        # read inside the mat: the page's paper, not the mat, is what the ink departs from
        with contextlib.suppress(BlankImage):
            ink, inverted = ink_map(gray[box])
            return centre(fit(ink)), inverted
    ink, inverted = ink_map(gray)
    return centre(fit(ink)), inverted


def _departure(gray: np.ndarray) -> np.ndarray:
    """Where the picture departs clearly from the frame's median, towards the ink's side:
    a first, plain look for mats (no noise or shading model: a desk is not a shadow)."""
    _, paper, low, high = _levels(gray)
    away = paper - gray if paper - low > high - paper else gray - paper
    return away > MAT_INK * max(float(away.max()), MIN_CONTRAST)


def _solid_run(frac: np.ndarray) -> int:
    """How many leading lines are solid."""
    thin = frac < MAT_SOLID
    return int(thin.argmax()) if thin.any() else len(frac)


def _paper_line(frac: np.ndarray) -> int | None:
    """Where the page starts after a mat's edge (within a blurred edge's width, and as far
    again while the lines stay paper, past the edge's faint tail), or None: no paper."""
    blur = max(2, round(0.01 * len(frac)))
    clear = frac[: 2 * blur + 1] <= MAT_GAP
    first = int(clear.argmax())
    if not clear[first] or first > blur:
        return None
    more = clear[first : first + blur + 1]
    return first + (int(more.argmin()) if not more.all() else len(more))


def _mat_box(solid: np.ndarray) -> tuple[slice, slice] | None:
    """Where the page is, if the picture has a mat around or inside it; else None.

    A mat is ink-like but not ink: the desk beside a photographed page, a scanner lid's
    edge, a screenshot's frame (solid bands along a side, a line of paper between them
    and the digit), or a dark picture pasted on a light page, such as an MNIST digit in a
    screenshot (a solid rim all round the ink). Read against the page's paper, either
    became the digit. A stroke never qualifies: a bar along a tight crop runs into the
    rest of the digit with no paper between, and no digit is rimmed on all four sides.
    """
    h, w = solid.shape
    rows, cols = solid.mean(1), solid.mean(0)
    bands = [_solid_run(rows), _solid_run(rows[::-1]), _solid_run(cols), _solid_run(cols[::-1])]
    if max(bands[:2]) > MAT_MAX * h or max(bands[2:]) > MAT_MAX * w:
        return None  # solid across a third of the picture: a blob or a tight crop of one
    top, bottom, left, right = bands
    if any(bands):
        # paper is looked for between the other sides' bands (a corner of a desk)
        inner = solid[top : h - bottom, left : w - right]
        i_rows, i_cols = inner.mean(1), inner.mean(0)
        cuts = []
        for band, frac in zip(bands, (i_rows, i_rows[::-1], i_cols, i_cols[::-1]), strict=True):
            gap = _paper_line(frac) if band else None
            cuts.append(band + gap if gap is not None else 0)  # no paper after it: keep it
        top, bottom, left, right = cuts
    page = solid[top : h - bottom, left : w - right]
    ys, xs = np.flatnonzero(page.any(1)), np.flatnonzero(page.any(0))
    if ys.size:
        y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
        box = page[y0:y1, x0:x1]
        rim = min(box[0].mean(), box[-1].mean(), box[:, 0].mean(), box[:, -1].mean())
        if rim >= MAT_SOLID and box.mean() < MAT_FILLED:
            # inside the rim by a blurred edge's width, so the edge is not read as ink
            by, bx = max(2, round(0.01 * h)), max(2, round(0.01 * w))
            top, bottom = top + y0 + by, bottom + page.shape[0] - y1 + by
            left, right = left + x0 + bx, right + page.shape[1] - x1 + bx
    if not (top or bottom or left or right) or min(h - bottom - top, w - right - left) < FIT:
        return None  # no mat, or too little inside it to be the page
    return slice(top, h - bottom), slice(left, w - right)


def preprocess_image(img: Image.Image) -> Preprocessed:
    """An image from `open_image` -> what the network sees."""
    fmt, (width, height) = img.format or "", img.size
    pixels, inverted = _to_mnist(to_gray(decode(img)))
    return Preprocessed(pixels, inverted, width, height, fmt)


def preprocess(data: bytes, max_pixels: int) -> Preprocessed:
    return preprocess_image(open_image(data, max_pixels))
