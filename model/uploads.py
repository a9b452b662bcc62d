"""Digits as people upload them: an MNIST digit, or a typed one, rendered as the file a
person would send (photo, drawing, screenshot, scan).

Shared by training, which draws part of each batch from these uploads passed through the
serving preprocessing, and by `benchmarks/realworld.py`, which measures the service on a
tuning split and a held-out split. A family is a function
(digit, label, rng, style) -> (file bytes, content type); `Style` holds the parameter ranges,
so the held-out split and training draw from different ones.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Upload = tuple[bytes, str]
Family = Callable[[np.ndarray, int, np.random.Generator, "Style"], Upload]
Range = tuple[float, float]

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")


@dataclass(frozen=True)
class Style:
    """Parameter ranges of the families; one per use so no split sees another's."""

    pen_width: tuple[Range, ...]  # constant pen width as a share of the digit's height
    big_height: Range  # px, digits drawn on big canvases
    small_height: Range  # px, small digits on big canvases
    low_res: Range  # px, the side of a low-resolution digit before it is enlarged
    fonts: str  # substring of the font file names to use ("Sans", "Serif", ...)
    font_exclude: str = "\0"  # ... and to leave out
    marker_width: Range = (0.05, 0.12)  # a marker's or finger's stroke, as a share of the canvas side
    marker_fill: Range = (0.5, 0.85)  # ... the digit's height, as a share of the canvas side
    rule_tilt: Range = (0.5, 3.0)  # degrees a photographed ruled page is askew


TUNE = Style(
    pen_width=((0.012, 0.03), (0.05, 0.08)),
    big_height=(120, 260),
    small_height=(40, 70),
    low_res=(18, 24),
    fonts="Sans",
    font_exclude="Mono",
)
HELDOUT = Style(
    # thin ballpoint, medium felt-tip, fat marker
    pen_width=((0.006, 0.015), (0.03, 0.05), (0.08, 0.13)),
    big_height=(180, 420),
    small_height=(22, 45),
    low_res=(8, 16),
    fonts="Serif",
    marker_width=(0.07, 0.14),  # about a tenth of the canvas side
    marker_fill=(0.4, 0.8),
    rule_tilt=(0.3, 4.0),
)
TRAIN = Style(
    pen_width=((0.008, 0.02), (0.02, 0.06), (0.06, 0.12)),
    big_height=(100, 360),
    small_height=(26, 60),
    low_res=(7, 20),
    fonts="Sans",
    marker_width=(0.04, 0.15),
    marker_fill=(0.35, 0.9),
)


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(*r))


def _enlarge(digit: np.ndarray, side: int, resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """The 28 x 28 digit at side x side, as ink strength in [0, 1]."""
    img = Image.fromarray(digit).resize((side, side), resample)
    return np.asarray(img, np.float32) / 255


def ink_box(ink: np.ndarray, level: float = 0.1) -> np.ndarray:
    """The smallest box holding every pixel above `level` (any numeric array)."""
    rows, cols = np.flatnonzero((ink > level).any(1)), np.flatnonzero((ink > level).any(0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _place(ink: np.ndarray, canvas: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    """Ink pasted into an empty canvas (h, w) at (top, left); what falls outside is cut."""
    out = np.zeros(canvas, np.float32)
    h, w = ink.shape
    top, left = at
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, canvas[0]), min(left + w, canvas[1])
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = ink[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def _paint(ink: np.ndarray, paper: np.ndarray, pen: np.ndarray) -> Image.Image:
    """RGB picture: paper (h, w, 3) or (3,) and pen colour (3,), mixed by ink strength."""
    rgb = paper + (pen - paper) * ink[..., None]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _dark_pen(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return np.full(3, rng.uniform(0, 60))  # black or grey
    return np.array([rng.uniform(0, 60), rng.uniform(0, 70), rng.uniform(90, 200)])  # blue


def _white_paper(rng: np.random.Generator) -> np.ndarray:
    return np.full(3, rng.uniform(215, 255))


def _save_photo_or_png(img: Image.Image, rng: np.random.Generator) -> Upload:
    if rng.random() < 0.5:
        return encode(img, "JPEG", quality=int(rng.integers(70, 95))), "image/jpeg"
    return encode(img, "PNG"), "image/png"


# -- the families the benchmark's tuning split uses (the service's earlier set) -----------


def _on_canvas(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bigger, non-square canvas with the digit placed off-centre."""
    h, w = ink.shape
    ch, cw = int(h * rng.uniform(1.1, 1.8)), int(w * rng.uniform(1.2, 2.2))
    return _place(ink, (ch, cw), (int(rng.integers(0, ch - h + 1)), int(rng.integers(0, cw - w + 1))))


def paper_jpeg(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    ink = _on_canvas(_enlarge(digit, 28 * int(rng.integers(4, 15))), rng)
    img = _paint(ink, np.full(3, rng.uniform(200, 250)), np.full(3, rng.uniform(0, 70)))
    return encode(img, "JPEG", quality=int(rng.integers(70, 95))), "image/jpeg"


def transparent_png(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    alpha = _on_canvas(_enlarge(digit, 28 * int(rng.integers(2, 11))), rng)
    color = rng.integers(0, 90, 3) if rng.random() < 0.7 else rng.integers(190, 256, 3)  # dark or light pen
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., :3] = color
    rgba[..., 3] = np.round(alpha * 255)
    return encode(Image.fromarray(rgba, "RGBA"), "PNG"), "image/png"


def thick_pen(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    big = Image.fromarray(digit).resize((28 * int(rng.integers(8, 13)),) * 2, Image.Resampling.BICUBIC)
    big = big.filter(ImageFilter.MaxFilter(int(rng.choice([5, 7, 9]))))
    ink = _on_canvas(np.asarray(big, np.float32) / 255, rng)
    return encode(_paint(ink, np.full(3, 255.0), np.zeros(3)).convert("L"), "PNG"), "image/png"


def tilted(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    big = Image.fromarray(digit).resize((28 * int(rng.integers(4, 9)),) * 2, Image.Resampling.BICUBIC)
    big = big.rotate(float(rng.uniform(-12, 12)), Image.Resampling.BICUBIC, expand=True)
    ink = _on_canvas(np.asarray(big, np.float32) / 255, rng)
    return encode(_paint(ink, np.full(3, 255.0), np.zeros(3)).convert("L"), "PNG"), "image/png"


def phone_photo(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    side = 28 * int(rng.integers(12, 31))
    blurred = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    blurred = blurred.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    ink = _on_canvas(np.asarray(blurred, np.float32) / 255, rng)
    h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w]
    light = 1 - 0.25 * rng.random() * (xx / w) - 0.2 * rng.random() * (yy / h)  # uneven light
    paper = rng.uniform(150, 225) * light
    gray = paper + (rng.uniform(20, 60) - paper) * ink + rng.normal(0, 4, ink.shape)
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 0.97)])  # warm indoor light
    rgb = (gray[..., None] * tint).clip(0, 255).astype(np.uint8)
    return encode(Image.fromarray(rgb), "JPEG", quality=int(rng.integers(75, 92))), "image/jpeg"


def tight_crop(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """Cropped to the ink: the digit touches all four edges."""
    ink = ink_box(_enlarge(digit, 28 * int(rng.integers(3, 9))))
    return _save_photo_or_png(_paint(ink, _white_paper(rng), _dark_pen(rng)), rng)


def fine_pen(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A big drawing with thin strokes: only the core of the MNIST stroke is inked."""
    ink = _enlarge(digit, 28 * int(rng.integers(10, 19)))
    ink = (ink > rng.uniform(0.6, 0.85)).astype(np.float32)
    img = _paint(_on_canvas(ink, rng), _white_paper(rng), _dark_pen(rng))
    return _save_photo_or_png(img, rng)


def round_shadow(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A photo with a soft round shadow (a head, a hand seen from above) over part of the page."""
    ink = _on_canvas(_enlarge(digit, 28 * int(rng.integers(5, 13))), rng)
    h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * rng.uniform(-0.2, 1.2), w * rng.uniform(-0.2, 1.2)
    ry, rx = h * rng.uniform(0.3, 0.9), w * rng.uniform(0.3, 0.9)
    d = (np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) - 1) * min(ry, rx)  # px outside the rim
    soft = max(h, w) * rng.uniform(0.02, 0.12)
    dark = 1 - rng.uniform(0.25, 0.55) / (1 + np.exp(d / soft))
    paper = rng.uniform(190, 240) * dark
    gray = paper + (rng.uniform(15, 60) * dark - paper) * ink + rng.normal(0, 4, ink.shape)
    img = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).convert("RGB")
    return encode(img, "JPEG", quality=int(rng.integers(70, 90))), "image/jpeg"


# -- the families only the held-out split and training use --------------------------------


def _skeleton(digit: np.ndarray) -> np.ndarray:
    """(N, 2) points, in 28-px units, along the middle of the digit's strokes."""
    from skimage.morphology import skeletonize

    mask = _enlarge(digit, 112, Image.Resampling.BILINEAR) > 0.45
    ys, xs = np.nonzero(skeletonize(mask))
    return np.stack([ys, xs], 1).astype(np.float32) / 4


def pen_stroke(digit: np.ndarray, height: int, width: float, supersample: int = 2) -> np.ndarray:
    """The digit redrawn with a round pen of constant `width` px, `height` px tall: what a
    drawing app or a felt-tip makes, unlike MNIST's blurred strokes."""
    pts = _skeleton(digit)
    if not len(pts):
        return ink_box(_enlarge(digit, height))
    cells = [(round(y * 4), round(x * 4)) for y, x in pts]  # the skeleton's 112-px grid
    on = set(cells)
    lo, hi = pts.min(0), pts.max(0)
    s = supersample * max(height - width, 2.0) / max(float((hi - lo).max()), 0.25)
    pad = supersample * width / 2 + 1  # the pen's round ends stay inside the picture
    xy = (pts - lo) * s + pad
    h, w = (int(np.ceil(v)) for v in (hi - lo) * s + 2 * pad)
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    r = supersample * width / 2
    step = s / 4
    for (gy, gx), (y, x) in zip(cells, xy, strict=True):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
            if (gy + dy, gx + dx) in on:
                draw.line((x, y, x + dx * step, y + dy * step), fill=255, width=max(1, round(2 * r)))
    img = img.resize((max(1, round(w / supersample)), max(1, round(h / supersample))), Image.Resampling.BOX)
    return np.asarray(img, np.float32) / 255


def _pen_width(rng: np.random.Generator, style: Style) -> float:
    return _uniform(rng, style.pen_width[int(rng.integers(len(style.pen_width)))])


def pen(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """Drawn with a constant-width pen, from a thin ballpoint to a fat marker, on a big canvas."""
    height = int(_uniform(rng, style.big_height))
    ink = pen_stroke(digit, height, max(1.0, _pen_width(rng, style) * height))
    side = int(max(ink.shape) * rng.uniform(1.15, 1.8))
    h, w = ink.shape
    ink = _place(ink, (side, side), (int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))))
    if rng.random() < 0.5:  # a drawing app's black canvas
        return encode(_paint(ink, np.zeros(3), np.full(3, 255.0)), "PNG"), "image/png"
    return _save_photo_or_png(_paint(ink, _white_paper(rng), _dark_pen(rng)), rng)


def marker(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A finger on a phone's drawing canvas, or a felt-tip marker: a round stroke whose width
    is a share of the canvas side, so a digit drawn small on the canvas has fat strokes."""
    side = int(rng.integers(200, 700))
    height = int(_uniform(rng, style.marker_fill) * side)
    ink = pen_stroke(digit, height, _uniform(rng, style.marker_width) * side)
    h, w = ink.shape
    side = max(side, h, w)
    ink = _place(ink, (side, side), (int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))))
    if rng.random() < 0.5:  # a drawing app's canvas, either colour
        light = rng.random() < 0.5
        return encode(_paint(ink, np.full(3, 255.0 * light), np.full(3, 255.0 * (not light))), "PNG"), "image/png"
    return _save_photo_or_png(_paint(ink, _white_paper(rng), _dark_pen(rng)), rng)


def small_offcentre(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A small digit far from the middle of a big canvas."""
    height = int(_uniform(rng, style.small_height))
    if rng.random() < 0.5:
        ink = pen_stroke(digit, height, max(1.0, _pen_width(rng, style) * height * 2))
    else:
        ink = ink_box(_enlarge(digit, round(height * 28 / 20)))
    canvas = int(rng.integers(300, 800)), int(rng.integers(300, 800))
    h, w = ink.shape
    top, left = (int(rng.uniform(0.02, 0.2) * side) for side in canvas)
    if rng.random() < 0.5:
        top = canvas[0] - h - top
    if rng.random() < 0.5:
        left = canvas[1] - w - left
    ink = _place(ink, canvas, (top, left))
    return _save_photo_or_png(_paint(ink, _white_paper(rng), _dark_pen(rng)), rng)


def frame_cut(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """The frame touches the digit or cuts a little of it off, as a tight crop or a scan does."""
    ink = ink_box(_enlarge(digit, 28 * int(rng.integers(3, 7))))
    h, w = ink.shape
    cut = [int(rng.uniform(0, 0.08) * h) if rng.random() < 0.4 else 0 for _ in range(4)]
    ink = ink[cut[0] : h - cut[1], cut[2] : w - cut[3]]
    return _save_photo_or_png(_paint(ink, _white_paper(rng), _dark_pen(rng)), rng)


def low_res(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A low-resolution digit filling its frame (an 8-16 px scan), enlarged for upload."""
    side = int(_uniform(rng, style.low_res))
    box = ink_box(digit.astype(np.float32) / 255)
    h, w = box.shape
    small = Image.fromarray((box * 255).astype(np.uint8)).resize(
        (max(2, round(side * w / max(h, w))), max(2, round(side * h / max(h, w)))), Image.Resampling.BOX
    )
    a = np.asarray(small, np.float32) / 255
    if rng.random() < 0.5:
        a = np.round(a * 16) / 16  # a 17-level scanner
    big = Image.fromarray((a * 255).astype(np.uint8))
    k = int(rng.integers(2, 9))
    resample = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    ink = np.asarray(big.resize((big.width * k, big.height * k), resample), np.float32) / 255
    if rng.random() < 0.5:
        return encode(_paint(ink, np.zeros(3), np.full(3, 255.0)).convert("L"), "PNG"), "image/png"
    return encode(_paint(ink, _white_paper(rng), _dark_pen(rng)), "PNG"), "image/png"


@cache
def fonts(include: str, exclude: str = "\0") -> tuple[Path, ...]:
    """TrueType fonts on this machine whose file names contain `include`, not `exclude`."""
    found = {p for d in FONT_DIRS if d.is_dir() for p in d.rglob("*.ttf")}
    return tuple(sorted(p for p in found if include in p.name and exclude not in p.name and "Math" not in p.name))


def typed_digit(label: int, font: Path, size: int) -> np.ndarray:
    """The digit `label` typeset in `font` at `size` px, as ink strength, with a margin."""
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = face.getbbox(str(label))
    img = Image.new("L", (int(right - left) + size // 2, int(bottom - top) + size // 2), 0)
    ImageDraw.Draw(img).text((size // 4 - left, size // 4 - top), str(label), fill=255, font=face)
    return np.asarray(img, np.float32) / 255


def typed(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A typed digit: a screenshot (crisp, any colours) or a photo of print (grey paper,
    blur, noise, a slight turn, JPEG)."""
    choices = fonts(style.fonts, style.font_exclude)
    if not choices:
        raise RuntimeError(f"no {style.fonts} TrueType fonts on this machine for the typed family")
    ink = typed_digit(label, choices[int(rng.integers(len(choices)))], int(rng.integers(20, 160)))
    ink = _on_canvas(ink, rng)
    if rng.random() < 0.5:
        if rng.random() < 0.3:
            return encode(_paint(ink, np.full(3, rng.uniform(0, 50)), np.full(3, 255.0)), "PNG"), "image/png"
        return encode(_paint(ink, _white_paper(rng), _dark_pen(rng)), "PNG"), "image/png"
    img = Image.fromarray((ink * 255).astype(np.uint8)).rotate(float(rng.uniform(-4, 4)), Image.Resampling.BILINEAR)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    ink = np.asarray(img, np.float32) / 255
    paper, pen = np.full(3, rng.uniform(150, 230)), np.full(3, rng.uniform(10, 70))
    gray: np.ndarray = np.asarray(_paint(ink, paper, pen), np.float32)
    gray = gray + rng.normal(0, 5, gray.shape[:2])[..., None]
    return encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)), "JPEG", quality=80), "image/jpeg"


PAPERS = np.array([[250, 246, 225], [255, 250, 170], [215, 232, 250], [250, 220, 230], [225, 245, 220]], np.float32)


def ruled_paper(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """Coloured paper, ruled with lines or squares; a digit in pen on it."""
    return _save_photo_or_png(_ruled(digit, rng, 0.0), rng)


def askew_ruled(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """`ruled_paper` photographed a little askew: its rules tilted either way, the digit upright."""
    tilt = _uniform(rng, style.rule_tilt) * float(rng.choice([-1, 1]))
    return _save_photo_or_png(_ruled(digit, rng, tilt), rng)


def askew_page(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A level ruled page with a digit on it, the whole picture turned either way (digit,
    rules and all, resampled), the corners filled with the paper."""
    tilt = _uniform(rng, style.rule_tilt) * float(rng.choice([-1, 1]))
    img = _ruled(digit, rng, 0.0)
    paper = tuple(int(v) for v in np.median(np.asarray(img).reshape(-1, 3), axis=0))  # most of it is paper
    return _save_photo_or_png(img.rotate(tilt, Image.Resampling.BICUBIC, fillcolor=paper), rng)


def _ruled(digit: np.ndarray, rng: np.random.Generator, tilt_deg: float) -> Image.Image:
    side = 28 * int(rng.integers(4, 10))
    ink = _on_canvas(_enlarge(digit, side), rng)
    h, w = ink.shape
    paper = np.broadcast_to(PAPERS[int(rng.integers(len(PAPERS)))], (h, w, 3)).copy()
    gap, line = int(rng.integers(max(12, side // 6), max(13, side // 3))), int(rng.integers(1, 3))
    colour = np.array([rng.uniform(100, 180), rng.uniform(150, 200), rng.uniform(200, 240)])
    yy, xx = np.mgrid[0:h, 0:w]
    t = np.tan(np.radians(tilt_deg))
    paper[(yy + t * xx + int(rng.integers(gap))) % gap < line] = colour
    if rng.random() < 0.5:  # squared paper
        paper[(xx - t * yy + int(rng.integers(gap))) % gap < line] = colour
    return _paint(ink, paper, _dark_pen(rng))


def shadow(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A photo with a hand's or a phone's shadow across part of the page."""
    ink = _on_canvas(_enlarge(digit, 28 * int(rng.integers(6, 16))), rng)
    h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    d = (xx - w * rng.uniform(0.2, 0.8)) * np.cos(angle) + (yy - h * rng.uniform(0.2, 0.8)) * np.sin(angle)
    soft = max(h, w) * rng.uniform(0.01, 0.08)
    dark = 1 - rng.uniform(0.35, 0.6) / (1 + np.exp(-d / soft))
    paper = rng.uniform(200, 245) * dark
    gray = paper + (rng.uniform(10, 50) * dark - paper) * ink + rng.normal(0, 3, ink.shape)
    img = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).convert("RGB")
    return encode(img, "JPEG", quality=int(rng.integers(75, 92))), "image/jpeg"


def shifted(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """The MNIST digit moved 3-5 px (in a random direction) inside its 28 x 28 frame."""
    dy, dx = (int(rng.integers(3, 6)) * int(rng.choice([-1, 1])) for _ in range(2))
    if rng.random() < 0.5:
        dy = 0 if rng.random() < 0.5 else dy
    else:
        dx = 0 if rng.random() < 0.5 else dx
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    dy = int(np.clip(dy, -rows[0], 27 - rows[-1]))
    dx = int(np.clip(dx, -cols[0], 27 - cols[-1]))
    return encode(Image.fromarray(np.roll(digit, (dy, dx), axis=(0, 1))), "PNG"), "image/png"


def mnist_png(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    return encode(Image.fromarray(digit), "PNG"), "image/png"


# -- pages with something around the paper: found by a probe, fixed in preprocessing --------


def _page(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB float page: dark ink on light paper, the digit off-centre with paper all round."""
    ink = _on_canvas(ink_box(_enlarge(digit, int(rng.uniform(120, 260)))), rng)
    margin = 2 + int(0.03 * max(ink.shape))
    return np.asarray(_paint(np.pad(ink, margin), _white_paper(rng), _dark_pen(rng)), np.float64)


def desk(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A photo of the page with the desk (or a scanner lid's edge) along one or two sides."""
    page = _page(digit, rng)
    colour = np.array([rng.uniform(20, 140), rng.uniform(15, 110), rng.uniform(10, 80)])
    for axis in rng.permutation(2)[: int(rng.integers(1, 3))]:
        depth = 1 + int(rng.uniform(0.02, 0.15) * page.shape[axis])
        band = np.broadcast_to(colour, (depth, page.shape[1], 3) if axis == 0 else (page.shape[0], depth, 3))
        page = np.concatenate([band, page] if rng.random() < 0.5 else [page, band], axis=axis)
    return encode(Image.fromarray(page.astype(np.uint8)), "JPEG", quality=int(rng.integers(75, 95))), "image/jpeg"


def framed(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """A screenshot with a window's dark frame all round."""
    frame = int(rng.integers(2, 9))
    page = np.pad(_page(digit, rng), ((frame, frame), (frame, frame), (0, 0)), constant_values=rng.uniform(0, 70))
    return encode(Image.fromarray(page.astype(np.uint8)), "PNG"), "image/png"


def pasted_mnist(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """An MNIST digit as it is (white on black), enlarged and pasted on a light page: a
    screenshot of a dataset viewer."""
    k = int(rng.integers(3, 10))
    resample = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    tile = Image.fromarray(digit).resize((28 * k, 28 * k), resample)
    w, h = int(28 * k * rng.uniform(1.3, 3)), int(28 * k * rng.uniform(1.3, 3))
    page = Image.new("L", (w, h), int(rng.uniform(225, 256)))
    page.paste(tile, (int(rng.integers(0, w - 28 * k + 1)), int(rng.integers(0, h - 28 * k + 1))))
    return encode(page, "PNG"), "image/png"


def lit_render(digit: np.ndarray, label: int, rng: np.random.Generator, style: Style) -> Upload:
    """Paper lit from one side, rendered without noise (a scan's or a drawing app's
    gradient, not a photo's grain)."""
    ink = _on_canvas(ink_box(_enlarge(digit, int(rng.uniform(130, 260)))), rng)
    h, w = ink.shape
    ramp = np.linspace(rng.uniform(120, 200), rng.uniform(230, 255), w if rng.random() < 0.5 else h)
    ramp = ramp[::-1] if rng.random() < 0.5 else ramp
    paper = np.broadcast_to(ramp[None, :] if len(ramp) == w else ramp[:, None], (h, w))[..., None]
    return _save_photo_or_png(_paint(ink, paper, _dark_pen(rng)), rng)


TUNING_FAMILIES: dict[str, Family] = {
    "mnist_png": mnist_png,
    "paper_jpeg": paper_jpeg,
    "transparent_png": transparent_png,
    "thick_pen": thick_pen,
    "tilted": tilted,
    "phone_photo": phone_photo,
    "tight_crop": tight_crop,
    "fine_pen": fine_pen,
    "shifted": shifted,
    "typed_sans": typed,
    "round_shadow": round_shadow,
    "felt_tip": marker,  # last, so adding it left the other families' random streams alone
    "askew_ruled": askew_ruled,
}
HELDOUT_FAMILIES: dict[str, Family] = {
    "mnist_png": mnist_png,
    "frame_cut": frame_cut,
    "low_res": low_res,
    "pen": pen,
    "small_offcentre": small_offcentre,
    "typed_serif": typed,
    "ruled_paper": ruled_paper,
    "shadow": shadow,
    "marker": marker,
    "askew_page": askew_page,
}
# the probe's families: what the service misread until preprocessing looked for mats and
# for shading on noiseless pictures; training does not see them (preprocessing crops the
# mat away and evens the light, so the network is shown a plain page either way)
PAGE_FAMILIES: dict[str, Family] = {
    "desk": desk,
    "framed": framed,
    "pasted_mnist": pasted_mnist,
    "lit_render": lit_render,
}
# training sees every kind of upload, drawn with its own parameter ranges
TRAINING_FAMILIES: dict[str, Family] = {
    **{k: v for k, v in TUNING_FAMILIES.items() if k not in ("mnist_png", "typed_sans", "felt_tip", "askew_ruled")},
    **{k: v for k, v in HELDOUT_FAMILIES.items() if k not in ("mnist_png", "typed_serif", "marker", "askew_page")},
    "typed": typed,
}
