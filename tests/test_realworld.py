"""Uploads as users make them (benchmarks/realworld.py), on the committed test subset.

The full figure over all 10,000 test digits comes from `python -m benchmarks.realworld`;
this keeps a smaller sample honest in CI.
"""

import numpy as np
import pytest

from app.predictor import Predictor, to_tensor
from app.preprocess import preprocess
from benchmarks.realworld import VARIANTS, build, build_shifted


@pytest.fixture(scope="module")
def predictor(settings) -> Predictor:
    return Predictor.load(settings.weights_path, settings.resolved_card_path, settings.precision)


def accuracy(predictor: Predictor, cases) -> dict[str, float]:
    right: dict[str, list[bool]] = {}
    for name, label, data, _ in cases:
        pre = preprocess(data, 50_000_000)
        digit = int(predictor.probabilities(to_tensor(pre.pixels))[0].argmax())
        right.setdefault(name, []).append(digit == label)
    return {k: float(np.mean(v)) for k, v in right.items()}


def test_user_uploads_are_recognised(predictor, mnist_test):
    acc = accuracy(predictor, build(mnist_test.images[:500], mnist_test.labels[:500], seed=3))
    assert set(acc) == set(VARIANTS)
    overall = np.mean(list(acc.values()))
    assert overall >= 0.97, acc
    assert min(acc.values()) >= 0.93, acc


def test_digits_shifted_3_to_5_px_are_recognised(predictor, mnist_test):
    acc = accuracy(predictor, build_shifted(mnist_test.images[:500], mnist_test.labels[:500], seed=4))
    assert acc["shifted_3_5px"] >= 0.98, acc
