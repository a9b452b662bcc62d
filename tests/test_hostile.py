"""A corpus of hostile and odd uploads, generated here, each with its documented outcome.

Outcomes: a prediction (200) or a 4xx JSON error; never a 500; the app keeps serving.
"""

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from benchmarks.harness import FIXTURES, corpus, digit, encode, mnist_fixture, png_bomb, png_bytes
from convlens.app.config import Settings
from convlens.app.main import create_app

MNIST = mnist_fixture()


@pytest.fixture(scope="module")
def default_client():
    """The limits users get: 10 MB bodies, 50 MP images."""
    with TestClient(create_app(Settings())) as c:
        yield c


CORPUS = corpus(MNIST)


@pytest.mark.parametrize(("name", "kwargs", "status", "expect"), CORPUS, ids=[c[0] for c in CORPUS])
def test_every_hostile_input_gets_its_documented_outcome(default_client, name, kwargs, status, expect):
    r = default_client.post("/v1/predict", **kwargs)
    assert r.status_code == status, f"{name}: {r.status_code} {r.text[:200]}"
    body = r.json()
    if status >= 400:
        assert body["error"]["code"] == expect, name
        assert body["error"]["message"], name
    elif expect == "digit":
        assert body["digit"] == MNIST.labels[0], name
    # and the server is still fine
    assert default_client.get("/healthz").status_code == 200
    ok = default_client.post("/v1/predict", files={"file": ("d.png", png_bytes(MNIST.images[1]), "image/png")})
    assert ok.status_code == 200 and ok.json()["digit"] == MNIST.labels[1]


def test_a_twelve_megapixel_phone_photo_is_accepted(default_client, mnist_test):
    big = digit(mnist_test, 3).resize((1800, 1800), Image.Resampling.BICUBIC)
    photo = Image.new("L", (4000, 3000), 235)
    photo.paste(big, (1500, 700))
    data = encode(photo.convert("RGB"), "JPEG", quality=85)
    assert len(data) < 10 * 1024 * 1024
    r = default_client.post("/v1/predict", content=data, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input"]["width"] == 4000 and body["input"]["height"] == 3000 and body["input"]["inverted"]
    assert body["digit"] == mnist_test.labels[3]


def test_hostile_inputs_in_a_batch_fail_only_their_slots(default_client, mnist_test):
    good = png_bytes(mnist_test.images[4])
    files = [
        ("files", ("good.png", good, "image/png")),
        ("files", ("bomb.png", png_bomb(20_000), "image/png")),
        ("files", ("empty.png", b"", "image/png")),
        ("files", ("good2.png", good, "image/png")),
    ]
    body = default_client.post("/v1/predict/batch", files=files).json()
    assert [r["error"]["code"] if r["error"] else r["prediction"]["digit"] for r in body["results"]] == [
        mnist_test.labels[4],
        "image_too_large",
        "empty_image",
        mnist_test.labels[4],
    ]


def test_queue_full_answers_503_with_retry_after(mnist_test):
    s = Settings(max_queue=1, max_batch_size=1, warmup=False)
    with TestClient(create_app(s)) as c:
        files = [("files", (f"{i}.png", png_bytes(mnist_test.images[i]), "image/png")) for i in range(2)]
        r = c.post("/v1/predict/batch", files=files)  # two images can never fit a queue of one
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "overloaded"
        assert (
            c.post("/v1/predict", files={"file": ("d.png", png_bytes(mnist_test.images[0]), "image/png")}).status_code
            == 200
        )


HOSTILE = sorted((FIXTURES / "hostile").iterdir())


@pytest.mark.parametrize("path", HOSTILE, ids=[p.name for p in HOSTILE])
def test_files_the_fuzzer_found_are_refused_as_unreadable_or_read(default_client, path):
    """Files from benchmarks/fuzz_uploads.py that once crashed Pillow's decoders (a
    ZeroDivisionError, OverflowError or TypeError: a 500) get a 4xx or a digit."""
    kind = "image/jpeg" if path.suffix == ".jpg" else "image/tiff"
    r = default_client.post("/v1/predict", content=path.read_bytes(), headers={"content-type": kind})
    if path.stem.startswith("jpeg_zero_draft"):
        # a 30 x 43,304 strip: Pillow divided by zero when asked to decode it small
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "unreadable_image"
    assert default_client.get("/healthz").status_code == 200


def test_the_upload_fuzzer_runs_and_its_first_mutants_break_nothing(tmp_path, capsys):
    from benchmarks.fuzz_uploads import main

    assert main(["--mutants", "2000", "--seed", "7", "--save-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2,000 mutants") and "unreadable_image" in out and "decoded" in out
    assert not list(tmp_path.iterdir())


READER_CORPUS = corpus(MNIST)  # its own copy: the chunked body is an iterator, read once


@pytest.mark.parametrize(("name", "kwargs", "status", "expect"), READER_CORPUS, ids=[c[0] for c in READER_CORPUS])
def test_the_reader_refuses_what_predict_refuses(default_client, name, kwargs, status, expect):
    """The same upload errors on /v1/read; an image without ink reads as no numbers."""
    r = default_client.post("/v1/read", **kwargs)
    body = r.json()
    if expect == "blank_image":
        assert r.status_code == 200 and body["numbers"] == [], name
    elif status >= 400:
        assert (r.status_code, body["error"]["code"]) == (status, expect), f"{name}: {r.text[:200]}"
    else:
        assert r.status_code == 200, f"{name}: {r.text[:200]}"
    if expect == "digit":
        assert [n["text"] for n in body["numbers"]] == [str(MNIST.labels[0])], name
    assert default_client.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", HOSTILE, ids=[p.name for p in HOSTILE])
def test_the_reader_survives_the_fuzzer_files(default_client, path):
    kind = "image/jpeg" if path.suffix == ".jpg" else "image/tiff"
    r = default_client.post("/v1/read", content=path.read_bytes(), headers={"content-type": kind})
    assert r.status_code in (200, 400), r.text
    assert default_client.get("/healthz").status_code == 200
