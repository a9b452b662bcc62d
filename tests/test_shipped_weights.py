"""The weights in weights/ are what the model card says, and they are good."""

import json
from pathlib import Path

import pytest

from convlens.model.checkpoint import CheckpointError, load_checkpoint, sha256_file
from convlens.model.data import load_split
from convlens.model.evaluate import evaluate

WEIGHTS = Path("weights/shipped/model.safetensors")
CARD = json.loads(Path("weights/shipped/model_card.json").read_text())


def test_card_sha256_matches_weights_file():
    assert CARD["weights"]["sha256"] == sha256_file(WEIGHTS)


def test_shipped_weights_score_99_percent_on_committed_test_subset():
    model = load_checkpoint(WEIGHTS, CARD["weights"]["sha256"])
    subset = load_split("tests/fixtures/mnist", "test", verify=False, download_missing=False)
    m = evaluate(model, subset.images, subset.labels)
    assert m.n == 1000
    assert m.accuracy >= 0.99


def test_shipped_weights_score_on_the_committed_digits_what_the_card_claims(mnist_test):
    """Measured here, not read back: the card's 99.63 % is over all 10,000 test digits; the
    committed first 1,000 are easier."""
    from convlens.model.evaluate import evaluate

    model = load_checkpoint(WEIGHTS, CARD["weights"]["sha256"])
    measured = evaluate(model, mnist_test.images, mnist_test.labels)
    assert measured.accuracy >= 0.995
    assert CARD["metrics"]["test_accuracy"] >= 0.996 and CARD["data"]["checksums_verified"]
    assert measured.n == 1000 and sum(map(sum, measured.confusion_matrix)) == 1000


def test_corrupt_or_mismatched_weights_are_refused(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(WEIGHTS.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(bad, CARD["weights"]["sha256"])
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
