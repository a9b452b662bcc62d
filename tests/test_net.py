import itertools

import pytest
import torch

from convlens.model.net import ARTICLE, SHIPPED, ConvNet, NetConfig, count_parameters


def conv_params(k: int, c_in: int, c_out: int) -> int:
    return (k * k * c_in + 1) * c_out


def test_article_layer_table_walks_28_26_13_11_5():
    rows = {r.name: r for r in ConvNet(ARTICLE).layer_table()}
    assert [r for r in rows] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc"]
    assert rows["conv1"].output_shape == [16, 26, 26]
    assert rows["pool1"].output_shape == [16, 13, 13]
    assert rows["conv2"].output_shape == [32, 11, 11]
    assert rows["pool2"].output_shape == [32, 5, 5]
    assert rows["flatten"].output_shape == [800]
    assert rows["fc"].output_shape == [10]
    assert rows["conv1"].parameters == conv_params(3, 1, 16) == 160
    assert rows["conv2"].parameters == conv_params(3, 16, 32) == 4640
    assert rows["fc"].parameters == 800 * 10 + 10
    assert count_parameters(ConvNet(ARTICLE)) == 160 + 4640 + 8010


def test_shipped_family_member_has_named_stages_and_fits_budget():
    net = ConvNet(SHIPPED)
    names = net.layer_names
    for n in ("conv1", "bn1", "relu1", "conv2", "pool1", "conv3", "conv4", "pool2", "fc"):
        assert n in names
    assert names.index("pool1") < names.index("conv3")
    table = net.layer_table()
    assert sum(r.parameters for r in table) == count_parameters(net) <= 250_000
    assert {r.name: r.output_shape for r in table}["pool2"] == [64, 7, 7]


def test_features_come_from_the_same_pass_as_logits():
    torch.manual_seed(0)
    net = ConvNet(ARTICLE).eval()
    x = torch.randn(3, 1, 28, 28)
    logits, acts = net.features(x, ["conv1", "pool2"])
    assert torch.equal(logits, net(x))
    assert acts["conv1"].shape == (3, 16, 26, 26)
    assert acts["pool2"].shape == (3, 32, 5, 5)
    # pool2 is exactly max-pooling of relu2, i.e. the activations really are intermediate
    _, more = net.features(x, ["relu2", "pool2"])
    assert torch.equal(torch.nn.functional.max_pool2d(more["relu2"], 2), more["pool2"])


def test_unknown_layer_is_refused():
    with pytest.raises(KeyError):
        ConvNet(ARTICLE).features(torch.zeros(1, 1, 28, 28), ["conv9"])


def test_config_round_trips_and_rejects_impossible_values():
    cfg = NetConfig(channels=(8, 16, 32), padding=1, hidden=64, dropout=0.1)
    assert NetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        NetConfig(padding=2)
    with pytest.raises(ValueError):
        NetConfig(channels=(8, 8, 8, 8, 8))  # 28 px cannot survive five unpadded stages
    with pytest.raises(ValueError):
        NetConfig.from_dict({"channels": [4], "surprise": 1})


@pytest.mark.parametrize("preset", ["shipped", "article", "mlp"])
def test_the_serving_copy_computes_the_trained_function(preset):
    """Batch norm folded, pooling moved before the ReLU, ReLUs in place: none may change
    the logits, and the caller's input must come back untouched."""
    from convlens.model.net import PRESETS, fused_for_inference

    torch.manual_seed(0)
    net = ConvNet(PRESETS[preset])
    with torch.no_grad():  # batch-norm statistics a trained network could have
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    fast = fused_for_inference(net)
    x = torch.randn(5, 1, 28, 28)
    kept = x.clone()
    with torch.inference_mode():
        want = net(x)
        got = fast(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
    assert torch.equal(x, kept)
    order = fast.layer_names
    assert sorted(order) == sorted(net.layer_names)
    assert not any(a.startswith("relu") and b.startswith("pool") for a, b in itertools.pairwise(order))
    if preset != "mlp":
        assert order.index("pool1") < order.index("relu1" if preset == "article" else "relu2")
