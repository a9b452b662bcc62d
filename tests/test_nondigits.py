"""The non-digit families the verdict network learns from and is measured on."""

import numpy as np
import pytest

from convlens.model.nondigits import TRAIN_NOT_A_DIGIT, figure

NO_DIGITS = np.zeros((1, 28, 28), np.uint8)


@pytest.mark.parametrize("name", [n for n in TRAIN_NOT_A_DIGIT if n != "stained_paper"])
def test_every_training_family_draws_something_in_range(name):
    rng = np.random.default_rng(5)
    for _ in range(6):
        picture = TRAIN_NOT_A_DIGIT[name](rng, NO_DIGITS)
        assert picture.dtype == np.float32 and picture.ndim == 2
        assert picture.min() >= 0.0 and picture.max() <= 1.0
        assert picture.min() < 0.5, "no ink"


def test_figures_are_outlines_not_one_ring_or_stroke():
    """A figure's ink encloses paper (an outline), and none is a single open stroke: a lone
    open stroke of few segments is a 7 or an L, which must not be taught as not a digit."""
    from scipy import ndimage

    rng = np.random.default_rng(9)
    for _ in range(40):
        ink = figure(rng, NO_DIGITS) < 0.5
        holes = ndimage.binary_fill_holes(ink) & ~ink
        assert holes.sum() > 0.01 * ink.size


def test_a_figure_depends_on_the_seed_alone():
    a = figure(np.random.default_rng(3), NO_DIGITS)
    b = figure(np.random.default_rng(3), NO_DIGITS)
    assert np.array_equal(a, b)
