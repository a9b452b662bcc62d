"""The verdict: one digit, not a digit, several digits, or blank; on every protocol."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from benchmarks.harness import mnist_fixture
from convlens.app.core.verdict import Judge, decide
from convlens.model.checkpoint import CheckpointError
from convlens.model.nondigits import drawn_shape, mpl_fonts, noise, several_digits, typeset
from convlens.model.uploads import encode

UPLOADS = Path(__file__).parent / "fixtures" / "uploads"


def _png(gray: np.ndarray) -> bytes:
    return encode(Image.fromarray(np.clip(gray * 255, 0, 255).astype(np.uint8)), "PNG")


def _on_paper(ink: np.ndarray, margin: int = 20) -> bytes:
    return _png(np.pad(1.0 - ink, margin, constant_values=1.0))


def _verdict(client, data: bytes) -> dict:
    r = client.post("/v1/predict", files={"file": ("x.png", data, "image/png")})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_rule_is_digit_above_the_threshold_then_the_likelier_other():
    assert decide(torch.tensor([0.30, 0.60, 0.10]), 0.25) == "digit"
    assert decide(torch.tensor([0.20, 0.70, 0.10]), 0.25) == "not_a_digit"
    assert decide(torch.tensor([0.20, 0.30, 0.50]), 0.25) == "several_digits"


@pytest.mark.parametrize("letter", ["x", "K", "H", "M", "#"])
def test_a_typed_letter_is_not_a_digit(client, letter):
    # (docs/verdict.md lists what it still takes for a digit: an "A", a "?", a "%", this "&")
    font = ImageFont.truetype(str(mpl_fonts()[0]), 120)  # STIX: a font the verdict network never saw
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).text((40, 20), letter, fill=0, font=font)
    body = _verdict(client, encode(img, "PNG"))
    assert body["verdict"] == "not_a_digit", body["verdict_scores"]
    assert 0 <= body["digit"] <= 9 and len(body["probabilities"]) == 10  # the guess is still there


def test_hand_drawn_shapes_and_noise_are_mostly_not_digits(client):
    rng = np.random.default_rng(3)
    shapes = [drawn_shape(rng, np.zeros((1, 28, 28), np.uint8)) for _ in range(12)]
    verdicts = [_verdict(client, _png(np.pad(s, 10, constant_values=1.0)))["verdict"] for s in shapes]
    # 11 of 12 flagged, as not_a_digit (the held-out family flags 88 %: docs/verdict.md)
    assert verdicts.count("digit") <= 1 and verdicts.count("not_a_digit") >= 10, verdicts
    assert _verdict(client, _png(noise(np.random.default_rng(0), np.zeros(0))))["verdict"] == "not_a_digit"
    uniform = np.random.default_rng(1).random((64, 64))
    assert _verdict(client, _png(uniform))["verdict"] == "not_a_digit"


def test_two_to_four_digits_are_flagged_and_mostly_read_as_several(client):
    digits = mnist_fixture("test").images
    rng = np.random.default_rng(7)
    pictures = [np.pad(several_digits(rng, digits), 12, constant_values=1.0) for _ in range(12)]
    verdicts = [_verdict(client, _png(p))["verdict"] for p in pictures]
    assert verdicts.count("digit") <= 3 and verdicts.count("several_digits") >= 4, verdicts
    # numbers typed in a font training never saw: the held-out family flags 98 %
    typed = [
        _verdict(client, _on_paper(typeset(n, mpl_fonts()[0], 120)))["verdict"] for n in ("42", "305", "17", "2024")
    ]
    assert typed.count("digit") <= 1, typed


def test_blank_paper_is_the_blank_image_error(client):
    for gray in (np.full((300, 400), 0.93), np.where(np.arange(300)[:, None] % 25 == 0, 0.7, 0.95) * np.ones((1, 400))):
        r = client.post("/v1/predict", files={"file": ("x.png", _png(gray), "image/png")})
        assert r.status_code == 400 and r.json()["error"]["code"] == "blank_image"


def test_real_digits_keep_the_digit_verdict(client, mnist_test):
    files = [
        ("files", (f"{i}.png", encode(Image.fromarray(d), "PNG"), "image/png"))
        for i, d in enumerate(mnist_test.images[:16])
    ]
    body = client.post("/v1/predict/batch", files=files).json()
    assert [r["prediction"]["verdict"] for r in body["results"]] == ["digit"] * 16
    for path in sorted(UPLOADS.glob("*.png")):
        assert _verdict(client, path.read_bytes())["verdict"] == "digit", path.name


def test_all_fixture_digits_through_the_verdict_network(mnist_test, settings):
    """The 1,000 committed MNIST test digits: at most 2 flagged (the card's target is 0.2 %)."""
    from convlens.app.core.served_model import to_tensor

    judge = Judge.load(settings.verdict_dir)
    probs = judge.probabilities(to_tensor(list(mnist_test.images.astype(np.float32) / 255)))
    flagged = sum(decide(p, judge.threshold) != "digit" for p in probs)
    assert flagged <= 2


def test_the_openapi_schema_names_the_four_verdicts(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Prediction"]["properties"]["verdict"]
    values = next(s["enum"] for s in schema["anyOf"] if "enum" in s)
    assert sorted(values) == ["blank", "digit", "not_a_digit", "several_digits"]


def test_v2_infer_returns_the_verdict_as_a_bytes_tensor(client, mnist_test):
    x = np.stack([mnist_test.images[0] / 255.0, np.random.default_rng(0).random((28, 28))]).astype(np.float32)
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [2, 1, 28, 28], "data": x.ravel().tolist()}]}
    out = {o["name"]: o for o in client.post("/v2/models/shipped/infer", json=body).json()["outputs"]}
    assert out["verdict"]["datatype"] == "BYTES" and out["verdict"]["shape"] == [2]
    assert out["verdict"]["data"] == ["digit", "not_a_digit"]
    meta = client.get("/v2/models/shipped").json()
    assert {"name": "verdict", "datatype": "BYTES", "shape": [-1]} in meta["outputs"]


def test_the_models_list_shows_the_verdict_card(client):
    card = client.get("/v1/models").json()["verdict"]
    assert card["classes"] == ["digit", "not_a_digit", "several_digits"]
    assert 0 < card["threshold"] < 1 and card["parameters"] > 1000


def test_a_verdict_folder_without_a_verdict_card_stops_startup(tmp_path, settings):
    folder = tmp_path / "verdict"
    folder.mkdir()
    for name in ("model.safetensors", "model_card.json"):
        (folder / name).write_bytes((settings.model_dir("article") / name).read_bytes())
    with pytest.raises(CheckpointError, match="not a verdict head"):
        Judge.load(folder)


def test_a_head_trained_on_other_trunk_weights_stops_startup(tmp_path, settings):
    """The head reads the shipped network's activations: other weights there would give
    verdicts nobody measured, so loading refuses them with one line."""
    for name in ("verdict", "shipped"):
        (tmp_path / name).mkdir()
    for name in ("model.safetensors", "model_card.json"):
        (tmp_path / "verdict" / name).write_bytes((settings.verdict_dir / name).read_bytes())
        (tmp_path / "shipped" / name).write_bytes((settings.model_dir("article") / name).read_bytes())
    with pytest.raises(CheckpointError, match="retrain the head"):
        Judge.load(tmp_path / "verdict")


def test_one_pass_gives_the_same_verdict_as_the_heads_own_trunk(settings, mnist_test):
    """The shipped model's batched pass feeds the head its own activations; the other
    models' verdicts come from the head's copy of the same trunk: the two must agree."""
    from convlens.app.core.registry import ModelRegistry
    from convlens.app.core.served_model import split_answer, to_tensor

    registry = ModelRegistry.load(settings)
    shipped, article = registry.get("shipped"), registry.get("article")
    judge = registry.judge
    assert judge is not None
    assert judge.reads(shipped.card["weights"]["sha256"], shipped.dtype)
    assert not judge.reads(article.card["weights"]["sha256"], article.dtype)
    rng = np.random.default_rng(0)
    pixels = [*(mnist_test.images[:8].astype(np.float32) / 255), *rng.random((4, 28, 28), dtype=np.float32)]
    x = to_tensor(pixels)
    one_pass = split_answer(shipped.answer(x))[1]
    via_article = split_answer(article.answer(x))[1]
    own = judge.probabilities(x)
    torch.testing.assert_close(one_pass, own, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(via_article, own, atol=1e-4, rtol=1e-3)
    # and the digit probabilities of the one pass are the plain pass's
    torch.testing.assert_close(split_answer(shipped.answer(x))[0], shipped.probabilities(x))


def test_verdicts_are_counted_in_the_metrics(client, mnist_test):
    client.post(
        "/v1/predict", files={"file": ("x.png", encode(Image.fromarray(mnist_test.images[1]), "PNG"), "image/png")}
    )
    assert 'convlens_verdicts_total{model="shipped",verdict="digit"}' in client.get("/metrics").text


@pytest.mark.parametrize("design", ["conv", "dense"])
def test_training_smoke_run_writes_a_loadable_verdict_head(tmp_path, settings, design):
    from convlens.model import train_verdict

    fixtures = Path(__file__).parent / "fixtures" / "mnist"
    trunk = settings.model_dir("shipped")
    args = ["--smoke", "--data-dir", str(fixtures), "--out-dir", str(tmp_path), "--trunk", str(trunk), "--quiet"]
    assert train_verdict.main([*args, "--workers", "1", "--design", design, "--width", "8"]) == 0
    judge = Judge.load(tmp_path, trunk_folder=trunk)
    assert judge.card["architecture"]["design"] == design and judge.head.config.width == 8
    assert judge.card["trunk"]["sha256"] == json.loads((trunk / "model_card.json").read_text())["weights"]["sha256"]
    assert judge.card["verdict"]["classes"] == ["digit", "not_a_digit", "several_digits"]
    assert 0 <= judge.threshold <= 1
    assert judge.probabilities(torch.zeros(3, 1, 28, 28)).shape == (3, 3)


def test_without_the_verdict_network_the_verdict_is_null_and_v2_has_no_verdict_output(mnist_test):
    from fastapi.testclient import TestClient

    from convlens.app.config import Settings
    from convlens.app.main import create_app

    with TestClient(create_app(Settings(verdict=False, warmup=False))) as c:
        data = encode(Image.fromarray(mnist_test.images[0]), "PNG")
        body = c.post("/v1/predict", files={"file": ("x.png", data, "image/png")}).json()
        assert body["verdict"] is None and body["verdict_scores"] is None and body["digit"] == mnist_test.labels[0]
        assert c.get("/v1/models").json()["verdict"] is None
        assert "verdict" not in {o["name"] for o in c.get("/v2/models/shipped").json()["outputs"]}
        x = (mnist_test.images[:1] / 255.0).astype(np.float32).ravel().tolist()
        inputs = [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": x}]
        out = c.post("/v2/models/shipped/infer", json={"inputs": inputs}).json()["outputs"]
        assert {o["name"] for o in out} == {"probabilities", "digit"}


def test_a_cached_set_trains_the_same_head_as_a_fresh_rendering(tmp_path, settings, monkeypatch):
    """--cache skips the rendering, so it must not change what is trained."""
    from convlens.model import train_verdict

    fixtures = Path(__file__).parent / "fixtures" / "mnist"
    base = ["--smoke", "--data-dir", str(fixtures), "--trunk", str(settings.model_dir("shipped")), "--quiet"]
    base += ["--workers", "1", "--threads", "1", "--head-seed", "3", "--cache", str(tmp_path / "sets.npz")]
    cards = []
    for run in ("fresh", "cached"):
        assert train_verdict.main([*base, "--out-dir", str(tmp_path / run)]) == 0
        cards.append(json.loads((tmp_path / run / "model_card.json").read_text()))
        assert (tmp_path / "sets.npz").is_file()
        monkeypatch.setattr(train_verdict, "build_set", None)  # the cached run must not render
    assert cards[0]["weights"]["sha256"] == cards[1]["weights"]["sha256"]
    assert cards[0]["training"]["inputs"] == cards[1]["training"]["inputs"]
    assert cards[1]["training"]["head_seed"] == 3 and cards[1]["training"]["threads"] == 1


def test_a_cache_rendered_with_other_options_is_refused_in_one_line(tmp_path, settings, capsys):
    from convlens.model import train_verdict

    fixtures = Path(__file__).parent / "fixtures" / "mnist"
    base = ["--smoke", "--data-dir", str(fixtures), "--trunk", str(settings.model_dir("shipped")), "--quiet"]
    base += ["--workers", "1", "--cache", str(tmp_path / "sets.npz"), "--out-dir", str(tmp_path / "v")]
    assert train_verdict.main(base) == 0
    capsys.readouterr()
    assert train_verdict.main([*base, "--seed", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was rendered with" in err and "'seed': 0" in err


def test_an_unknown_head_design_is_refused():
    from convlens.model.verdict_head import HeadConfig, VerdictHead

    with pytest.raises(ValueError, match="unknown verdict head design 'mlp'"):
        VerdictHead(HeadConfig(stages=((32, 14), (64, 7)), design="mlp"))


def test_verdict_is_not_a_model_name():
    from pydantic import ValidationError

    from convlens.app.config import Settings

    with pytest.raises(ValidationError, match="verdict network"):
        Settings(models=["shipped", "verdict"])


def test_the_head_reads_the_same_stage_outputs_from_the_fused_serving_copy(settings):
    """Serving folds batch norm and moves each ReLU after its pool; the maps the head
    reads must not change with it."""
    from convlens.model.card import load_folder
    from convlens.model.net import fused_for_inference
    from convlens.model.verdict_head import stage_names, trunk_outputs

    net = load_folder(settings.model_dir("shipped")).network
    fused = fused_for_inference(net)
    assert stage_names(net) == ["pool1", "pool2"]
    assert stage_names(fused) == ["relu2", "relu4"]
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        (la, sa), (lb, sb) = trunk_outputs(net, x), trunk_outputs(fused, x)
    torch.testing.assert_close(la, lb, atol=1e-4, rtol=1e-4)
    for a, b in zip(sa, sb, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_training_with_a_missing_trunk_fails_at_once_with_one_line(tmp_path, capsys):
    from convlens.model import train_verdict

    fixtures = Path(__file__).parent / "fixtures" / "mnist"
    args = ["--smoke", "--data-dir", str(fixtures), "--out-dir", str(tmp_path), "--trunk", str(tmp_path / "none")]
    assert train_verdict.main([*args, "--quiet"]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert not (tmp_path / "model_card.json").exists()
