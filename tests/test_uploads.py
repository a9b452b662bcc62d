"""Uploads of the kinds the service once got wrong (tests/fixtures/uploads, made by
make_upload_fixtures.py), through the serving preprocessing and the shipped network."""

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from convlens.app.core.served_model import ServedModel, to_tensor
from convlens.app.imaging.preprocess import preprocess
from convlens.model.uploads import HELDOUT_FAMILIES, TRAINING_FAMILIES, TUNE, TUNING_FAMILIES, pen_stroke

UPLOADS = Path(__file__).parent / "fixtures" / "uploads"
MAX_PIXELS = 50_000_000


@pytest.fixture(scope="module")
def predictor(settings) -> ServedModel:
    return ServedModel.load("shipped", settings.model_dir("shipped"), "float32")


def seen(name: str) -> np.ndarray:
    return preprocess((UPLOADS / name).read_bytes(), MAX_PIXELS).pixels


def holes(pixels: np.ndarray) -> int:
    """Background regions not connected to the edge of the 28 x 28 field: a loop's inside."""
    _, n = ndimage.label(np.pad(pixels < 0.3, 1))
    return n - 1


def box_and_centre(pixels: np.ndarray) -> tuple[int, float, float]:
    rows, cols = np.flatnonzero(pixels.any(1)), np.flatnonzero(pixels.any(0))
    cy, cx = ndimage.center_of_mass(pixels)
    return max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1, cy, cx


@pytest.mark.parametrize("name", sorted(p.name for p in UPLOADS.glob("*.png")), ids=lambda n: n.removesuffix(".png"))
def test_each_kind_is_seen_as_an_mnist_digit_and_recognised(predictor, name):
    pixels = seen(name)
    size, cy, cx = box_and_centre(pixels)
    assert size in (20, 21) and abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    assert pixels.max() == pytest.approx(1.0, abs=0.01)  # strokes at full strength, even a ballpoint's
    label = int(name.removesuffix(".png").rsplit("_", 1)[1])
    assert int(predictor.probabilities(to_tensor(pixels))[0].argmax()) == label


@pytest.mark.parametrize("name", ["marker_8.png", "ballpoint_8.png"])
def test_an_eight_keeps_both_loops_at_any_pen_width(name):
    assert holes(seen(name)) == 2


def test_a_frame_filling_low_resolution_scan_is_not_refused_and_keeps_its_polarity():
    pre = preprocess((UPLOADS / "frame_filling_8x8_7.png").read_bytes(), MAX_PIXELS)
    assert not pre.inverted  # white ink on black, as the scan came
    assert (pre.pixels > 0.5).mean() < 0.4  # ink stays the minority: not the paper


def test_a_digit_touching_the_frame_is_not_blank_and_is_inverted():
    pre = preprocess((UPLOADS / "touching_frame_2.png").read_bytes(), MAX_PIXELS)
    assert pre.inverted


def test_ruled_lines_are_erased_but_the_digit_stays():
    pixels = seen("ruled_paper_7.png")
    assert not (pixels > 0.3).all(1).any()  # no row of ink across the field
    assert (pixels > 0.5).sum() > 40


def test_pen_stroke_has_the_width_asked_for():
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 13:15] = 255  # a "1"
    ink = pen_stroke(digit, 200, 10)
    assert ink.shape[0] == pytest.approx(200, abs=2)
    assert (ink[100] > 0.5).sum() == pytest.approx(10, abs=2)


def test_families_differ_between_the_splits_and_training_sees_them_all():
    assert not (set(TUNING_FAMILIES) - {"mnist_png"}) & (set(HELDOUT_FAMILIES) - {"mnist_png"})
    rendered = {f for f in TRAINING_FAMILIES.values()}
    assert set(TUNING_FAMILIES.values()) - rendered <= {TUNING_FAMILIES["mnist_png"]}
    assert set(HELDOUT_FAMILIES.values()) - rendered <= {HELDOUT_FAMILIES["mnist_png"]}


def test_every_family_renders_a_readable_upload(mnist_test):
    rng = np.random.default_rng(0)
    for name, family in {**TUNING_FAMILIES, **HELDOUT_FAMILIES}.items():
        data, ctype = family(mnist_test.images[0], int(mnist_test.labels[0]), rng, TUNE)
        assert ctype.startswith("image/"), name
        assert preprocess(data, MAX_PIXELS).pixels.shape == (28, 28), name


def test_a_shadow_across_the_page_is_not_taken_for_ink(predictor, mnist_test):
    """The shadow family of the held-out split, on ten committed digits: with one paper
    level the shadow became "ink" and the crop box covered it (3 of 10 right without the
    local paper map, 8 with it: the 2 left are the family's known weakness)."""
    from convlens.model.uploads import HELDOUT, shadow

    rng = np.random.default_rng(11)
    right = 0
    for x, y in zip(mnist_test.images[:10], mnist_test.labels[:10], strict=True):
        data, _ = shadow(x, int(y), rng, HELDOUT)
        pixels = preprocess(data, MAX_PIXELS).pixels
        right += int(predictor.probabilities(to_tensor(pixels))[0].argmax()) == y
    assert right >= 8
