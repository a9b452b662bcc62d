"""A page with nothing on it but its printed lines is blank; a digit on it never is
(app/imaging/paper.py)."""

import numpy as np
import pytest
from PIL import Image

from benchmarks.harness import mnist_fixture
from convlens.app.core.errors import BlankImage
from convlens.app.imaging.paper import lift_lines
from convlens.app.imaging.preprocess import preprocess
from convlens.model.uploads import encode

MAX_PIXELS = 50_000_000


def page(h: int, w: int, gap: float, tilt_deg: float = 0.0, squares: bool = False, margin: bool = False) -> np.ndarray:
    """Grey paper (1 = white) with rules `gap` px apart, tilted, light falling off to a corner."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.tan(np.radians(tilt_deg))
    a = np.full((h, w), 0.9, np.float32)
    a[np.abs((yy + t * xx) % gap - gap / 2) < 1.0] *= 0.7
    if squares:
        a[np.abs((xx - t * yy) % gap - gap / 2) < 1.0] *= 0.7
    if margin:
        a[np.abs(xx - t * yy - 0.15 * w) < 1.5] *= 0.6
    return a * (1 - 0.2 * np.hypot(yy, xx) / np.hypot(h, w))


def png(gray: np.ndarray) -> bytes:
    return encode(Image.fromarray(np.clip(gray * 255, 0, 255).astype(np.uint8)), "PNG")


def only_paper(ink: np.ndarray) -> bool:
    """Whether `lift_lines` finds nothing on the ink map but a page's printed lines."""
    return lift_lines(ink)[1]


def ink(gray: np.ndarray) -> np.ndarray:
    """The ink map of a white-paper picture, as `ink_map` gives it for clean paper."""
    return np.clip((gray.max() - gray) / max(float(gray.max() - gray.min()), 1e-6), 0, 1)


@pytest.mark.parametrize(
    "kind",
    [
        dict(gap=30, tilt_deg=2.5),
        dict(gap=30, tilt_deg=-1.0, margin=True),
        dict(gap=24, tilt_deg=1.5, squares=True),
    ],
    ids=["tilted rules", "rules and a margin", "squares"],
)
def test_an_empty_page_is_the_blank_image_error(kind):
    with pytest.raises(BlankImage):
        preprocess(png(page(300, 420, **kind)), MAX_PIXELS)


def test_one_rule_across_a_small_crop_is_blank():
    gray = np.full((60, 90), 0.95, np.float32)
    gray[31:33] = 0.6  # remove_rules needs two lines; this crop holds one
    gray += np.random.default_rng(0).normal(0, 0.01, gray.shape).astype(np.float32)  # a camera's grain
    with pytest.raises(BlankImage):
        preprocess(png(gray), MAX_PIXELS)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two 28 x 28 digits' strokes, at the best shift of a pixel."""
    a, b = a > 0.5, b > 0.5
    return max(
        float((np.roll(a, (dy, dx), (0, 1)) & b).sum() / (np.roll(a, (dy, dx), (0, 1)) | b).sum())
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def _with_digit(gray: np.ndarray, digit: np.ndarray) -> np.ndarray:
    big = np.asarray(Image.fromarray(digit).resize((140, 140), Image.Resampling.BILINEAR), np.float32) / 255
    out = gray.copy()
    out[80:220, 150:290] = np.minimum(out[80:220, 150:290], 1 - 0.8 * big)
    return out


@pytest.mark.parametrize("squares", [False, True], ids=["rules and a margin", "squares"])
def test_a_digit_on_a_tilted_ruled_page_is_seen_as_on_plain_paper(squares):
    """Without the lines lifted, the digit's box is the page's and the 7 shrinks to a speck."""
    digit = mnist_fixture("test").images[0]  # a 7
    plain = preprocess(png(_with_digit(page(300, 420, gap=1e9), digit)), MAX_PIXELS).pixels
    ruled = page(300, 420, gap=30, tilt_deg=2.0, squares=squares, margin=True)
    assert _overlap(preprocess(png(_with_digit(ruled, digit)), MAX_PIXELS).pixels, plain) > 0.8


def test_a_1_beside_a_line_of_the_squares_stays():
    """A stroke along a printed line is not paper: the line's thickness is read where it runs alone."""
    plain = page(300, 420, gap=1e9)
    gray = page(300, 420, gap=24, tilt_deg=0.0, squares=True)
    for a in (plain, gray):
        a[60:240, 203:211] = 0.15  # a 1, touching the line of squares at x = 203
    assert _overlap(preprocess(png(gray), MAX_PIXELS).pixels, preprocess(png(plain), MAX_PIXELS).pixels) > 0.8


def test_a_1_that_is_one_straight_line_down_the_picture_is_not_paper():
    """The only digit that is a single line: lines down the page need a second or a rule."""
    gray = np.full((200, 200), 1.0, np.float32)
    gray[:, 98:102] = 0.1
    assert not only_paper(ink(gray))
    gray[:, 150:152] = 0.1  # two lines down and nothing across: a squared page's columns
    assert only_paper(ink(gray))


def test_a_bar_across_the_picture_leaves_the_rest_of_the_digit():
    """A 7 cropped tight: its bar runs across the whole picture, its stem is no line."""
    gray = np.full((200, 160), 1.0, np.float32)
    gray[10:16, :] = 0.1
    for y in range(16, 200):
        x = int(150 - 0.5 * (y - 16))
        gray[y, x - 3 : x + 3] = 0.1
    assert not only_paper(ink(gray))
    gray[16:] = 1.0  # the bar alone is a rule
    assert only_paper(ink(gray))


def test_every_committed_digit_is_not_paper():
    """The 1,000 committed MNIST test digits, as 28 px and as 112 px pictures."""
    images = mnist_fixture("test").images
    for d in images:
        a = d.astype(np.float32) / 255
        assert not only_paper(a)
    for d in images[:200]:
        big = np.asarray(Image.fromarray(d).resize((112, 112), Image.Resampling.BILINEAR), np.float32) / 255
        assert not only_paper(big)
