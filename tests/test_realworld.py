"""Uploads as users make them (benchmarks/realworld.py), on the committed test subset:
every split, every family, with the shipped weights.

The full figures (5,000 digits a split, plus real optdigits handwriting) come from
`python -m benchmarks.realworld`; this keeps a smaller sample honest in CI.
"""

import numpy as np
import pytest

from benchmarks.realworld import Case, heldout_split, local_classifier, pages_split, score, tuning_split
from convlens.model.uploads import HELDOUT_FAMILIES, PAGE_FAMILIES, TUNING_FAMILIES

N = 100  # digits a family


@pytest.fixture(scope="module")
def classify():
    return local_classifier()


@pytest.mark.parametrize(
    ("split", "families"),
    [(tuning_split, TUNING_FAMILIES), (heldout_split, HELDOUT_FAMILIES), (pages_split, PAGE_FAMILIES)],
    ids=["tuning", "heldout", "pages"],
)
def test_every_family_of_every_split_is_recognised(classify, mnist_test, split, families):
    result = score(split(mnist_test.images[:N], mnist_test.labels[:N]), classify)
    assert set(result) == {*families, "all"}
    accuracy = {k: v["accuracy"] for k, v in result.items()}
    assert result["all"]["refused"] == 0, result  # a visible digit is never refused
    assert accuracy["all"] >= 0.97, accuracy
    assert min(accuracy.values()) >= 0.95, accuracy


def test_the_splits_render_different_uploads_of_the_same_digit(mnist_test):
    images, labels = mnist_test.images[:3], mnist_test.labels[:3]
    tuning, held = tuning_split(images, labels), heldout_split(images, labels)
    assert {c.data for c in tuning}.isdisjoint(c.data for c in held if c.family != "mnist_png")
    assert np.array_equal([c.label for c in tuning[:3]], labels)


def test_score_counts_refusals_and_does_not_invent_what_http_cannot_tell():
    cases = [Case("a", 1, b"", "image/png"), Case("a", 2, b"", "image/png"), Case("b", 3, b"", "image/png")]
    nan = float("nan")
    result = score(cases, lambda _: [(1, 0.9, nan), (-1, 0.0, 0.0), (5, 0.6, nan)])
    assert result["a"] == {"accuracy": 0.5, "n": 2, "refused": 1}
    assert result["b"]["accuracy"] == 0.0
    assert result["all"]["refused"] == 1 and abs(result["all"]["accuracy"] - 1 / 3) < 1e-9
    assert abs(result["all"]["ece"] - 0.35) < 1e-6  # (|0.9 - 1| + |0.6 - 0|) / 2
    assert np.isnan(result["all"]["ece_before_temperature"])
