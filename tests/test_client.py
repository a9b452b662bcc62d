"""The Python client against a real server: the server's own models back, one error type."""

import asyncio

import pytest

from benchmarks.harness import png_bytes, running_server
from convlens.app.api.v1.schemas import (
    BatchResponse,
    Explanation,
    FeatureMapsResponse,
    ModelList,
    Prediction,
    ReadResponse,
)
from convlens.client import AsyncClient, Client, ConvlensError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with running_server({"WEB_CONCURRENCY": "1"}) as s:
        yield s


def test_sync_client(server, mnist_test, tmp_path):
    path = tmp_path / "seven.png"
    path.write_bytes(png_bytes(mnist_test.images[0]))
    with Client(server.url) as c:
        p = c.predict(path)
        assert isinstance(p, Prediction) and p.digit == mnist_test.labels[0] and p.model == "shipped"
        assert c.predict(path.read_bytes(), model="article").model == "article"
        batch = c.predict_batch([path, png_bytes(mnist_test.images[1])], model="mlp")
        assert isinstance(batch, BatchResponse) and [r.prediction.digit for r in batch.results] == [7, 2]
        maps = c.feature_maps(path, layers=["conv1", "pool2"])
        assert isinstance(maps, FeatureMapsResponse) and [x.name for x in maps.layers] == ["conv1", "pool2"]
        assert c.feature_map_png(path, "pool1").startswith(b"\x89PNG")
        why = c.explain(path, method="saliency")
        assert isinstance(why, Explanation) and len(why.heatmap) == 28
        assert len(c.shift_experiment(path, max_shift=1).models) == 3
        page = c.read(path)
        assert isinstance(page, ReadResponse) and [n.text for n in page.numbers] == [str(mnist_test.labels[0])]
        models = c.models()
        assert isinstance(models, ModelList) and models.default == "shipped"
        assert c.model("article").parameters == 12_810
        with pytest.raises(ConvlensError) as e:
            c.predict(b"not an image")
        assert (e.value.status, e.value.code) == (400, "unreadable_image") and e.value.message
        with pytest.raises(ConvlensError) as e:
            c.predict(path, model="nope")
        assert (e.value.status, e.value.code) == (404, "unknown_model")


def test_async_client(server, mnist_test):
    async def run() -> list[int]:
        async with AsyncClient(server.url) as c:
            answers = await asyncio.gather(*(c.predict(png_bytes(mnist_test.images[i])) for i in range(8)))
            page = await c.read(png_bytes(mnist_test.images[0]), model="article")
            assert page.model == "article" and page.numbers[0].text == str(mnist_test.labels[0])
            with pytest.raises(ConvlensError):
                await c.explain(png_bytes(mnist_test.images[0]), model="mlp", method="gradcam")
            return [a.digit for a in answers]

    assert asyncio.run(run()) == mnist_test.labels[:8].tolist()
