"""The serving precision: bfloat16 where the CPU has it, and what that costs in answers."""

import pytest
import torch
from fastapi.testclient import TestClient

from benchmarks.harness import png_bytes
from convlens.app.config import Settings
from convlens.app.core.served_model import ServedModel, to_tensor
from convlens.app.imaging.preprocess import preprocess_array
from convlens.app.main import create_app


@pytest.fixture(scope="module")
def predictors() -> dict[str, ServedModel]:
    s = Settings()
    return {p: ServedModel.load("shipped", s.model_dir("shipped"), p) for p in ("float32", "bfloat16")}


@pytest.mark.parametrize(("native", "dtype"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_serves_bfloat16_only_where_the_cpu_has_it(monkeypatch, native, dtype):
    monkeypatch.setattr("convlens.app.core.precision.cpu_has_native_bf16", lambda: native)
    s = Settings()
    auto = ServedModel.load("shipped", s.model_dir("shipped"), "auto")
    assert auto.serving.layers.fc.weight.dtype == dtype
    assert auto.reference.layers.fc.weight.dtype == torch.float32  # feature maps stay float32


def test_explicit_precisions(predictors):
    assert predictors["bfloat16"].serving.layers.fc.weight.dtype == torch.bfloat16
    assert predictors["float32"].serving.layers.fc.weight.dtype == torch.float32


def test_bfloat16_gives_the_float32_answers(predictors, mnist_test):
    """On the full test set 9,999 of 10,000 digits agree; on the committed 1,000 all do."""
    x = to_tensor([preprocess_array(img)[0] for img in mnist_test.images])
    p32 = predictors["float32"].probabilities(x)
    p16 = predictors["bfloat16"].probabilities(x)
    assert p16.dtype == torch.float32 and p16.shape == (1000, 10)
    assert (p16.argmax(1) == p32.argmax(1)).sum() >= 998
    assert float((p16 - p32).abs().max()) < 0.05
    assert torch.allclose(p16.sum(1), torch.ones(1000), atol=1e-5)


def test_every_endpoint_gives_an_image_the_same_probabilities(mnist_test):
    with TestClient(create_app(Settings(precision="bfloat16"))) as c:
        assert c.get("/v1/model").json()["serving_precision"] == "bfloat16"
        for img in mnist_test.images[:3]:
            files = {"file": ("d.png", png_bytes(img), "image/png")}
            one = c.post("/v1/predict", files=files).json()
            maps = c.post("/v1/feature-maps?values=false", files=files).json()
            batch = c.post("/v1/predict/batch", files=[("files", files["file"])]).json()
            assert one["probabilities"] == maps["prediction"]["probabilities"]
            assert one["probabilities"] == batch["results"][0]["prediction"]["probabilities"]


def test_a_served_temperature_softens_every_probability_and_changes_no_digit(predictors, mnist_test):
    import copy

    base = predictors["float32"]
    card = copy.deepcopy(base.card)
    card["calibration"] = {"temperature": 2.0}
    warm = ServedModel(name="warm", reference=base.reference, card=card, precision="float32")
    x = to_tensor([preprocess_array(img)[0] for img in mnist_test.images[:50]])
    logits = base.logits(x)
    torch.testing.assert_close(warm.probabilities(x), torch.softmax(logits / 2.0, dim=1))
    assert (warm.probabilities(x).argmax(1) == base.probabilities(x).argmax(1)).all()
    assert base.temperature == 1.0  # the shipped card serves none
