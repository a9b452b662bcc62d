"""Endpoints through httpx against the app (TestClient runs the real lifespan)."""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from benchmarks.harness import encode, png_bytes, png_with_header
from convlens.app.config import Settings
from convlens.app.main import create_app
from convlens.model.checkpoint import CheckpointError


def files(data: bytes, name: str = "digit.png", ctype: str = "image/png") -> dict:
    return {"file": (name, data, ctype)}


def test_predict_multipart_and_raw_body(client, mnist_test):
    for i in range(5):
        data = png_bytes(mnist_test.images[i])
        a = client.post("/v1/predict", files=files(data))
        b = client.post("/v1/predict", content=data, headers={"content-type": "image/png"})
        assert a.status_code == b.status_code == 200
        ja, jb = a.json(), b.json()
        assert ja["digit"] == jb["digit"] == mnist_test.labels[i]
        assert ja["probabilities"] == jb["probabilities"]
        assert len(ja["probabilities"]) == 10 and abs(sum(ja["probabilities"]) - 1) < 1e-6
        assert ja["confidence"] == max(ja["probabilities"]) == ja["probabilities"][ja["digit"]]
        assert ja["model_version"] == client.get("/v1/model").json()["version"]
        assert ja["input"] == {"width": 28, "height": 28, "format": "PNG", "inverted": False}
        assert ja["timing"]["total_ms"] >= ja["timing"]["inference_ms"] >= 0


def test_predict_answers_exactly_its_documented_model(client, mnist_test):
    """/v1/predict writes its JSON itself, past FastAPI's response validation: the body must
    still be a `Prediction`, field for field, served as JSON."""
    from convlens.app.api.v1.schemas import Prediction

    r = client.post("/v1/predict", files=files(png_bytes(mnist_test.images[0])))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert Prediction.model_validate_json(r.content).model_dump(mode="json") == r.json()
    ref = client.app.openapi()["paths"]["/v1/predict"]["post"]["responses"]["200"]
    assert ref["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Prediction"}


def test_http_predictions_equal_offline_model(client, mnist_test):
    """Through the API, the 1,000 committed test digits score what the model scores offline."""
    from convlens.model.checkpoint import load_checkpoint
    from convlens.model.evaluate import evaluate

    offline = evaluate(load_checkpoint("weights/shipped/model.safetensors"), mnist_test.images, mnist_test.labels)
    correct = 0
    for start in range(0, 1000, 16):
        batch = [
            ("files", (f"{i}.png", png_bytes(mnist_test.images[i]), "image/png"))
            for i in range(start, min(start + 16, 1000))
        ]
        r = client.post("/v1/predict/batch", files=batch)
        assert r.status_code == 200
        for item in r.json()["results"]:
            correct += item["prediction"]["digit"] == mnist_test.labels[item["index"] + start]
    assert correct / 1000 == pytest.approx(offline.accuracy, abs=0.002)


def test_batch_keeps_order_and_isolates_bad_images(client, mnist_test):
    batch = [("files", (f"{i}.png", png_bytes(mnist_test.images[i]), "image/png")) for i in range(4)]
    batch.insert(2, ("files", ("broken.png", b"\x89PNG not really", "image/png")))
    r = client.post("/v1/predict/batch", files=batch)
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 5 and body["succeeded"] == 4
    assert [x["index"] for x in body["results"]] == [0, 1, 2, 3, 4]
    assert body["results"][2]["error"]["code"] == "unreadable_image" and body["results"][2]["prediction"] is None
    digits = [x["prediction"]["digit"] for x in body["results"] if x["prediction"]]
    assert digits == [int(d) for d in mnist_test.labels[:4]]
    assert body["results"][3]["filename"] == "2.png"


def test_batch_limits(client, settings, mnist_test):
    data = png_bytes(mnist_test.images[0])
    too_many = [("files", (f"{i}.png", data, "image/png")) for i in range(settings.max_images_per_request + 1)]
    r = client.post("/v1/predict/batch", files=too_many)
    assert r.status_code == 422 and r.json()["error"]["code"] == "malformed_request"
    r = client.post("/v1/predict/batch", files={"file": ("a.png", data, "image/png")})
    assert r.status_code == 422


def test_feature_maps_match_the_layer_table(client, mnist_test):
    card = client.get("/v1/model").json()
    table = {row["name"]: row for row in card["layers"]}
    r = client.post("/v1/feature-maps", files=files(png_bytes(mnist_test.images[0])))
    assert r.status_code == 200
    body = r.json()
    names = [layer["name"] for layer in body["layers"]]
    assert names == [n for n in table if n.startswith(("conv", "relu", "pool")) and not n.startswith("relu_fc")]
    for layer in body["layers"]:
        assert layer["shape"] == table[layer["name"]]["output_shape"]
        values = np.array(layer["values"])
        assert list(values.shape) == layer["shape"]
        assert values.min() == pytest.approx(layer["min"], abs=1e-4)
        if layer["type"] in ("ReLU", "MaxPool2d"):
            assert values.min() >= 0
    assert body["prediction"]["digit"] == mnist_test.labels[0]
    assert np.array(body["input_image"]["values"]).shape == (28, 28)


def test_feature_maps_layer_selection_and_embedded_pngs(client, mnist_test):
    r = client.post(
        "/v1/feature-maps?layers=pool2,conv1&values=false&png=true", files=files(png_bytes(mnist_test.images[0]))
    )
    body = r.json()
    assert [x["name"] for x in body["layers"]] == ["pool2", "conv1"]
    for layer in body["layers"]:
        assert layer["values"] is None
        assert layer["png"].startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(layer["png"].split(",", 1)[1])))
        assert img.format == "PNG"
    assert body["input_image"]["png"].startswith("data:image/png;base64,")
    r = client.post("/v1/feature-maps?layers=conv1,nope", files=files(png_bytes(mnist_test.images[0])))
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


def test_feature_map_png_is_a_grid_of_all_channels(client, mnist_test):
    card = client.get("/v1/model").json()
    c, h, w = next(row["output_shape"] for row in card["layers"] if row["name"] == "conv1")
    r = client.post("/v1/feature-maps/conv1.png", files=files(png_bytes(mnist_test.images[0])))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    cols = int(np.ceil(np.sqrt(c)))
    scale = 112 // max(h, w)
    assert img.size[0] == cols * (w * scale + 2) - 2
    assert img.size[1] == -(-c // cols) * (h * scale + 2) - 2
    r = client.post("/v1/feature-maps/fc.png", files=files(png_bytes(mnist_test.images[0])))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_layer"


def test_preprocessed_png_shows_what_the_network_saw(client, mnist_test):
    x = mnist_test.images[0]
    r = client.post("/v1/preprocessed.png", files=files(png_bytes(255 - x)))
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("L"))
    assert img.shape == (224, 224)
    assert np.abs(img[::8, ::8].astype(int) - x.astype(int)).max() <= 3


def test_model_card_endpoint(client):
    card = client.get("/v1/model").json()
    shipped = json.loads(Path("weights/shipped/model_card.json").read_text())
    assert card["weights_sha256"] == shipped["weights"]["sha256"]
    assert card["test_accuracy"] == shipped["metrics"]["test_accuracy"]
    assert (
        card["parameters"] == sum(row["parameters"] for row in card["layers"]) == shipped["architecture"]["parameters"]
    )
    assert card["layers"][0]["name"] == "conv1"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text page (0 when it is not there yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_health_ready_metrics(client, mnist_test):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    before = client.get("/metrics").text
    client.post("/v1/predict", files=files(png_bytes(mnist_test.images[0])))
    client.post("/v1/predict", content=b"", headers={"content-type": "image/png"})
    after = client.get("/metrics").text
    requests = "convlens_http_requests_total"
    for status in ("200", "400"):
        labels = {"endpoint": "/v1/predict", "method": "POST", "status": status}
        assert metric(after, requests, **labels) - metric(before, requests, **labels) == 1
    digit, predictions = {"model": "shipped", "digit": str(mnist_test.labels[0])}, "convlens_predictions_total"
    assert metric(after, predictions, **digit) - metric(before, predictions, **digit) == 1
    # one more image went through a forward pass (the empty upload never reached one)
    batches = "convlens_inference_batch_size_sum"
    assert metric(after, batches) - metric(before, batches) == 1


def _error(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]


def test_every_error_status_from_a_real_bad_input(client, settings, mnist_test):
    raw = {"content-type": "image/png"}
    _error(client.post("/v1/predict", content=b"", headers=raw), 400, "empty_image")
    _error(client.post("/v1/predict", files=files(b"")), 400, "empty_image")
    _error(client.post("/v1/predict", content=b"%PDF-1.4 not an image", headers=raw), 400, "unreadable_image")
    _error(client.post("/v1/predict", content=png_bytes(np.zeros((28, 28), np.uint8)), headers=raw), 400, "blank_image")
    big = b"\0" * (settings.max_body_bytes + 1)
    _error(client.post("/v1/predict", content=big, headers=raw), 413, "payload_too_large")
    chunked = iter([big[: len(big) // 2], big[len(big) // 2 :]])  # no Content-Length
    _error(client.post("/v1/predict", content=chunked, headers=raw), 413, "payload_too_large")
    _error(client.post("/v1/predict", files=files(big)), 413, "payload_too_large")
    _error(client.post("/v1/predict", content=png_with_header(3000, 3000), headers=raw), 413, "image_too_large")
    _error(
        client.post("/v1/predict", content=b"<svg/>", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    ico = encode(Image.new("L", (28, 28), 255), "ICO")
    _error(client.post("/v1/predict", content=ico, headers=raw), 415, "unsupported_media_type")
    _error(client.post("/v1/predict", files={"image": ("a.png", b"x", "image/png")}), 422, "malformed_request")
    _error(
        client.post("/v1/predict", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"}),
        422,
        "malformed_request",
    )
    _error(
        client.post("/v1/feature-maps?values=maybe", files=files(png_bytes(mnist_test.images[0]))),
        422,
        "malformed_request",
    )
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    _error(client.get("/v1/predict"), 405, "method_not_allowed")


def test_missing_or_corrupt_weights_stop_startup(tmp_path):
    with (
        pytest.raises(CheckpointError, match=r"weights file not found|model card not found"),
        TestClient(create_app(Settings(weights_dir=tmp_path, models=["shipped"]))),
    ):
        pass
    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / "model.safetensors").write_bytes(b"garbage")
    (tmp_path / "shipped" / "model_card.json").write_text(Path("weights/shipped/model_card.json").read_text())
    with (
        pytest.raises(CheckpointError, match="sha256"),
        TestClient(create_app(Settings(weights_dir=tmp_path, models=["shipped"]))),
    ):
        pass


def test_api_key_when_configured(mnist_test):
    s = Settings(api_key="s3cret", warmup=False)
    with TestClient(create_app(s)) as c:
        data = png_bytes(mnist_test.images[0])
        _error(c.post("/v1/predict", files=files(data)), 401, "unauthorized")
        _error(c.post("/v1/predict", files=files(data), headers={"X-API-Key": "nope"}), 401, "unauthorized")
        assert c.post("/v1/predict", files=files(data), headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes need no key


def test_cors_when_configured():
    s = Settings(cors_origins=["https://digits.example"], warmup=False)
    with TestClient(create_app(s)) as c:
        pre = c.options(
            "/v1/predict",
            headers={"Origin": "https://digits.example", "Access-Control-Request-Method": "POST"},
        )
        assert pre.headers["access-control-allow-origin"] == "https://digits.example"
        other = c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_first_layer_filters_as_a_picture(client):
    card = client.get("/v1/model").json()
    c = next(row["output_shape"][0] for row in card["layers"] if row["name"] == "conv1")
    r = client.get("/v1/model/filters/conv1.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    cols = int(np.ceil(np.sqrt(c)))
    assert img.size[0] == cols * (3 * (112 // 3) + 2) - 2  # 3x3 tiles enlarged to ~112 px
    r = client.get("/v1/model/filters/conv2.png")  # reads 32 channels: no single picture
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_layer"


def test_startup_objects_are_frozen_out_of_garbage_collection_while_serving():
    """A full collection used to walk torch's ~200k start-up objects: ~100 ms stalls under load."""
    import gc

    gc.unfreeze()  # freezing is process-wide: another app of this test session may have frozen
    before = gc.get_threshold()
    with TestClient(create_app(Settings(gc_threshold=12_345))) as c:
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] == 12_345  # in-flight requests alone no longer trigger it
        assert c.get("/readyz").status_code == 200
    assert gc.get_freeze_count() == 0  # given back on shutdown
    assert gc.get_threshold() == before
    with TestClient(create_app(Settings(gc_freeze=False))):
        assert gc.get_freeze_count() == 0


def test_concurrent_predictions_are_batched_and_a_bad_image_fails_alone(client, mnist_test):
    """Many requests at once take the batched path, where images are decoded in the
    inference thread: every good one gets its own digit, the blank one its own 400."""
    from concurrent.futures import ThreadPoolExecutor

    before = _metric(client, "convlens_inference_batch_size_count")
    blank = png_bytes(np.zeros((28, 28), np.uint8))
    bodies = [png_bytes(mnist_test.images[i]) for i in range(24)]
    bodies[9] = blank
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda b: client.post("/v1/predict", files=files(b)), bodies))
    for i, r in enumerate(responses):
        if i == 9:
            assert r.status_code == 400 and r.json()["error"]["code"] == "blank_image"
        else:
            assert r.status_code == 200 and r.json()["digit"] == mnist_test.labels[i], i
    passes = _metric(client, "convlens_inference_batch_size_count") - before
    assert passes < 23, "concurrent requests should have shared forward passes"


def _metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_fastapi_opentelemetry_only_when_asked_for():
    # FastAPI checks this config on every request; off, it skips the provider lookups
    off = create_app(Settings(warmup=False))._telemetry  # type: ignore[attr-defined]
    on = create_app(Settings(warmup=False, otel=True))._telemetry  # type: ignore[attr-defined]
    assert not any(off[k] for k in ("tracing", "metrics", "logs", "operation_spans"))
    assert on["tracing"] and on["metrics"] and on["logs"]


def test_warm_up_runs_the_largest_pass_a_batch_request_can_make(monkeypatch):
    """A /v1/predict/batch request runs whole even when it is bigger than the micro-batcher's
    passes, so start-up must have run that shape too, or its first user pays for it."""
    from convlens.app.core.served_model import ServedModel

    shapes: list[int] = []
    logits = ServedModel.logits
    monkeypatch.setattr(ServedModel, "logits", lambda self, x: shapes.append(len(x)) or logits(self, x))
    with TestClient(create_app(Settings(max_batch_size=8, max_images_per_request=40, max_queue=64))):
        pass
    assert 40 in shapes and 8 in shapes
