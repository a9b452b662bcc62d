"""A corpus of hostile and odd uploads, generated here, each with its documented outcome.

Outcomes: a prediction (200) or a 4xx JSON error; never a 500; the app keeps serving.
"""

import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from convlens.app.config import Settings
from convlens.app.main import create_app
from convlens.model.data import load_split
from tests.conftest import FIXTURES, encode, png_bytes
from tests.test_preprocess import png_with_header


@pytest.fixture(scope="module")
def default_client():
    """The limits users get: 10 MB bodies, 50 MP images."""
    with TestClient(create_app(Settings())) as c:
        yield c


def png_bomb(side: int) -> bytes:
    """A real, complete grayscale PNG of side x side black pixels: tiny file, huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def digit(mnist_test, i=0, invert=True) -> Image.Image:
    x = mnist_test.images[i]
    return Image.fromarray(255 - x if invert else x)


def corpus(mnist_test) -> list[tuple[str, dict, int, str | None]]:
    """(name, request kwargs, expected status, expected error code or digit check)"""
    x = mnist_test.images[0]
    png = png_bytes(x)
    jpeg = encode(Image.fromarray(x), "JPEG", quality=90)
    raw = {"content-type": "image/png"}
    frames = [Image.fromarray(x).convert("P"), Image.fromarray(255 - x).convert("P")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    pal = Image.fromarray(255 - x).convert("P")
    rotated = Image.fromarray(x).transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 counter-clockwise to display"
    tall = np.full((10, 10_000), 255, np.uint8)
    tall[:, 4000:4010] = 0  # a 10 x 10 dot far to one side
    return [
        ("empty body", {"content": b"", "headers": raw}, 400, "empty_image"),
        ("empty file field", {"files": {"file": ("a.png", b"", "image/png")}}, 400, "empty_image"),
        ("truncated png", {"content": png[: len(png) // 2], "headers": raw}, 400, "unreadable_image"),
        (
            "truncated jpeg",
            {"content": jpeg[: len(jpeg) // 2], "headers": {"content-type": "image/jpeg"}},
            400,
            "unreadable_image",
        ),
        ("random bytes", {"content": np.random.default_rng(0).bytes(5000), "headers": raw}, 400, "unreadable_image"),
        (
            "text as text/plain",
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        (
            "svg",
            {
                "content": b'<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>',
                "headers": {"content-type": "image/svg+xml"},
            },
            400,
            "unreadable_image",
        ),
        (
            "pdf renamed png",
            {"files": {"file": ("scan.png", b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF", "image/png")}},
            400,
            "unreadable_image",
        ),
        ("html as image", {"content": b"<html><body>7</body></html>", "headers": raw}, 400, "unreadable_image"),
        (
            "header claims 50000x50000",
            {"content": png_with_header(50_000, 50_000), "headers": raw},
            413,
            "image_too_large",
        ),
        ("bomb: 400 MB of pixels in a tiny png", {"content": png_bomb(20_000), "headers": raw}, 413, "image_too_large"),
        ("1x1 image", {"content": png_bytes(np.array([[255]], np.uint8)), "headers": raw}, 400, "blank_image"),
        ("10000x10 image", {"content": png_bytes(tall), "headers": raw}, 200, None),
        ("16-bit grayscale", {"content": png_bytes(x.astype(np.uint16) * 257), "headers": raw}, 200, "digit"),
        (
            "cmyk jpeg",
            {"content": encode(digit(mnist_test).convert("CMYK"), "JPEG"), "headers": {"content-type": "image/jpeg"}},
            200,
            "digit",
        ),
        (
            "palette png with transparency",
            {"content": encode(pal, "PNG", transparency=255), "headers": raw},
            200,
            "digit",
        ),
        ("animated gif: first frame", {"content": gif, "headers": {"content-type": "image/gif"}}, 200, "digit"),
        (
            "exif-rotated jpeg",
            {"content": encode(rotated, "JPEG", quality=95, exif=exif), "headers": {"content-type": "image/jpeg"}},
            200,
            "digit",
        ),
        ("all black", {"content": png_bytes(np.zeros((28, 28), np.uint8)), "headers": raw}, 400, "blank_image"),
        ("all white", {"content": png_bytes(np.full((300, 200), 255, np.uint8)), "headers": raw}, 400, "blank_image"),
        ("wrong field name", {"files": {"image": ("a.png", png, "image/png")}}, 422, "malformed_request"),
        (
            "wrong content type",
            {"content": png, "headers": {"content-type": "application/json"}},
            415,
            "unsupported_media_type",
        ),
        ("no content type", {"content": png}, 415, "unsupported_media_type"),
        (
            "over limit with content-length",
            {"content": b"\0" * (10 * 1024 * 1024 + 1), "headers": raw},
            413,
            "payload_too_large",
        ),
        (
            "over limit, chunked",
            {"content": iter([b"\0" * (6 * 1024 * 1024)] * 2), "headers": raw},
            413,
            "payload_too_large",
        ),
    ]


MNIST = load_split(FIXTURES / "mnist", "test", verify=False, download_missing=False)
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
