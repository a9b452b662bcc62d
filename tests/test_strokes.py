"""A marker's strokes are thinned to MNIST's width before the digit is shrunk; nothing
thinner is touched (app/imaging/strokes.py)."""

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from convlens.app.imaging.strokes import TARGET, THICK, WORK, _work_copy, edge_ramp, stroke_width, thin_thick
from convlens.model.uploads import encode, ink_box, pen_stroke


def ring(side: int, width: float) -> np.ndarray:
    """A "0": a circle drawn with a round pen `width` px wide, cropped to its ink."""
    img = Image.new("L", (side, side), 0)
    m = width / 2 + 1
    ImageDraw.Draw(img).ellipse((m, m, side - m, side - m), outline=255, width=round(width))
    return ink_box(np.asarray(img, np.float32) / 255)


def hole(ink: np.ndarray) -> float:
    """The share of the box inside the loop: paper not connected to the box's edge."""
    labels, _ = ndimage.label(np.pad(ink < 0.5, 1))
    return float(((labels > 0) & (labels != labels[0, 0])).mean())


def test_the_width_grows_with_the_pen_as_a_share_of_the_box():
    rings = [ring(400, w) for w in (20, 40, 80, 120)]
    shares = [w / r.shape[0] for w, r in zip((20, 40, 80, 120), rings, strict=True)]
    measured = [stroke_width(_work_copy(r)) / WORK for r in rings]
    assert measured == sorted(measured)
    assert measured == pytest.approx(shares, rel=0.15)  # a pixel's bias, the same on MNIST


def test_a_marker_stroke_is_thinned_to_mnist_width_and_its_loop_opens():
    fat = ring(400, 400 * 0.3)
    thinned = thin_thick(fat)
    assert thinned.shape == (WORK, WORK)
    assert stroke_width(thinned) / WORK == pytest.approx(TARGET, abs=0.02)
    assert hole(thinned) > 1.5 * hole(_work_copy(fat))
    assert ndimage.label(thinned > 0.5)[1] == 1  # the ring is not broken


def test_strokes_up_to_mnist_width_are_left_alone():
    for width in (2.0, 10.0, 400 * THICK * 0.75):
        crop = ring(400, width)
        assert thin_thick(crop) is crop
    small = ring(60, 24)  # too coarse to measure
    assert thin_thick(small) is small


def test_a_small_scan_enlarged_smoothly_is_not_taken_for_a_marker(mnist_test):
    wide = 0
    for i in range(20):  # MNIST digits squeezed into 8 px, as optdigits' scans, enlarged to 160
        scan = Image.fromarray(ink_box(mnist_test.images[i], 0)).resize((8, 8), Image.Resampling.BOX)
        big = np.asarray(scan.resize((160, 160), Image.Resampling.BILINEAR), np.float32) / 255
        wide += stroke_width(_work_copy(big)) > THICK * WORK
        assert edge_ramp(_work_copy(big)) > 5  # edges blurred across many px
        assert thin_thick(big) is big
    assert wide >= 3  # some have strokes as wide as a marker's: the edges tell them apart
    sharp = ring(180, 45)
    assert edge_ramp(_work_copy(sharp)) < 2
    assert thin_thick(sharp) is not sharp


def test_marker_digits_are_read_as_well_as_thin_ones(mnist_test, settings, monkeypatch):
    """Strokes a quarter of the digit's height: the shipped network reads most of them
    only once they are thinned."""
    from convlens.app.core.served_model import ServedModel, to_tensor
    from convlens.app.imaging import preprocess as pre

    model = ServedModel.load("shipped", settings.model_dir("shipped"), "float32")
    images, labels = mnist_test.images[:200], mnist_test.labels[:200]
    uploads = [
        encode(Image.fromarray((255 - np.pad(pen_stroke(x, 160, 42), 30) * 255).astype(np.uint8)), "PNG")
        for x in images
    ]

    def accuracy() -> float:
        pixels = [pre.preprocess(data, 50_000_000).pixels for data in uploads]
        return float((model.probabilities(to_tensor(pixels)).argmax(1).numpy() == labels).mean())

    thinned = accuracy()
    monkeypatch.setattr(pre, "thin_thick", lambda crop: crop)
    assert thinned >= 0.93
    assert thinned >= accuracy() + 0.05


def test_an_erosion_that_would_cut_a_hairline_is_not_made():
    """Two marker-wide stems joined by a hairline (a bold serif's join): thinning the stems
    by erosion would cut the join, so the picture keeps its one stroke or is left alone."""
    ink = np.zeros((200, 200), np.float32)
    ink[:, :60] = ink[:, 140:] = 1.0  # stems 0.3 of the box wide
    ink[98:104, 60:140] = 1.0  # a 6 px hairline between them
    out = thin_thick(ink)
    assert ndimage.label(out > 0.5, np.ones((3, 3)))[1] == 1
