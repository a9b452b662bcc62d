import torch

from convlens.model.calibrate import calibration_error, calibration_report, expected_calibration_error, fit_temperature


def overconfident(n: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose argmax is right ~80 % of the time but that claim ~99 %."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(10, (n,), generator=g)
    wrong = torch.rand(n, generator=g) < 0.2
    pred = torch.where(wrong, (labels + 1) % 10, labels)
    logits = torch.randn(n, 10, generator=g)
    logits[torch.arange(n), pred] += 8.0
    return logits, labels


def test_temperature_scaling_lowers_the_calibration_error_of_an_overconfident_net():
    logits, labels = overconfident()
    t = fit_temperature(logits, labels)
    assert t > 1.5  # softens
    before = expected_calibration_error(logits.softmax(1), labels)
    after = expected_calibration_error((logits / t).softmax(1), labels)
    assert before > 0.15 and after < before / 3
    assert ((logits / t).argmax(1) == logits.argmax(1)).all()  # no prediction changes


def test_calibration_error_of_a_perfectly_calibrated_and_a_liar():
    conf = torch.full((1000,), 0.7)
    correct = (torch.arange(1000) < 700).float()
    assert calibration_error(conf, correct) < 1e-6
    assert abs(calibration_error(torch.full((1000,), 0.95), correct) - 0.25) < 1e-6


def test_the_temperature_is_served_only_when_it_helps_unseen_halves():
    logits, labels = overconfident()
    report = calibration_report(logits[:3000], labels[:3000], logits[3000:], labels[3000:])
    assert report["applied"] and report["temperature"] == report["fitted_temperature"] > 1.5
    assert report["ece_val_fitted"] < report["ece_val_before"] / 3
    # a network already calibrated: the logits of the fitted one, divided by its T
    calibrated = logits / report["fitted_temperature"]
    again = calibration_report(calibrated[:3000], labels[:3000], calibrated[3000:], labels[3000:])
    assert not again["applied"] and again["temperature"] == 1.0
    assert abs(again["fitted_temperature"] - 1.0) < 0.05


def test_refitting_a_missing_card_fails_with_one_line(tmp_path, capsys):
    from convlens.model.calibrate import main

    assert main(["--weights-dir", str(tmp_path), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "model_card.json" in err[0]
