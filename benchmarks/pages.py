"""Pages of handwritten numbers with their ground truth, for `benchmarks/reading.py` and
the reader's tests.

Numbers are strings of MNIST digits (the tuning split draws from MNIST's training set,
the held-out split from its test set, with other seeds) or of the same digits redrawn
with a constant-width pen, set on one baseline with touching, tight or ordinary gaps;
several numbers and rows to a page, some in two columns, some with a written or typed
label beside them, on white, yellow, grey or ruled paper, under uneven light, with
noise and JPEG, sent on their side with an EXIF Orientation tag, from a 600 x 400 page
to a 4000 x 3000 phone photo with the table around the page showing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from convlens.model.nondigits import WORDS, _handwritten, typeset
from convlens.model.uploads import fonts, ink_box, pen_stroke

Box = tuple[int, int, int, int]


@dataclass
class TrueNumber:
    text: str
    digits: list[Box] = field(default_factory=list)  # upload pixels, x1 and y1 exclusive

    @property
    def box(self) -> Box:
        b = np.array(self.digits)
        return (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max()))


@dataclass
class TruePage:
    data: bytes
    content_type: str
    numbers: list[TrueNumber]  # in reading order
    width: int
    height: int


@dataclass(frozen=True)
class Look:
    """How a family's pages look."""

    side: tuple[int, int] = (900, 650)  # page width, height
    digit_height: tuple[float, float] = (40, 70)  # px
    gap: tuple[float, float] = (0.1, 0.45)  # between digits, a share of the digit height
    digits: tuple[int, int] = (2, 8)  # per number
    rows: tuple[int, int] = (1, 4)
    columns: int = 1
    pen: bool = False  # redrawn with a constant-width pen
    labels: bool = False
    paper: str = "white"  # white, yellow, grey, ruled
    light: bool = False  # uneven light and noise
    jpeg: bool = False
    exif: bool = False
    table: bool = False  # the page lies on a darker table that shows around it


FAMILIES: dict[str, Look] = {
    "ordinary": Look(),
    "tight": Look(gap=(0.0, 0.12)),
    "touching": Look(gap=(-0.08, 0.0)),  # strokes meet
    "overlapping": Look(gap=(-0.25, -0.08)),  # one digit's box reaches well into the next
    "long": Look(digits=(9, 13), rows=(1, 3), digit_height=(30, 50)),
    "two_columns": Look(columns=2, rows=(3, 5), digit_height=(30, 45), digits=(2, 6)),
    "labels": Look(labels=True, rows=(2, 4)),
    "pen": Look(pen=True),
    "paper": Look(paper="mixed", rows=(2, 4)),
    "light": Look(light=True, jpeg=True),
    "exif": Look(exif=True, jpeg=True),
    "small_page": Look(side=(600, 400), digit_height=(20, 32), rows=(1, 3), digits=(2, 6)),
    "photo_12mp": Look(
        side=(4000, 3000), digit_height=(150, 400), rows=(1, 3), digits=(2, 6), light=True, jpeg=True, table=True
    ),
}
PAPERS = {"white": (250, 250, 248), "yellow": (252, 246, 180), "grey": (205, 205, 200)}


def _digit_ink(digit: np.ndarray, height: int, look: Look, rng: np.random.Generator) -> np.ndarray:
    if look.pen:
        return pen_stroke(digit, height, max(1.5, rng.uniform(0.04, 0.1) * height))
    ink = ink_box(digit.astype(np.float32) / 255, 0.1)
    h, w = ink.shape
    size = (max(1, round(w * height / h)), height)
    return np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BICUBIC), np.float32).clip(0, 1)


def _paste(canvas: np.ndarray, ink: np.ndarray, top: int, left: int) -> Box | None:
    """Max-composite `ink` at (top, left); its ink box in canvas pixels, or None if off it."""
    h, w = ink.shape
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + h, canvas.shape[0]), min(left + w, canvas.shape[1])
    if y1 <= y0 or x1 <= x0:
        return None
    part = ink[y0 - top : y1 - top, x0 - left : x1 - left]
    np.maximum(canvas[y0:y1, x0:x1], part, out=canvas[y0:y1, x0:x1])
    ys, xs = np.nonzero(part > 0.25)
    if not ys.size:
        return None
    return (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)


def _label(rng: np.random.Generator, height: float) -> np.ndarray:
    word = WORDS[int(rng.integers(len(WORDS)))]
    ink = typeset(word, fonts("Sans")[0], 64)
    if rng.random() < 0.6:  # written rather than typed, a letter at a time
        letters = [_scaled(_handwritten(typeset(c, fonts("Sans")[0], 64), rng), height) for c in word if c.strip()]
        gap = np.zeros((round(height), max(1, round(0.15 * height))), np.float32)
        return np.concatenate([x for letter in letters for x in (letter, gap)][:-1], 1)
    return _scaled(ink, height)


def _scaled(ink: np.ndarray, height: float) -> np.ndarray:
    h, w = ink.shape
    size = (max(1, round(w * height / h)), max(1, round(height)))
    return np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.BILINEAR)).clip(0, 1)


def _number(
    canvas: np.ndarray, left: int, base: int, height: float, look: Look, pool: tuple[np.ndarray, np.ndarray], rng
) -> tuple[TrueNumber, int]:
    """Writes a number whose digits sit on `base`; returns it and its right edge."""
    images, labels = pool
    n = int(rng.integers(look.digits[0], look.digits[1] + 1))
    number = TrueNumber("")
    x = float(left)
    for _ in range(n):
        i = int(rng.integers(len(labels)))
        ink = _digit_ink(images[i], max(8, round(height * rng.uniform(0.85, 1.05))), look, rng)
        top = base - ink.shape[0] + int(rng.normal(0, 0.04 * height))
        box = _paste(canvas, ink, top, round(x))
        if box is not None:
            number.text += str(int(labels[i]))
            number.digits.append(box)
            x = box[2] + rng.uniform(*look.gap) * height
        else:
            x += ink.shape[1]
    return number, round(x)


def _paper(h: int, w: int, look: Look, rng: np.random.Generator) -> np.ndarray:
    kind = look.paper if look.paper != "mixed" else str(rng.choice(["white", "yellow", "grey", "ruled"]))
    rgb = np.empty((h, w, 3), np.float32)
    rgb[:] = PAPERS.get(kind, PAPERS["white"])
    if kind == "ruled":
        step = int(rng.uniform(0.05, 0.08) * h)
        for y in range(int(rng.integers(step // 2, step)), h, step):
            rgb[y : y + max(1, h // 400)] = (170, 190, 230)
    return rgb


def _light(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * rng.uniform(0.15, 0.35)
    rgb = rgb * (1 - ramp - ramp.min())[..., None]
    if rng.random() < 0.5:  # a soft shadow over one part
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.2, 0.5) * max(h, w)
        shade = np.clip(1 - np.hypot(xx - cx, yy - cy) / r, 0, 1) * rng.uniform(0.2, 0.4)
        rgb = rgb * (1 - shade)[..., None]
    return rgb + rng.normal(0, rng.uniform(2, 6), rgb.shape).astype(np.float32)


def page(look: Look, pool: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> TruePage:
    width, height = look.side
    ink = np.zeros((height, width), np.float32)
    digit_h = rng.uniform(*look.digit_height)
    rows = int(rng.integers(look.rows[0], look.rows[1] + 1))
    margin = int(0.15 * width) if look.table else int(0.05 * width)
    pitch = min(2.0 * digit_h, (height - 2 * margin) / rows)
    numbers: list[TrueNumber] = []
    column_w = (width - 2 * margin) / look.columns
    for r in range(rows):
        base = int(margin + (r + 0.5) * pitch + digit_h / 2)
        if base > height - margin:
            break
        for c in range(look.columns):
            x = int(margin + c * column_w + rng.uniform(0, 0.1) * column_w)
            if look.labels and rng.random() < 0.7:
                word = _label(rng, digit_h * rng.uniform(0.6, 0.9))
                box = _paste(ink, word, base - word.shape[0], x)
                x = (box[2] if box else x) + int(rng.uniform(1.3, 2.0) * digit_h)
            limit = margin + (c + 1) * column_w - digit_h
            while x < limit - 2 * digit_h:
                number, right = _number(ink, x, base, digit_h, look, pool, rng)
                if number.text:
                    numbers.append(number)
                x = right + int(rng.uniform(1.5, 3.0) * digit_h)
                if look.columns > 1 or rng.random() < 0.5:
                    break
    paper = _paper(height, width, look, rng)
    pen = np.array([rng.uniform(0, 50), rng.uniform(0, 50), rng.uniform(40, 160)], np.float32)
    rgb = paper + (pen - paper) * ink[..., None]
    if look.table:
        edge = int(margin * rng.uniform(0.3, 0.7))
        table = np.array([rng.uniform(60, 140)] * 3, np.float32) * np.array([1.0, 0.85, 0.7])
        mask = np.ones((height, width), bool)
        mask[edge:-edge, edge:-edge] = False
        rgb[mask] = table
    if look.light:
        rgb = _light(rgb, rng)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    kw: dict[str, object] = {}
    if look.exif:
        img = img.transpose(Image.Transpose.ROTATE_90)  # stored on its side ...
        exif = Image.Exif()
        exif[0x0112] = 6  # ... and shown upright: the viewer turns it 90 degrees clockwise
        kw["exif"] = exif.tobytes()
    buf = io.BytesIO()
    if look.jpeg or look.side[0] * look.side[1] > 4_000_000:
        img.save(buf, "JPEG", quality=int(rng.integers(75, 93)), **kw)
        ctype = "image/jpeg"
    else:
        img.save(buf, "PNG", **kw)
        ctype = "image/png"
    numbers = _reading_order(numbers)
    return TruePage(buf.getvalue(), ctype, numbers, width, height)


def _reading_order(numbers: list[TrueNumber]) -> list[TrueNumber]:
    """Rows top to bottom (a number belongs to the row of its middle), left to right."""
    ordered: list[list[TrueNumber]] = []
    for n in sorted(numbers, key=lambda n: (n.box[1] + n.box[3]) / 2):
        mid = (n.box[1] + n.box[3]) / 2
        if ordered and abs(mid - np.mean([(m.box[1] + m.box[3]) / 2 for m in ordered[-1]])) < 0.5 * (
            n.box[3] - n.box[1]
        ):
            ordered[-1].append(n)
        else:
            ordered.append([n])
    return [n for row in ordered for n in sorted(row, key=lambda n: n.box[0])]


def pages(family: str, n: int, pool: tuple[np.ndarray, np.ndarray], seed: int) -> list[TruePage]:
    rng = np.random.default_rng([seed, sorted(FAMILIES).index(family)])
    return [page(FAMILIES[family], pool, rng) for _ in range(n)]
