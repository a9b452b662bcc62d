"""The Open Inference Protocol, checked with a client nobody here wrote: tritonclient[http]."""

import base64
import gzip
import json

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from benchmarks.harness import png_bytes, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with running_server({"WEB_CONCURRENCY": "1"}) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


def ink(mnist_test, n: int) -> np.ndarray:
    return (mnist_test.images[:n].astype(np.float32) / 255)[:, None]


def image_input(x: np.ndarray, binary: bool = True) -> triton.InferInput:
    t = triton.InferInput("image", list(x.shape), "FP32")
    t.set_data_from_numpy(x, binary_data=binary)
    return t


def test_health_and_metadata(client, server):
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["name"] == "convlens"
    versions = {}
    for name in ("shipped", "article", "mlp"):
        meta = client.get_model_metadata(name)
        card = httpx.get(f"{server.url}/v1/models/{name}").json()
        assert meta["name"] == name and meta["versions"] == [card["version"]]
        assert {(t["name"], t["datatype"], tuple(t["shape"])) for t in meta["inputs"]} == {
            ("image", "FP32", (-1, 1, 28, 28)),
            ("image_bytes", "BYTES", (-1,)),
        }
        assert {(t["name"], t["datatype"]) for t in meta["outputs"]} == {
            ("probabilities", "FP32"),
            ("digit", "INT64"),
            ("verdict", "BYTES"),
        }
        assert client.is_model_ready(name) and client.is_model_ready(name, card["version"])
        versions[name] = card["version"]
    assert client.get_model_metadata("article", versions["article"])["name"] == "article"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_fp32_images_give_the_v1_answers(client, server, mnist_test, binary):
    x = ink(mnist_test, 8)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("probabilities", "digit")]
    result = client.infer("shipped", [image_input(x, binary)], outputs=outputs)
    digits, probs = result.as_numpy("digit"), result.as_numpy("probabilities")
    assert digits.dtype == np.int64 and digits.tolist() == mnist_test.labels[:8].tolist()
    assert probs.shape == (8, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # the same pixels as a PNG through /v1/predict: the 28 x 28 passes preprocessing unchanged
    v1 = httpx.post(f"{server.url}/v1/predict", files={"file": ("d.png", png_bytes(mnist_test.images[0]), "image/png")})
    assert np.allclose(probs[0], v1.json()["probabilities"], atol=2e-3)


def test_defaults_return_every_output_in_binary(client, mnist_test):
    result = client.infer("article", [image_input(ink(mnist_test, 3))])
    response = result.get_response()
    assert {o["name"] for o in response["outputs"]} == {"probabilities", "digit", "verdict"}
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    assert result.as_numpy("digit").tolist() == mnist_test.labels[:3].tolist()
    # Triton's own client reads the binary BYTES tensor
    assert result.as_numpy("verdict").tolist() == [b"digit"] * 3


def test_image_files_as_bytes_are_preprocessed_like_v1(client, mnist_test):
    files = np.array([png_bytes(255 - mnist_test.images[i]) for i in range(4)], dtype=np.object_)
    t = triton.InferInput("image_bytes", [4], "BYTES")
    t.set_data_from_numpy(files)
    result = client.infer("mlp", [t], outputs=[triton.InferRequestedOutput("digit")])
    assert result.as_numpy("digit").tolist() == mnist_test.labels[:4].tolist()
    # JSON-only tensors: a JSON string cannot hold raw bytes, so the files go base64-encoded
    b64 = np.array([base64.b64encode(f) for f in files], dtype=np.object_)
    t = triton.InferInput("image_bytes", [4], "BYTES")
    t.set_data_from_numpy(b64, binary_data=False)
    result = client.infer("mlp", [t], outputs=[triton.InferRequestedOutput("digit", binary_data=False)])
    assert result.as_numpy("digit").tolist() == mnist_test.labels[:4].tolist()


def test_bad_shapes_datatypes_and_names_are_400_and_unknown_models_404(client, mnist_test):
    x = ink(mnist_test, 2)
    wrong_type = triton.InferInput("image", [2, 1, 28, 28], "FP64")
    wrong_type.set_data_from_numpy(x.astype(np.float64))
    flat = triton.InferInput("image", [2, 784], "FP32")
    flat.set_data_from_numpy(x.reshape(2, 784))
    loud = image_input(x * 255)  # pixels must be ink in [0, 1]
    unnamed = triton.InferInput("pixels", [2, 1, 28, 28], "FP32")
    unnamed.set_data_from_numpy(x)
    not_an_image = triton.InferInput("image_bytes", [1], "BYTES")
    not_an_image.set_data_from_numpy(np.array([b"hello"], dtype=np.object_))
    for bad in (wrong_type, flat, loud, unnamed, not_an_image):
        with pytest.raises(InferenceServerException) as e:
            client.infer("shipped", [bad])
        assert e.value.status() == "400" and e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client.infer("shipped", [image_input(x)], outputs=[triton.InferRequestedOutput("logits")])
    assert e.value.status() == "400"
    for name, version in (("nope", ""), ("shipped", "v0")):
        with pytest.raises(InferenceServerException) as e:
            client.infer(name, [image_input(x)], model_version=version)
        assert e.value.status() == "404"
    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("nope")
    assert e.value.status() == "404"


def test_raw_protocol_errors_are_json_with_an_error_string(server):
    url = f"{server.url}/v2/models/shipped/infer"
    for body, headers in (
        (b"not json", {}),
        (b'{"inputs": []}', {}),
        (b'{"inputs": [{"name": "image"}]}', {}),
        (b"{}", {"Inference-Header-Content-Length": "99"}),
        (gzip.compress(b"x" * 20_000_000), {"Content-Encoding": "gzip"}),
    ):
        r = httpx.post(url, content=body, headers=headers)
        assert r.status_code in (400, 413) and isinstance(r.json()["error"], str), (body[:20], r.text)
    data = json.dumps({"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}]})
    r = httpx.post(url, content=gzip.compress(data.encode()), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["model_name"] == "shipped"


def test_a_256_image_tensor_is_answered_in_chunks_and_past_the_limit_is_400(server, mnist_test):
    x = np.repeat(mnist_test.images[:8], 32, axis=0).astype(np.float32) / 255  # 256 images
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [256, 1, 28, 28], "data": x.ravel().tolist()}]}
    r = httpx.post(f"{server.url}/v2/models/shipped/infer", json=body, timeout=60)
    assert r.status_code == 200
    digits = next(o for o in r.json()["outputs"] if o["name"] == "digit")["data"]
    assert digits == np.repeat(mnist_test.labels[:8], 32).tolist()
    too_many = np.zeros((513, 28, 28), np.float32)
    body = {
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [513, 1, 28, 28], "data": too_many.ravel().tolist()}]
    }
    r = httpx.post(f"{server.url}/v2/models/shipped/infer", json=body, timeout=60)
    assert r.status_code == 400 and "1 to 512" in r.json()["error"]
