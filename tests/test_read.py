"""The number reader: /v1/read end to end, and the parts that cut and join digits."""

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from benchmarks.harness import mnist_fixture, png_bytes
from benchmarks.pages import FAMILIES, Look, page, pages
from convlens.app.reading import decode, segment
from convlens.app.reading.cuts import CutScorer
from convlens.app.reading.page import read_page
from convlens.model.checkpoint import CheckpointError
from convlens.model.uploads import ink_box

MNIST = mnist_fixture()
POOL = (MNIST.images, MNIST.labels)


def read(client, data: bytes, ctype: str = "image/png", **params) -> dict:
    r = client.post("/v1/read", content=data, headers={"content-type": ctype}, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def texts(body: dict) -> list[str]:
    return [n["text"] for n in body["numbers"]]


def png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def sheet(glyphs: list[tuple[list[list[tuple[float, float]]], tuple[int, int]]], size=(420, 200)) -> Image.Image:
    """Pen strokes (in units of a 100 px digit) drawn at the given offsets, dark on white."""
    img = Image.new("L", size, 255)
    d = ImageDraw.Draw(img)
    for strokes, (ox, oy) in glyphs:
        for stroke in strokes:
            pts = [(ox + x * 100, oy + y * 100) for x, y in stroke]
            d.line(pts, fill=20, width=9, joint="curve")
            for x, y in (pts[0], pts[-1]):
                d.ellipse((x - 4.5, y - 4.5, x + 4.5, y + 4.5), fill=20)
    return img


# a 4 whose bar stops short of its stem, and a 5 whose bar floats above its body
FOUR = [[(0.45, 0.0), (0.05, 0.62), (0.62, 0.62)], [(0.72, 0.2), (0.72, 1.0)]]
BOWL = [(0.35 + 0.28 * math.cos(a), 0.68 + 0.28 * math.sin(a)) for a in np.linspace(-2.3, 2.5, 14)]
FIVE = [[(0.22, 0.0), (0.7, 0.0)], [(0.15, 0.16), (0.12, 0.42), *BOWL[1:]]]


def strokes_per_word(img: Image.Image) -> list[int]:
    lay = segment.layout(read_page(img).ink)
    return [len({p.label for p in w.pieces}) for line in lay.lines for w in line]


@pytest.mark.parametrize(("glyphs", "want"), [([(FOUR, (150, 50))], "4"), ([(FIVE, (150, 50))], "5")])
def test_a_digit_drawn_in_two_strokes_is_read_as_one(client, glyphs, want):
    img = sheet(glyphs)
    assert strokes_per_word(img) == [2]  # really two pieces, in one word
    body = read(client, png(img))
    assert texts(body) == [want]
    assert len(body["numbers"][0]["digits"]) == 1


def test_broken_digits_side_by_side_read_as_one_number(client):
    img = sheet([(FOUR, (60, 50)), (FIVE, (165, 50))])
    assert texts(read(client, png(img))) == ["45"]


def _touching_pair(a: int, b: int) -> tuple[np.ndarray, str]:
    """Digits a and b pushed together until their strokes meet, then 2 px further."""
    inks = []
    for i in (a, b):
        ink = ink_box(MNIST.images[i].astype(np.float32) / 255, 0.1)
        h, w = ink.shape
        inks.append(np.asarray(Image.fromarray(ink).resize((round(w * 80 / h), 80), Image.Resampling.BICUBIC)))
    left, right = inks
    for overlap in range(0, min(left.shape[1], right.shape[1]) // 2):
        canvas = np.zeros((160, 60 + left.shape[1] + right.shape[1] + 60), np.float32)
        canvas[40:120, 60 : 60 + left.shape[1]] = left
        x = 60 + left.shape[1] - overlap - 2
        canvas[40:120, x : x + right.shape[1]] = np.maximum(canvas[40:120, x : x + right.shape[1]], right)
        if ndimage.label(canvas > 0.5, structure=np.ones((3, 3)))[1] == 1:
            break
    return (255 * (1 - canvas.clip(0, 1))).astype(np.uint8), f"{MNIST.labels[a]}{MNIST.labels[b]}"


def test_touching_digits_are_split(client):
    """Pairs of MNIST digits pushed together until they are one stroke."""
    right = 0
    for a in range(0, 24, 2):
        picture, want = _touching_pair(a, a + 1)
        right += texts(read(client, png_bytes(picture))) == [want]
    assert right >= 8, f"{right} of 12 touching pairs read"  # one stroke each: connected components read none


def test_pages_of_numbers_are_read_with_boxes_in_reading_order(client):
    exact = total = 0
    for p in pages("ordinary", 5, POOL, seed=11):
        body = read(client, p.data, p.content_type)
        assert (body["width"], body["height"]) == (p.width, p.height)
        got = texts(body)
        want = [t.text for t in p.numbers]
        total += len(want)
        exact += sum(1 for t in want if t in got)
        for n in body["numbers"]:
            boxes = np.array([d["box"] for d in n["digits"]])
            assert n["box"] == [boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()]
            assert boxes[:, 0].tolist() == sorted(boxes[:, 0].tolist())  # left to right
            assert all(0 <= b[0] < b[2] <= p.width and 0 <= b[1] < b[3] <= p.height for b in boxes)
            assert math.isclose(n["confidence"], math.prod(d["confidence"] for d in n["digits"]), rel_tol=1e-3)
            for d in n["digits"]:
                assert abs(sum(d["probabilities"]) - 1) < 1e-3 and d["digit"] == int(np.argmax(d["probabilities"]))
    assert exact >= 0.85 * total, f"{exact} of {total}"


def test_two_columns_read_row_by_row(client):
    look = Look(columns=2, rows=(3, 3), digits=(3, 4), digit_height=(40, 40))
    p = page(look, POOL, np.random.default_rng(5))
    body = read(client, p.data, p.content_type)
    mids = [((n["box"][1] + n["box"][3]) / 2, n["box"][0]) for n in body["numbers"]]
    rows = [mids[i : i + 2] for i in range(0, len(mids), 2)]
    assert len(body["numbers"]) == 6
    for (y_left, x_left), (y_right, x_right) in rows:  # left number, then the right one, row after row
        assert x_left < x_right and abs(y_left - y_right) < 40
    assert [r[0][0] for r in rows] == sorted(r[0][0] for r in rows)


def test_a_page_sent_on_its_side_reads_as_upright(client):
    p = page(FAMILIES["ordinary"], POOL, np.random.default_rng(3))
    upright = Image.open(io.BytesIO(p.data))
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer turns the stored pixels 90 degrees clockwise
    sideways = png(upright.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())
    a, b = read(client, p.data), read(client, sideways)
    assert (b["width"], b["height"]) == (a["width"], a["height"]) == (p.width, p.height)
    assert texts(a) == texts(b) and texts(a)
    for na, nb in zip(a["numbers"], b["numbers"], strict=True):
        assert np.abs(np.array(na["box"]) - np.array(nb["box"])).max() <= 2


def test_boxes_are_in_the_uploads_pixels_when_it_is_reduced(client):
    """A page bigger than the working side is read reduced; boxes scale back."""
    p = page(
        Look(side=(2600, 1300), digit_height=(120, 120), rows=(1, 1), digits=(3, 3)), POOL, np.random.default_rng(4)
    )
    body = read(client, p.data, p.content_type)
    assert texts(body) and len(body["numbers"][0]["digits"]) == len(p.numbers[0].digits)
    for got, want in zip(body["numbers"][0]["digits"], p.numbers[0].digits, strict=False):
        assert np.abs(np.array(got["box"]) - np.array(want)).max() <= 12


@pytest.mark.parametrize("kind", ["white", "ruled"])
def test_blank_paper_reads_as_no_numbers(client, kind):
    paper = np.full((400, 600), 245, np.uint8)
    if kind == "ruled":
        paper[30::40] = 170
    body = read(client, png_bytes(paper))
    assert body["numbers"] == [] and body["truncated"] is False


def test_noise_is_answered_with_what_was_found(client):
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1200), dtype=np.uint8)
    body = read(client, png_bytes(noise))
    assert body["candidates"] <= segment.MAX_CANDIDATES
    assert isinstance(body["truncated"], bool)


def test_model_parameter_and_unknown_model(client, mnist_test):
    data = png_bytes(255 - mnist_test.images[0])
    assert read(client, data, model="mlp")["model"] == "mlp"
    r = client.post("/v1/read", content=data, headers={"content-type": "image/png"}, params={"model": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model"


def test_multipart_upload_and_metrics(client, mnist_test):
    before = client.get("/metrics").text
    r = client.post("/v1/read", files={"file": ("d.png", png_bytes(255 - mnist_test.images[0]), "image/png")})
    assert r.status_code == 200 and texts(r.json()) == [str(mnist_test.labels[0])]
    after = client.get("/metrics").text

    def count(text: str, kind: str) -> float:
        lines = [x for x in text.splitlines() if x.startswith("convlens_read_total") and f'kind="{kind}"' in x]
        return sum(float(x.split()[-1]) for x in lines)

    assert count(after, "pages") == count(before, "pages") + 1
    assert count(after, "digits") == count(before, "digits") + 1


def test_openapi_documents_the_reader(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/read"]["post"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReadResponse")
    assert {"400", "413", "415"} <= set(op["responses"])
    assert "box" in spec["components"]["schemas"]["ReadDigit"]["properties"]


def test_best_path_joins_and_splits_by_score():
    sure = decode.Scored(np.eye(10)[3] * 0.99 + 0.001, np.array([0.99, 0.005, 0.005]))
    doubt = decode.Scored(np.full(10, 0.1), np.array([0.01, 0.5, 0.49]))
    # two pieces that are one digit together: joined
    assert decode.best_path(2, {(0, 1): doubt, (1, 2): doubt, (0, 2): sure}) == [(0, 2)]
    # two digits that touch: the whole is "several digits", the cut wins
    two = decode.Scored(np.full(10, 0.1), np.array([0.0001, 0.0009, 0.999]))
    assert decode.best_path(2, {(0, 1): sure, (1, 2): sure, (0, 2): two}) == [(0, 1), (1, 2)]
    # a piece that fits nothing is left out
    assert decode.best_path(2, {(0, 1): sure}) == [(0, 1)]


def test_doubted_digits_go_alone_or_with_their_whole_word(settings):
    from convlens.app.core.reader import WORD_DOUBT, kept
    from convlens.app.core.verdict import Judge

    judge = Judge.load(settings.verdict_dir)
    assert 1e-5 < judge.threshold < WORD_DOUBT  # the letter below is flagged alone, its word as a whole
    probs = np.full(10, 0.1)
    sure, letter = (decode.Scored(probs, np.array(j)) for j in ([0.99, 0.005, 0.005], [1e-5, 0.99, 1e-5]))
    # one mark the head calls not a digit: left out
    assert kept([letter], judge) == [False] and kept([sure], judge) == [True]
    # "No": a doubted word goes whole, not just its more doubted letter
    assert kept([sure, letter], judge) == [False, False]
    # a long number with one doubted digit keeps it: its digits together are believed
    assert kept([sure, sure, sure, sure, letter], judge) == [True] * 5


def test_cut_network_smoke_run_writes_a_loadable_network(tmp_path):
    from convlens.model import train_cuts

    fixtures = Path(__file__).parent / "fixtures" / "mnist"
    assert train_cuts.main(["--smoke", "--data-dir", str(fixtures), "--out-dir", str(tmp_path), "--workers", "1"]) == 0
    scorer = CutScorer.load(tmp_path)
    assert scorer.card["cuts"]["classes"] == ["not_one_digit", "one_digit"]
    one = scorer.one_digit(np.zeros((3, 3, 28, 28), np.float32))
    assert one.shape == (3,) and ((one >= 0) & (one <= 1)).all()


def test_a_folder_that_is_not_a_cut_network_stops_startup(tmp_path, settings):
    for name in ("model.safetensors", "model_card.json"):
        (tmp_path / name).write_bytes((settings.model_dir("article") / name).read_bytes())
    with pytest.raises(CheckpointError, match="not a cut network"):
        CutScorer.load(tmp_path)


def test_the_shipped_cut_network_tells_whole_digits_from_pieces(settings, mnist_test):
    """On strips of the committed test digits, cut by the reader itself."""
    from convlens.model.strips import strip
    from convlens.model.train_cuts import build

    x, y = build(mnist_test.images, mnist_test.labels, 30, seed=3)
    one = CutScorer.load(settings.cuts_dir).one_digit(x.astype(np.float32) / 255)
    assert y.sum() > 50 and (1 - y).sum() > 50
    assert ((one > 0.5) == (y == 1)).mean() > 0.9
    assert strip(mnist_test.images, mnist_test.labels, np.random.default_rng(0)).masks


def test_the_models_list_shows_the_cut_network_card(client):
    card = client.get("/v1/models").json()["cuts"]
    assert card["classes"] == ["not_one_digit", "one_digit"]
    assert card["architecture"]["in_channels"] == 3 and card["validation"]["accuracy"] > 0.9


# The reader cuts the thick marker 8 into its two loops, and each reads "8". Until
# 2026-12-07 the verdict network of that time dropped the top loop and kept the bottom one,
# so this case passed by luck; the retrained one (docs/verdict.md, run D) drops both.
# strict: it fails loudly once the reader keeps the 8 whole.
CUT_IN_TWO = pytest.mark.xfail(reason="the reader cuts a thick marker 8 in two (docs/reading.md)", strict=True)
UPLOADS = [
    pytest.param(p, id=p.stem, marks=CUT_IN_TWO if p.stem == "marker_8" else ())
    for p in sorted((Path(__file__).parent / "fixtures" / "uploads").glob("*.png"))
]


@pytest.mark.parametrize("path", UPLOADS)
def test_a_single_digit_upload_reads_as_that_one_digit(client, path):
    """Uploads as people send them (a thin wide 8, a marker, a 2 touching the frame, an
    8 x 8 scan filling its frame): one number, one digit."""
    assert texts(read(client, path.read_bytes())) == [path.stem.split("_")[-1]]
