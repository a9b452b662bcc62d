import json

import pytest
from safetensors.torch import load_file

from convlens.model.checkpoint import load_checkpoint, sha256_file
from convlens.model.train import main

FIXTURES = "tests/fixtures/mnist"


def train(out, *extra: str) -> dict:
    argv = ["--smoke", "--data-dir", FIXTURES, "--out-dir", str(out), "--epochs", "3", "--seed", "7", *extra]
    assert main(argv) == 0
    return json.loads((out / "model_card.json").read_text())


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    out = tmp_path_factory.mktemp("run_a")
    return out, train(out)


def test_short_run_learns_and_beats_chance_by_far(run_a):
    _, card = run_a
    history = card["training"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] < 2.31  # ln(10) = chance
    assert card["metrics"]["test_accuracy"] > 0.6  # chance is 0.1
    assert card["data"]["n_test"] == 1000


def test_part_of_each_batch_are_uploads_and_they_are_learnt_too(run_a):
    _, card = run_a
    uploads = card["training"]["uploads"]
    assert uploads["share_of_batch"] == 0.3 and uploads["n_train"] >= 290 and uploads["n_val"] >= 95
    history = card["training"]["history"]
    assert history[-1]["val_uploads_accuracy"] > 0.3  # rendered uploads: chance is 0.1


def test_the_temperature_lowers_the_calibration_error_on_the_validation_split(run_a):
    _, card = run_a
    cal = card["calibration"]
    assert cal["ece_val_fitted"] < cal["ece_val_before"]
    assert cal["temperature"] in (1.0, cal["fitted_temperature"])


def test_same_seed_gives_identical_weights(run_a, tmp_path):
    out_a, card_a = run_a
    card_b = train(tmp_path)
    a, b = load_file(out_a / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert card_a["weights"]["sha256"] == card_b["weights"]["sha256"]


def test_other_seed_gives_other_weights(run_a, tmp_path):
    _, card_a = run_a
    assert main(["--smoke", "--data-dir", FIXTURES, "--out-dir", str(tmp_path), "--epochs", "1", "--seed", "8"]) == 0
    assert json.loads((tmp_path / "model_card.json").read_text())["weights"]["sha256"] != card_a["weights"]["sha256"]


def test_with_ema_the_moving_average_is_what_is_validated_and_saved(run_a, tmp_path):
    """Decay 1 never moves the average off the initial weights: if the average is what is
    saved, that run is at chance; a real decay learns like the plain run."""
    _, plain = run_a
    assert plain["training"]["ema_decay"] is None
    frozen = train(tmp_path / "frozen", "--ema", "1.0")
    assert frozen["metrics"]["test_accuracy"] < 0.3 < 0.6 < plain["metrics"]["test_accuracy"]
    assert max(h["val_accuracy"] for h in frozen["training"]["history"]) < 0.3
    ema = train(tmp_path / "ema", "--ema", "0.9")
    assert ema["training"]["ema_decay"] == 0.9
    assert ema["metrics"]["test_accuracy"] > 0.6
    assert ema["weights"]["sha256"] != plain["weights"]["sha256"]


@pytest.mark.parametrize("decay", ["-0.1", "1.5"])
def test_a_decay_outside_0_1_is_refused_before_anything_runs(tmp_path, capsys, decay):
    with pytest.raises(SystemExit) as exit_:
        main(["--smoke", "--data-dir", FIXTURES, "--out-dir", str(tmp_path), "--ema", decay])
    assert exit_.value.code == 2
    assert f"--ema must be between 0 and 1, got {float(decay)}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_card_describes_the_weights(run_a):
    out, card = run_a
    assert card["weights"]["sha256"] == sha256_file(out / "model.safetensors")
    model = load_checkpoint(out / "model.safetensors", expected_sha256=card["weights"]["sha256"])
    assert model.config.to_dict() == card["architecture"]["config"]
    assert card["architecture"]["parameters"] == sum(p.numel() for p in model.parameters())
    for key in ("seed", "epochs", "best_epoch", "seconds", "history", "command"):
        assert key in card["training"]
    assert len(card["metrics"]["confusion_matrix"]) == 10
    assert sum(map(sum, card["metrics"]["confusion_matrix"])) == 1000
    assert "torch" in card["environment"]


def test_missing_data_fails_with_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    assert main(["--data-dir", str(tmp_path / "none"), "--out-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "put the four MNIST" in err[0]


def test_missing_fonts_fail_with_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("convlens.model.train.fonts", lambda *a: ())
    assert main(["--smoke", "--data-dir", FIXTURES, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fonts-dejavu-core" in err[0]
