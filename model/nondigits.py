"""Uploads that are not one digit: letters, symbols, words, drawings, photos, textures,
noise, and numbers of several digits. The verdict network (`model/train_verdict.py`)
learns from the training families; `benchmarks/verdict.py` measures on the held-out
families, which come from other sources (fonts, generators, photographs, MNIST test
digits), so no measured family was seen in training.

A family is a function (rng, digits) -> gray picture in [0, 1] (dark ink on light paper
or a photograph); `as_upload` turns a picture into the file a person would send. `digits`
is a pool of MNIST digits for the several-digit families (training digits for training,
test digits for the benchmark).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from convlens.model.uploads import Upload, encode, fonts, ink_box, pen_stroke

Picture = np.ndarray  # (h, w) float32 gray in [0, 1]
Family = Callable[[np.random.Generator, np.ndarray], Picture]

# Letters and symbols that are drawn like a digit in some hand (O and 0, l and 1, S and 5,
# Z and 2, B and 8, b and 6, g and q and 9, ...) are neither taught nor measured as "not a
# digit": nobody can tell them apart alone, and teaching them would flag real digits.
LOOKALIKES = set("OoQDUIlLiJj|!/\\()[]{}SsZzBbGgqCcya") | {"'", "`", ".", ",", ":", ";", "_", '"', "-", "~"}
GLYPHS = "".join(
    c for c in "ACDEFHKMNPRTUVWXYacdefhkmnprtuvwxy&#%$?@*+=<>^÷×±§¶€£¥∞Ωπλμ√∑≈≠→←↑♪☺✓★♥" if c not in LOOKALIKES
)
WORDS = ("TEL", "Tel", "No", "Nr", "FAX", "Fax", "Date", "Name", "ID", "Ref", "km", "kg", "cm", "Mon", "Room", "PIN")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def mpl_fonts() -> tuple[Path, ...]:
    """Fonts that ship inside matplotlib and nowhere on the system: STIX and Computer
    Modern, which training (DejaVu Sans) never saw."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    names = ("STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf")
    return tuple(p for p in (folder / n for n in names) if p.is_file())


@cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


@cache
def _missing(font: Path, char: str) -> bool:
    """Whether `font` has no glyph for `char` (it would draw its "missing" box instead)."""
    face = _font(font, 48)
    return bool(bytes(face.getmask(char)) == bytes(face.getmask("\U0010fffd")))


def typeset(text: str, font: Path, size: int) -> np.ndarray:
    """`text` set in `font`, as ink strength cropped to the ink (empty if the font lacks it)."""
    face = _font(font, size)
    if any(_missing(font, c) for c in text):
        return np.zeros((0, 0), np.float32)
    left, top, right, bottom = face.getbbox(text)
    if right <= left or bottom <= top:
        return np.zeros((0, 0), np.float32)
    img = Image.new("L", (int(right - left) + 4, int(bottom - top) + 4), 0)
    ImageDraw.Draw(img).text((2 - left, 2 - top), text, fill=255, font=face)
    ink = np.asarray(img, np.float32) / 255
    return ink_box(ink, 0.3) if (ink > 0.3).any() else np.zeros((0, 0), np.float32)


def _paper(ink: np.ndarray) -> Picture:
    return (1.0 - ink).astype(np.float32)


def _glyph_picture(rng: np.random.Generator, text: str, font_set: tuple[Path, ...]) -> Picture:
    for _ in range(20):
        ink = typeset(text, font_set[int(rng.integers(len(font_set)))], int(rng.integers(24, 96)))
        if ink.size and ink.max() > 0.3:
            return _paper(ink)
        text = GLYPHS[int(rng.integers(len(GLYPHS)))]
    raise RuntimeError("no font on this machine sets any of the glyphs")


def _drawn_glyph_picture(rng: np.random.Generator, font_set: tuple[Path, ...]) -> Picture:
    for _ in range(20):
        ink = typeset(GLYPHS[int(rng.integers(len(GLYPHS)))], font_set[int(rng.integers(len(font_set)))], 64)
        if ink.size:
            return _paper(_handwritten(ink, rng))
    raise RuntimeError("none of the fonts sets any of the glyphs")


def _handwritten(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A typeset glyph redrawn with a constant-width pen along its skeleton, slanted and
    warped a little: a person's letter rather than a printer's."""
    h, w = ink.shape
    side = max(h, w)
    square = np.zeros((side, side), np.float32)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = ink
    digitlike = np.asarray(Image.fromarray((square * 255).astype(np.uint8)).resize((28, 28), Image.Resampling.BOX))
    height = int(rng.integers(40, 160))
    stroked = pen_stroke(digitlike, height, max(1.0, rng.uniform(0.03, 0.12) * height))
    return _warp(stroked, rng)


def _warp(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random shear and a smooth elastic wobble."""
    img = Image.fromarray((ink * 255).astype(np.uint8))
    shear = rng.uniform(-0.3, 0.3)
    w, h = img.size
    img = img.transform((w + int(abs(shear) * h), h), Image.Transform.AFFINE, (1, shear, min(0.0, shear * h), 0, 1, 0))
    return np.asarray(img, np.float32) / 255


def _draw(strokes: list[np.ndarray], width: float, supersample: int = 3) -> np.ndarray:
    """Polylines (each (n, 2) of x, y in [0, 1]) drawn with a round pen, as ink strength."""
    side = 128 * supersample
    img = Image.new("L", (side, side), 0)
    d = ImageDraw.Draw(img)
    px = max(1, round(width * side))
    for s in strokes:
        pts = [(float(x * (side - 2 * px) + px), float(y * (side - 2 * px) + px)) for x, y in s]
        d.line(pts, fill=255, width=px, joint="curve")
        for x, y in (pts[0], pts[-1]):
            d.ellipse((x - px / 2, y - px / 2, x + px / 2, y + px / 2), fill=255)
    img = img.resize((128, 128), Image.Resampling.BOX)
    ink = np.asarray(img, np.float32) / 255
    return ink_box(ink, 0.3) if (ink > 0.3).any() else ink


def _jitter(pts: np.ndarray, rng: np.random.Generator, amount: float = 0.015) -> np.ndarray:
    return pts + rng.normal(0, amount, pts.shape)


def _pen_width(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.015, 0.09))


# -- training families --------------------------------------------------------------------


def typed_glyph(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """One letter or symbol typed in DejaVu Sans."""
    return _glyph_picture(rng, GLYPHS[int(rng.integers(len(GLYPHS)))], fonts("Sans", "Mono"))


def typed_word(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A label word ("TEL", "No") or random letters, typed in DejaVu Sans."""
    if rng.random() < 0.5:
        word = WORDS[int(rng.integers(len(WORDS)))]
    else:
        word = "".join(LETTERS[int(i)] for i in rng.integers(0, len(LETTERS), int(rng.integers(2, 6))))
    return _glyph_picture(rng, word, fonts("Sans", "Mono"))


def drawn_glyph(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A letter or symbol of this machine's sans or serif fonts (DejaVu, Liberation), redrawn
    with a pen along its shape at 28 x 28, so the letter's form is taught, not its type."""
    return _drawn_glyph_picture(rng, fonts("Sans", "Mono") + fonts("Serif"))


def scribble(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """Two to five random pen strokes, each a smooth random walk: doodles, crossings-out."""
    strokes = []
    for _ in range(int(rng.integers(2, 6))):
        n = int(rng.integers(8, 40))
        heading, turn = rng.uniform(0, 2 * np.pi), rng.normal(0, 0.6, n).cumsum() * 0.5
        steps = np.stack([np.cos(heading + turn), np.sin(heading + turn)], 1) * rng.uniform(0.02, 0.08)
        pts = rng.uniform(0.2, 0.8, 2) + steps.cumsum(0)
        strokes.append(np.clip(pts, 0, 1))
    return _paper(_draw(strokes, _pen_width(rng)))


def _outline(rng: np.random.Generator, n: int, centre: np.ndarray, radius: float) -> np.ndarray:
    """A closed polygon of `n` corners around `centre`, each at its own distance (a
    random star-convex outline: a triangle, a box, a kite, a blob of edges)."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = radius * rng.uniform(0.55, 1.0, n)
    pts = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
    return np.concatenate([pts, pts[:1]])


def _ellipse(rng: np.random.Generator, centre: np.ndarray, radius: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 40)
    a, b, turn = radius, radius * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi)
    x, y = a * np.cos(t), b * np.sin(t)
    return centre + np.stack([x * np.cos(turn) - y * np.sin(turn), x * np.sin(turn) + y * np.cos(turn)], 1)


def figure(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A figure built from random outlines: a polygon of 3-8 random corners, with
    something inside it (a smaller outline, a cross, a dot), overlapping another, rings
    around one centre, or a ring with rays. Never one lone ring or arc (a 0, a C) and
    never an open stroke of few segments (a 7, an L): those would teach that digits are
    not digits."""
    centre = np.array([0.5, 0.5]) + rng.normal(0, 0.03, 2)
    kind = int(rng.integers(5))
    if kind == 0:  # a lone polygon
        strokes = [_outline(rng, int(rng.integers(3, 9)), centre, 0.45)]
    elif kind == 1:  # a polygon or ring with something inside
        if rng.random() < 0.6:
            outer = _outline(rng, int(rng.integers(3, 9)), centre, 0.45)
        else:
            outer = _ellipse(rng, centre, 0.45)
        inner = int(rng.integers(3))
        if inner == 0:
            strokes = [outer, _outline(rng, int(rng.integers(3, 7)), centre, 0.2)]
        elif inner == 1:
            r = 0.15
            strokes = [outer, centre + np.array([[-r, -r], [r, r]]), centre + np.array([[r, -r], [-r, r]])]
        else:
            t = np.linspace(0, 2 * np.pi, 10)
            strokes = [outer, centre + np.stack([np.cos(t), np.sin(t)], 1) * 0.04]
    elif kind == 2:  # two overlapping outlines
        shift = rng.normal(0, 0.12, 2)
        strokes = [_outline(rng, int(rng.integers(3, 7)), centre - shift, 0.32) for _ in range(2)]
        strokes[1] += 2 * shift
    elif kind == 3:  # rings around one centre
        strokes = [_ellipse(rng, centre, r) for r in (0.45, 0.28, 0.1)]
    else:  # a ring with rays (a sun, a flower)
        k, r = int(rng.integers(4, 11)), rng.uniform(0.15, 0.25)
        strokes = [_ellipse(rng, centre, r)]
        for a in rng.uniform(0, 2 * np.pi) + np.arange(k) * 2 * np.pi / k:
            d = np.array([np.cos(a), np.sin(a)])
            strokes.append(np.stack([centre + d * (r + 0.04), centre + d * 0.47]))
    return _paper(_draw([np.clip(_jitter(s, rng, 0.01), 0, 1) for s in strokes], _pen_width(rng)))


def hatching(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """Parallel or crossed straight lines: a grid, a hash, shading."""
    strokes = []
    for angle in rng.uniform(0, np.pi, int(rng.integers(1, 3))):
        n = int(rng.integers(3, 8))
        d = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-d[1], d[0]])
        for k in np.linspace(-0.4, 0.4, n):
            c = 0.5 + normal * k
            strokes.append(np.clip(np.stack([c - d * 0.45, c + d * 0.45]), 0, 1))
    return _paper(_draw(strokes, _pen_width(rng) / 2))


def noise(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """Uniform, Gaussian or blurred noise at any size: a sensor, a test pattern."""
    h, w = int(rng.integers(16, 400)), int(rng.integers(16, 400))
    a = rng.random((h, w)) if rng.random() < 0.5 else np.clip(rng.normal(0.5, rng.uniform(0.05, 0.3), (h, w)), 0, 1)
    if rng.random() < 0.4:
        img = Image.fromarray((a * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 6)))
        a = np.asarray(img, np.float32) / 255
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-3)
    return a.astype(np.float32)


def pattern(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """Stripes, checks, rings and blobs: textures drawn by formula."""
    h, w = int(rng.integers(28, 300)), int(rng.integers(28, 300))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(0.05, 0.5)
    kind = int(rng.integers(4))
    if kind == 0:
        a = np.sin(f * (xx * np.cos(rng.uniform(0, np.pi)) + yy * np.sin(rng.uniform(0, np.pi))))
    elif kind == 1:
        a = np.sin(f * xx) * np.sin(f * yy)
    elif kind == 2:
        a = np.sin(f * np.hypot(xx - w * rng.random(), yy - h * rng.random()))
    else:
        a = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(3, 15))):
            a += np.exp(
                -((xx - w * rng.random()) ** 2 + (yy - h * rng.random()) ** 2) / (rng.uniform(0.02, 0.2) * h * w)
            )
    return ((a - a.min()) / max(float(a.max() - a.min()), 1e-3)).astype(np.float32)


@cache
def _photo(name: str) -> np.ndarray:
    from skimage import data

    a = np.asarray(getattr(data, name)(), np.float32)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return a / max(float(a.max()), 1.0)


def _photo_crop(rng: np.random.Generator, names: tuple[str, ...]) -> Picture:
    a = _photo(names[int(rng.integers(len(names)))])
    h, w = a.shape
    ch, cw = int(h * rng.uniform(0.1, 1.0)), int(w * rng.uniform(0.1, 1.0))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(a[y : y + ch, x : x + cw])


TRAIN_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "retina",
    "cell",
    "immunohistochemistry",
)
BENCH_PHOTOS = ("camera", "coins", "moon", "horse", "clock", "page", "text", "cat", "logo")
BENCH_TEXTURES = ("brick", "grass", "gravel")


def photo(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A crop of a photograph (scikit-image's sample images; the benchmark uses others)."""
    return _photo_crop(rng, TRAIN_PHOTOS)


def _number_strip(rng: np.random.Generator, glyphs: list[np.ndarray]) -> np.ndarray:
    """Digit inks side by side on one baseline, touching, tight or spaced as people write."""
    height = max(g.shape[0] for g in glyphs)
    gaps = rng.uniform(-0.25, 0.6, len(glyphs) - 1) * height * (0.4 if rng.random() < 0.5 else 1)
    xs = [0.0]
    for g, gap in zip(glyphs[:-1], gaps, strict=True):
        xs.append(xs[-1] + g.shape[1] + gap)
    width = int(np.ceil(xs[-1] + glyphs[-1].shape[1])) + 1
    wobble = height * 0.15
    out = np.zeros((int(height + 2 * wobble) + 1, max(width, 1)), np.float32)
    for g, x in zip(glyphs, xs, strict=True):
        y = int(rng.uniform(0, 2 * wobble)) + (height - g.shape[0])
        x0 = max(0, round(x))
        hh, ww = g.shape
        ww = min(ww, out.shape[1] - x0)
        out[y : y + hh, x0 : x0 + ww] = np.maximum(out[y : y + hh, x0 : x0 + ww], g[:, :ww])
    return out


def several_digits(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """Two to four handwritten digits in one picture (from the pool given)."""
    n = int(rng.integers(2, 5))
    picks = digits[rng.integers(0, len(digits), n)]
    glyphs = [ink_box(d.astype(np.float32) / 255, 0.1) for d in picks]
    return _paper(_number_strip(rng, glyphs))


# -- held-out families ---------------------------------------------------------------------


def typed_unseen_font(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A letter, symbol or word typed in STIX or Computer Modern (matplotlib's fonts)."""
    font_set = mpl_fonts()
    if rng.random() < 0.3:
        return _glyph_picture(rng, WORDS[int(rng.integers(len(WORDS)))], font_set)
    return _glyph_picture(rng, GLYPHS[int(rng.integers(len(GLYPHS)))], font_set)


def _star(rng: np.random.Generator) -> list[np.ndarray]:
    k = int(rng.choice([5, 6, 7]))
    step = 2 if k != 6 else 1
    angles = np.arange(k + 1) * step * 2 * np.pi / k + rng.uniform(0, np.pi)
    if k == 6:  # a six-pointed outline with inner corners
        r = np.where(np.arange(2 * k + 1) % 2 == 0, 0.5, 0.22)
        angles = np.arange(2 * k + 1) * np.pi / k
        return [0.5 + np.stack([np.cos(angles), np.sin(angles)], 1) * r[:, None]]
    return [0.5 + np.stack([np.cos(angles), np.sin(angles)], 1) * 0.5]


def _arrow(rng: np.random.Generator) -> list[np.ndarray]:
    a = rng.uniform(0, 2 * np.pi)
    d = np.array([np.cos(a), np.sin(a)])
    n = np.array([-d[1], d[0]])
    tip, tail = 0.5 + d * 0.45, 0.5 - d * 0.45
    head = 0.2
    return [np.stack([tail, tip]), np.stack([tip - d * head + n * head * 0.7, tip, tip - d * head - n * head * 0.7])]


def _triangle(rng: np.random.Generator) -> list[np.ndarray]:
    a = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2, 0]) + rng.normal(0, 0.2, 4) * [1, 1, 1, 0]
    return [0.5 + np.stack([np.cos(a), np.sin(a)], 1) * 0.5]


def _square(rng: np.random.Generator) -> list[np.ndarray]:
    a = rng.uniform(0, np.pi / 2) + np.arange(5) * np.pi / 2
    box = [0.5 + np.stack([np.cos(a), np.sin(a)], 1) * 0.5]
    if rng.random() < 0.5:  # a ticked or crossed box
        box.append(np.array([[0.3, 0.3], [0.7, 0.7]]))
        box.append(np.array([[0.7, 0.3], [0.3, 0.7]]))
    return box


def _tick(rng: np.random.Generator) -> list[np.ndarray]:
    return [np.array([[0.0, 0.55], [0.35, 1.0], [1.0, 0.0]]) * rng.uniform(0.8, 1.0)]


def _cross(rng: np.random.Generator) -> list[np.ndarray]:
    return [np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])]


def _face(rng: np.random.Generator) -> list[np.ndarray]:
    t = np.linspace(0, 2 * np.pi, 40)
    ring = 0.5 + np.stack([np.cos(t), np.sin(t)], 1) * 0.48
    smile = np.linspace(0.2 * np.pi, 0.8 * np.pi, 12)
    mouth = 0.5 + np.stack([np.cos(smile), np.sin(smile)], 1) * 0.25
    eye = np.linspace(0, 2 * np.pi, 8)
    eyes = [np.array(c) + np.stack([np.cos(eye), np.sin(eye)], 1) * 0.04 for c in ((0.35, 0.38), (0.65, 0.38))]
    return [ring, mouth, *eyes]


def _heart(rng: np.random.Generator) -> list[np.ndarray]:
    t = np.linspace(0, 2 * np.pi, 50)
    x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [np.stack([(x + 17) / 34, (y + 17) / 34], 1)]


def _spiral(rng: np.random.Generator) -> list[np.ndarray]:
    t = np.linspace(0, rng.uniform(3, 6) * np.pi, 80)
    r = t / t.max() * 0.5
    return [0.5 + np.stack([np.cos(t), np.sin(t)], 1) * r[:, None]]


SHAPES = {
    "star": _star,
    "arrow": _arrow,
    "triangle": _triangle,
    "square": _square,
    "tick": _tick,
    "cross": _cross,
    "face": _face,
    "heart": _heart,
    "spiral": _spiral,
}


def drawn_shape(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A shape drawn by hand: star, arrow, triangle, box, tick, cross, face, heart, spiral."""
    make = list(SHAPES.values())[int(rng.integers(len(SHAPES)))]
    strokes = [np.clip(_jitter(s, rng), 0, 1) for s in make(rng)]
    return _paper(_draw(strokes, _pen_width(rng)))


def drawn_unseen_glyph(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A letter or symbol from STIX or Computer Modern, redrawn with a pen."""
    return _drawn_glyph_picture(rng, mpl_fonts())


def unseen_photo(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A crop of one of scikit-image's photographs that training never saw."""
    return _photo_crop(rng, BENCH_PHOTOS)


def texture(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A crop of a real texture (brick, grass, gravel) or salt-and-pepper noise on paper."""
    if rng.random() < 0.25:
        h, w = int(rng.integers(28, 400)), int(rng.integers(28, 400))
        a = np.ones((h, w), np.float32)
        a[rng.random((h, w)) < rng.uniform(0.01, 0.2)] = 0.0
        return a
    return _photo_crop(rng, BENCH_TEXTURES)


def typed_number(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A number of two to four digits typed in an unseen font."""
    text = "".join(str(int(d)) for d in rng.integers(0, 10, int(rng.integers(2, 5))))
    return _glyph_picture(rng, text, mpl_fonts())


def blank_paper(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """Paper with nothing on it: plain, ruled or squared, with or without uneven light."""
    h, w = int(rng.integers(28, 600)), int(rng.integers(28, 600))
    a = np.full((h, w), rng.uniform(0.75, 1.0), np.float32)
    if rng.random() < 0.5:
        gap = int(rng.integers(10, 40))
        a[(np.arange(h) % gap) < 1 + int(rng.integers(2))] *= rng.uniform(0.6, 0.85)
        if rng.random() < 0.5:
            a[:, (np.arange(w) % gap) < 1] *= rng.uniform(0.6, 0.85)
    return a


def stained_paper(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """Paper with no writing but what paper carries: a fold, a faint stain, a smudge, light
    falling off, a printed rule or two."""
    h, w = int(rng.integers(40, 500)), int(rng.integers(40, 500))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.full((h, w), rng.uniform(0.8, 1.0), np.float32) - rng.uniform(0, 0.15) * xx / w
    for _ in range(int(rng.integers(1, 4))):
        cy, cx, r = h * rng.random(), w * rng.random(), rng.uniform(0.05, 0.4) * min(h, w)
        a -= rng.uniform(0.05, 0.3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    if rng.random() < 0.5:
        y = int(rng.integers(h))
        a[y : y + int(rng.integers(1, 3))] -= rng.uniform(0.1, 0.4)
    return np.clip(a, 0, 1)


def notebook_paper(rng: np.random.Generator, digits: np.ndarray) -> Picture:
    """A notebook or graph page photographed with nothing written on it: rules a little
    tilted, a margin line, squares, light falling off towards a corner. Tuning only: the
    blank test (`app/imaging/paper.py`) was chosen on it, never on `blank_paper`."""
    h, w = int(rng.integers(40, 800)), int(rng.integers(40, 800))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.full((h, w), rng.uniform(0.7, 1.0), np.float32)
    tilt = np.tan(np.radians(rng.uniform(-3, 3)))
    gap, width = rng.uniform(12, 60), rng.uniform(0.8, 3.5)
    for lines, along in ((yy + tilt * xx, True), (xx - tilt * yy, rng.random() < 0.3)):
        if along:
            near = np.abs((lines - rng.uniform(0, gap)) % gap - gap / 2) > gap / 2 - width / 2
            a[near] *= rng.uniform(0.55, 0.9)
    if rng.random() < 0.4:  # the margin
        x = rng.uniform(0.05, 0.3) * w
        a[np.abs(xx - tilt * yy - x) < width] *= rng.uniform(0.5, 0.85)
    corner_y, corner_x = rng.choice([0, h]), rng.choice([0, w])
    fall = np.hypot(yy - corner_y, xx - corner_x) / np.hypot(h, w)
    return np.clip(a * (1 - rng.uniform(0, 0.35) * fall), 0, 1)


TRAIN_NOT_A_DIGIT: dict[str, Family] = {
    "typed_glyph": typed_glyph,
    "typed_word": typed_word,
    "drawn_glyph": drawn_glyph,
    "scribble": scribble,
    "hatching": hatching,
    "figure": figure,
    "noise": noise,
    "pattern": pattern,
    "photo": photo,
    "stained_paper": stained_paper,
}
TRAIN_SEVERAL: dict[str, Family] = {"several_digits": several_digits}
BENCH_NOT_A_DIGIT: dict[str, Family] = {
    "typed_letters_unseen_fonts": typed_unseen_font,
    "drawn_letters_unseen_fonts": drawn_unseen_glyph,
    "drawn_shapes": drawn_shape,
    "photos": unseen_photo,
    "textures_and_noise": texture,
}
BENCH_SEVERAL: dict[str, Family] = {"mnist_test_numbers": several_digits, "typed_numbers": typed_number}
BENCH_BLANK: dict[str, Family] = {"blank_paper": blank_paper}
# the blank test's own families: training's empty paper at a fresh seed, and notebook pages
TUNE_BLANK: dict[str, Family] = {"stained_paper": stained_paper, "notebook_paper": notebook_paper}


# -- as a file -------------------------------------------------------------------------------


def as_upload(picture: Picture, rng: np.random.Generator, pad: bool = True) -> Upload:
    """A picture sent as people send them: scaled, on white, grey or coloured paper or a
    dark screen, as a photo with light falling off and noise, a PNG or a JPEG."""
    h, w = picture.shape
    scale = rng.uniform(0.5, 3.0) if max(h, w) > 64 else rng.uniform(1.0, 4.0)
    scale = min(scale, 1000 / max(h, w))  # a photo's size, not a poster's
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    a = np.asarray(Image.fromarray(picture.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR))
    if pad and rng.random() < 0.7:  # paper around it
        margins = [int(rng.uniform(0.05, 0.6) * s) for s in (a.shape[0], a.shape[0], a.shape[1], a.shape[1])]
        a = np.pad(a, ((margins[0], margins[1]), (margins[2], margins[3])), constant_values=1.0)
    kind = rng.random()
    if kind < 0.15:  # a dark screen: light ink on black
        a = 1.0 - a
    elif kind < 0.45:  # a photo: grey paper, falling light, blur, noise
        hh, ww = a.shape
        yy, xx = np.mgrid[0:hh, 0:ww]
        light = 1 - 0.3 * rng.random() * xx / ww - 0.25 * rng.random() * yy / hh
        paper, ink = rng.uniform(0.6, 0.9), rng.uniform(0.05, 0.3)
        a = (ink + (paper - ink) * a) * light
        img = Image.fromarray(np.clip(a * 255, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(rng.uniform(0, 1.5))
        )
        a = np.asarray(img, np.float32) / 255 + rng.normal(0, 0.015, a.shape)
    gray = np.clip(a * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        tint = np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.75, 1.0)])
        img = Image.fromarray((gray[..., None] * tint).astype(np.uint8))
    else:
        img = Image.fromarray(gray)
    if rng.random() < 0.5:
        return encode(img, "JPEG", quality=int(rng.integers(70, 95))), "image/jpeg"
    return encode(img, "PNG"), "image/png"
