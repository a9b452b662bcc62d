"""The reader's second look at flagged predictions: several digits say what they are."""

import asyncio
import base64

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from convlens.app.config import Settings
from convlens.app.core.admission import Gate
from convlens.app.core.reader import ReadDigit, Reading, ReadNumber
from convlens.app.core.several import Look, look, settle
from convlens.app.main import create_app
from convlens.model.data import Split
from convlens.model.nondigits import mpl_fonts, typeset
from convlens.model.uploads import encode


def _number(rng: np.random.Generator, split: Split, k: int) -> tuple[bytes, str]:
    """k MNIST test digits side by side on white paper, a few pixels apart."""
    picks = rng.choice(len(split.images), k, replace=False)
    tiles = [255 - split.images[i][:, 3:25] for i in picks]
    row = np.concatenate([np.pad(t, ((0, 0), (0, 4)), constant_values=255) for t in tiles], axis=1)
    page = np.pad(row, 16, constant_values=255)
    big = Image.fromarray(page).resize((page.shape[1] * 4, page.shape[0] * 4), Image.Resampling.BILINEAR)
    return encode(big, "PNG"), "".join(str(int(split.labels[i])) for i in picks)


def _predict(client: TestClient, data: bytes) -> dict:
    r = client.post("/v1/predict", files={"file": ("x.png", data, "image/png")})
    assert r.status_code == 200, r.text
    return r.json()


def _reading(*texts: str, truncated: bool = False, confidence: float = 0.99) -> Reading:
    numbers = [
        ReadNumber(t, 0.9, [ReadDigit(int(c), confidence, np.eye(10)[int(c)], (0, 0, 1, 1)) for c in t]) for t in texts
    ]
    return Reading(numbers, 10, 10, "PNG", truncated, 0, 0.0, 0.0)


def test_the_rule_one_number_of_two_digits_or_more_makes_several():
    assert settle("not_a_digit", _reading("42")) == Look("several_digits", "42")
    assert settle("several_digits", _reading("42")) == Look("several_digits", "42")
    # a digit verdict is never second-guessed, whatever the reader says
    assert settle("digit", _reading("42")) == Look("digit", None)
    # one digit, nothing, or several numbers keep the network's verdict
    assert settle("not_a_digit", _reading("7")) == Look("not_a_digit", None)
    assert settle("not_a_digit", _reading()) == Look("not_a_digit", None)
    assert settle("not_a_digit", _reading("1", "11")) == Look("not_a_digit", None)
    assert settle("several_digits", _reading("12", "34")) == Look("several_digits", "12 34")
    assert settle("several_digits", _reading("1")) == Look("several_digits", None)
    # a number read unsurely, or only of 1s (what stripes read as), is not enough
    assert settle("not_a_digit", _reading("18", confidence=0.7)) == Look("not_a_digit", None)
    assert settle("not_a_digit", _reading("1111")) == Look("not_a_digit", None)
    # a page too busy to read, or no look at all
    assert settle("not_a_digit", _reading("42", truncated=True)) == Look("not_a_digit", None)
    assert settle("not_a_digit", None) == Look("not_a_digit", None)
    assert settle(None, _reading("42")) == Look(None, None)


def test_handwritten_numbers_are_several_digits_and_say_what_they_read(client, mnist_test):
    rng = np.random.default_rng(5)
    answers = [(_predict(client, data), truth) for data, truth in (_number(rng, mnist_test, k) for k in (2, 3, 4) * 4)]
    several = [(a["reading"], truth) for a, truth in answers if a["verdict"] == "several_digits"]
    assert len(several) >= 10, [(a["verdict"], a["reading"], t) for a, t in answers]
    assert sum(reading == truth for reading, truth in several) >= 9, several
    for a, _ in answers:  # a reading comes with several_digits only
        assert (a["reading"] is None) or a["verdict"] == "several_digits"


def test_a_typed_number_is_read(client):
    ink = typeset("305", mpl_fonts()[0], 120)
    page = Image.fromarray(np.pad(255 - (ink * 255).astype(np.uint8), 30, constant_values=255))
    answer = _predict(client, encode(page, "PNG"))
    assert (answer["verdict"], answer["reading"]) == ("several_digits", "305"), answer


def test_a_single_digit_has_no_reading(client, mnist_test):
    data, _ = _number(np.random.default_rng(1), mnist_test, 1)
    answer = _predict(client, data)
    assert answer["verdict"] == "digit" and answer["reading"] is None


def test_the_batch_gives_each_slot_the_same_look(client, mnist_test):
    rng = np.random.default_rng(9)
    uploads = [_number(rng, mnist_test, k) for k in (1, 3, 2)]
    alone = [_predict(client, data) for data, _ in uploads]
    r = client.post(
        "/v1/predict/batch", files=[("files", (f"{i}.png", d, "image/png")) for i, (d, _) in enumerate(uploads)]
    )
    assert r.status_code == 200, r.text
    batch = [item["prediction"] for item in r.json()["results"]]
    assert [(p["verdict"], p["reading"]) for p in batch] == [(p["verdict"], p["reading"]) for p in alone]


def test_without_the_second_look_the_network_verdict_stands(mnist_test):
    data, _ = _number(np.random.default_rng(5), mnist_test, 3)
    with TestClient(create_app(Settings(second_look=False))) as c:
        answer = _predict(c, data)
    assert answer["reading"] is None


def test_a_full_look_gate_leaves_the_verdict_unread_instead_of_refusing():
    async def scenario() -> Look:
        gate = Gate(1, 0, retry_after_s=1)
        release = asyncio.Event()

        async def hold() -> None:
            async with gate.slot():
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0)
        assert gate.full
        img = Image.new("L", (40, 40), 255)
        # the model is never reached: a full gate answers before anything is read
        out = await look(img, "not_a_digit", None, gate, None)  # type: ignore[arg-type]
        release.set()
        await holder
        gate.close()
        return out

    assert asyncio.run(scenario()) == Look("not_a_digit", None)


def test_the_openapi_schema_documents_the_reading(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Prediction"]["properties"]
    assert "reading" in schema and "/v1/read" in schema["reading"]["description"]


def test_v2_image_files_get_the_same_verdict_as_v1(client):
    ink = typeset("305", mpl_fonts()[0], 120)
    data = encode(Image.fromarray(np.pad(255 - (ink * 255).astype(np.uint8), 30, constant_values=255)), "PNG")
    body = {
        "inputs": [
            {"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(data).decode()]}
        ]
    }
    r = client.post("/v2/models/shipped/infer", json=body)
    assert r.status_code == 200, r.text
    verdict = {o["name"]: o for o in r.json()["outputs"]}["verdict"]["data"]
    assert verdict == [_predict(client, data)["verdict"]] == ["several_digits"]
