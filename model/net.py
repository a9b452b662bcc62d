"""The article's CNN, as a configurable family.

conv3x3 + ReLU -> 2x2 max pool -> conv3x3 + ReLU -> 2x2 max pool -> flatten -> dense.
With the defaults (16 and 32 filters, no padding) the size walk is the article's
28 -> 26 -> 13 -> 11 -> 5 and the dense layer sees 32 * 5 * 5 = 800 numbers.
The shipped model is a stronger member of the same family; its recipe is a `NetConfig`
saved beside the weights so the loader can rebuild it.
"""

from __future__ import annotations

import copy
import itertools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# MNIST pixel statistics (on [0, 1] pixels of the 60k training images); training and
# serving both import these so the two normalisations cannot drift apart.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
IMAGE_SIZE = 28
NUM_CLASSES = 10


@dataclass(frozen=True)
class NetConfig:
    """The recipe of a network; everything needed to rebuild it from its weights."""

    channels: tuple[int, ...] = (16, 32)  # filters per stage; one stage = convs + pool
    convs_per_stage: int = 1  # 2 gives the TinyVGG layout of CNN Explainer
    padding: int = 0  # 0: the article's shrinking 3x3 convs; 1: "same" convs
    batch_norm: bool = False
    dropout: float = 0.0  # before each dense layer
    hidden: int = 0  # width of a hidden dense layer; 0 means flatten -> logits
    in_channels: int = 1
    image_size: int = IMAGE_SIZE
    num_classes: int = NUM_CLASSES

    def __post_init__(self) -> None:
        if any(c < 1 for c in self.channels):
            raise ValueError(f"channels must be positive, got {self.channels}")
        if not self.channels and not self.hidden:
            raise ValueError("a network without conv stages needs a hidden dense layer")
        if self.convs_per_stage < 1:
            raise ValueError("convs_per_stage must be >= 1")
        if self.padding not in (0, 1):
            raise ValueError("padding must be 0 or 1 for 3x3 convolutions")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.hidden < 0:
            raise ValueError("hidden must be >= 0")
        if self.spatial_sizes()[-1] < 1:
            raise ValueError(f"{self} shrinks a {self.image_size}px image to nothing")

    def spatial_sizes(self) -> list[int]:
        """Side length after each stage, e.g. [28, 13, 5] for the article's network."""
        sizes = [self.image_size]
        side = self.image_size
        for _ in self.channels:
            for _ in range(self.convs_per_stage):
                side = side - 2 + 2 * self.padding
            side //= 2
            sizes.append(side)
        return sizes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown NetConfig fields: {sorted(unknown)}")
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(int(c) for c in d["channels"])
        return cls(**d)


ARTICLE = NetConfig()
# The shipped recipe: TinyVGG-style stages, "same" padding and batch norm; see model card.
SHIPPED = NetConfig(channels=(32, 64), convs_per_stage=2, padding=1, batch_norm=True, dropout=0.25)
# The article's starting point: no convolutions, flatten 784 -> dense 128 -> ReLU -> dense 10.
MLP = NetConfig(channels=(), hidden=128)
PRESETS: dict[str, NetConfig] = {"article": ARTICLE, "shipped": SHIPPED, "mlp": MLP}
# The verdict head's outputs, in order (model/verdict_head.py, model/train_verdict.py)
VERDICT_CLASSES = ("digit", "not_a_digit", "several_digits")
DESCRIPTIONS = {
    "shipped": "The shipped network: the article's conv-ReLU-pool pattern with two 3x3 convs per stage, "
    "padding and batch norm (28 -> 28 -> 14 -> 14 -> 7), trained on MNIST and rendered uploads.",
    "article": "The article's own network: 3x3 conv 16, ReLU, 2x2 max pool, 3x3 conv 32, ReLU, 2x2 max pool, "
    "dense 10, no padding (28 -> 26 -> 13 -> 11 -> 5).",
    "mlp": "The article's starting point, a multi-layer perceptron: flatten 784, dense 128, ReLU, dense 10. "
    "No convolutions, so no feature maps.",
}


def layer_kind(layer: nn.Module) -> str:
    """The one place that says what a layer is: conv, bn, relu, pool, flatten, dropout, dense."""
    kinds: dict[type[nn.Module], str] = {
        nn.Conv2d: "conv",
        nn.BatchNorm2d: "bn",
        nn.ReLU: "relu",
        nn.MaxPool2d: "pool",
        nn.Flatten: "flatten",
        nn.Dropout: "dropout",
        nn.Linear: "dense",
    }
    return kinds.get(type(layer), "other")


@dataclass
class LayerInfo:
    name: str
    type: str
    output_shape: list[int]  # [C, H, W] or [N] per image
    parameters: int
    extra: dict[str, Any] = field(default_factory=dict)


class ConvNet(nn.Module):
    """conv/ReLU stages, each closed by a 2x2 max pool, then dense layers (no stages: an MLP).

    Layers live in one ordered `nn.Sequential` with stable names (conv1, relu1, pool1,
    conv2, ...) because their number is configuration; `features` walks it and keeps
    the activations asked for, and `forward` is `features` keeping only the logits, so
    prediction and visualisation run the very same code.
    """

    def __init__(self, config: NetConfig = ARTICLE) -> None:
        super().__init__()
        self.config = config
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in, conv_i = config.in_channels, 0
        for stage, c_out in enumerate(config.channels, start=1):
            for _ in range(config.convs_per_stage):
                conv_i += 1
                # bias is redundant right before batch norm
                layers[f"conv{conv_i}"] = nn.Conv2d(c_in, c_out, 3, padding=config.padding, bias=not config.batch_norm)
                if config.batch_norm:
                    layers[f"bn{conv_i}"] = nn.BatchNorm2d(c_out)
                layers[f"relu{conv_i}"] = nn.ReLU()
                c_in = c_out
            layers[f"pool{stage}"] = nn.MaxPool2d(2)
        layers["flatten"] = nn.Flatten()
        side = config.spatial_sizes()[-1]
        n_in = c_in * side * side
        if config.hidden:
            if config.dropout:
                layers["dropout1"] = nn.Dropout(config.dropout)
            layers["fc1"] = nn.Linear(n_in, config.hidden)
            layers["relu_fc1"] = nn.ReLU()
            n_in = config.hidden
        if config.dropout:
            layers["dropout"] = nn.Dropout(config.dropout)
        layers["fc"] = nn.Linear(n_in, config.num_classes)
        self.layers = nn.Sequential(layers)

    @property
    def layer_names(self) -> list[str]:
        return [name for name, _ in self.layers.named_children()]

    def kinds(self) -> dict[str, str]:
        return {name: layer_kind(m) for name, m in self.layers.named_children()}

    @property
    def feature_layer_names(self) -> list[str]:
        """The layers whose outputs are images (conv, batch-norm, ReLU and pool): those
        before the flatten."""
        names = []
        for name, kind in self.kinds().items():
            if kind == "flatten":
                break
            names.append(name)
        return names

    def features(self, x: torch.Tensor, names: Iterable[str] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and the activations of the named layers, from one forward pass."""
        wanted = set(names)
        unknown = wanted - set(self.layer_names)
        if unknown:
            raise KeyError(f"unknown layers: {sorted(unknown)}")
        kept: dict[str, torch.Tensor] = {}
        for name, layer in self.layers.named_children():
            x = layer(x)
            if name in wanted:
                kept[name] = x
        return x, kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, _ = self.features(x)
        return logits  # (B, 10)

    def layer_table(self) -> list[LayerInfo]:
        """Name, type, per-image output shape and parameter count of every layer,
        measured by running a dummy image through the model rather than by formula."""
        c = self.config
        x = torch.zeros(1, c.in_channels, c.image_size, c.image_size)
        rows: list[LayerInfo] = []
        was_training = self.training
        self.eval()
        with torch.no_grad():
            for name, layer in self.layers.named_children():
                x = layer(x)
                rows.append(
                    LayerInfo(
                        name=name,
                        type=type(layer).__name__,
                        output_shape=list(x.shape[1:]),
                        parameters=sum(p.numel() for p in layer.parameters()),
                    )
                )
        self.train(was_training)
        return rows


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fused_for_inference(model: ConvNet) -> ConvNet:
    """A copy for serving: each batch norm folded into the conv before it, channels-last,
    each ReLU in place and after the max pool that followed it.

    Same function up to float rounding (~1e-5 on logits), 2.4x the images/s at batch 64 on
    one CPU thread (measured on the shipped model). ReLU and max pooling commute exactly,
    so pooling first leaves the ReLU a quarter of the pixels: 3-4 % of a bfloat16 pass at
    batch 32-64. Not for `features`: it has no BN outputs to show, and its layers are
    not in the trained order.
    """
    fast = copy.deepcopy(model).eval()
    names = fast.layer_names
    for name, nxt in itertools.pairwise(names):
        conv, bn = getattr(fast.layers, name), getattr(fast.layers, nxt)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            setattr(fast.layers, name, fuse_conv_bn_eval(conv, bn))
            setattr(fast.layers, nxt, nn.Identity())
    layers = OrderedDict(fast.layers.named_children())
    for i in range(len(names) - 1):
        if isinstance(layers[names[i]], nn.ReLU) and isinstance(layers[names[i + 1]], nn.MaxPool2d):
            names[i], names[i + 1] = names[i + 1], names[i]
    for layer in layers.values():
        if isinstance(layer, nn.ReLU):
            layer.inplace = True  # its input is always a fresh output of the layer before
    fast.layers = nn.Sequential(OrderedDict((name, layers[name]) for name in names))
    return fast.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it
