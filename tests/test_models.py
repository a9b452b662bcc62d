"""Several models in one service: the article's network, the MLP and the shipped one."""

import pytest

from benchmarks.harness import png_bytes

NETWORK_ENDPOINTS = [
    ("post", "/v1/predict"),
    ("post", "/v1/feature-maps?values=false"),
    ("post", "/v1/explain?method=occlusion"),
    ("post", "/v1/explain.png?method=occlusion"),
    ("get", "/v1/model"),
    ("get", "/v1/model/filters/conv1.png"),
    ("post", "/v1/predict/batch"),
]


def test_models_lists_every_card_and_the_default(client):
    body = client.get("/v1/models").json()
    assert body["default"] == "shipped"
    names = [m["name"] for m in body["models"]]
    assert names == ["shipped", "article", "mlp"]
    for card in body["models"]:
        assert client.get(f"/v1/models/{card['name']}").json() == card
    assert client.get("/v1/model").json() == body["models"][0]


def test_the_article_network_walks_28_26_13_11_5(client):
    card = client.get("/v1/models/article").json()
    shapes = {row["name"]: row["output_shape"] for row in card["layers"]}
    assert [shapes[n][1] for n in ("conv1", "pool1", "conv2", "pool2")] == [26, 13, 11, 5]
    assert shapes["flatten"] == [800]
    # parameters by the formula: 3x3 filters + a bias each, then the dense layer
    conv1, conv2, fc = 16 * (9 * 1 + 1), 32 * (9 * 16 + 1), 10 * (800 + 1)
    assert {r["name"]: r["parameters"] for r in card["layers"]}["conv2"] == conv2
    assert card["parameters"] == conv1 + conv2 + fc == 12_810
    assert card["test_accuracy"] >= 0.988


def test_the_mlp_is_flatten_dense_dense(client):
    card = client.get("/v1/models/mlp").json()
    assert [r["name"] for r in card["layers"]] == ["flatten", "fc1", "relu_fc1", "fc"]
    hidden = card["architecture"]["hidden"]
    assert card["parameters"] == 784 * hidden + hidden + hidden * 10 + 10
    assert card["feature_layers"] == [] and card["filter_layers"] == []
    assert card["test_accuracy"] >= 0.975


@pytest.mark.parametrize(("method", "path"), NETWORK_ENDPOINTS)
def test_every_network_endpoint_takes_model_and_404s_an_unknown_one(client, mnist_test, method, path):
    sep = "&" if "?" in path else "?"
    field = "files" if path.endswith("batch") else "file"
    kwargs = {"files": [(field, ("d.png", png_bytes(mnist_test.images[0]), "image/png"))]} if method == "post" else {}
    r = getattr(client, method)(f"{path}{sep}model=nope", **kwargs)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model", r.text
    r = getattr(client, method)(f"{path}{sep}model=article", **kwargs)
    assert r.status_code == 200, r.text
    if path == "/v1/predict":
        assert r.json()["model"] == "article"
        assert r.json()["model_version"] == client.get("/v1/models/article").json()["version"]


def test_each_model_recognises_the_committed_digits(client, mnist_test):
    for name, floor in (("article", 0.97), ("mlp", 0.95)):
        right = 0
        for start in range(0, 160, 16):
            batch = [
                ("files", (f"{i}.png", png_bytes(mnist_test.images[i]), "image/png")) for i in range(start, start + 16)
            ]
            body = client.post(f"/v1/predict/batch?model={name}", files=batch).json()
            assert body["model"] == name
            right += sum(r["prediction"]["digit"] == mnist_test.labels[start + r["index"]] for r in body["results"])
        assert right / 160 >= floor, (name, right)


def test_the_article_feature_maps_follow_its_walk(client, mnist_test):
    files = {"file": ("d.png", png_bytes(mnist_test.images[0]), "image/png")}
    body = client.post("/v1/feature-maps?model=article&values=false", files=files).json()
    assert [(x["name"], x["shape"][1]) for x in body["layers"]] == [
        ("conv1", 26),
        ("relu1", 26),
        ("pool1", 13),
        ("conv2", 11),
        ("relu2", 11),
        ("pool2", 5),
    ]
    mlp = client.post("/v1/feature-maps?model=mlp&layers=conv1", files=files)
    assert mlp.status_code == 404 and "no conv or pool layers" in mlp.json()["error"]["message"]
