"""The verdict head: is the input one digit, not a digit, or several? Read off the digit
network's own activations, in the pass that reads the digit.

The shipped network's stage outputs (pool1: 32 x 14 x 14, pool2: 64 x 7 x 7) and its
logits feed a small head. The served design, "conv": each stage output gets 3 x 3
convolutions down to a few pixels a side (14 -> 6 -> 4 with a stride-2 conv first, 7 -> 5),
and one dense layer reads them with the logits; about 0.9 M multiply-adds against the
trunk's 18 M, yet at batch 1 its small convolutions cost a third of the trunk's pass.
"dense": one hidden layer on pool2 and the logits, a third of that time at every batch
size and as good on validation (docs/verdict.md, Cost). The trunk stays frozen, so the
digit it reads is the digit it read before.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from convlens.model.net import VERDICT_CLASSES, ConvNet


@dataclass(frozen=True)
class HeadConfig:
    stages: tuple[tuple[int, int], ...]  # (channels, side) of each trunk stage output
    logits: int = 10
    width: int = 32
    classes: int = len(VERDICT_CLASSES)
    # "conv": 3 x 3 convolutions on every stage output, then one dense layer;
    # "dense": one hidden dense layer on the last stage output (the digit layer's own input)
    design: str = "conv"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": "verdict_head"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadConfig:
        d = {k: v for k, v in d.items() if k != "kind"}
        d["stages"] = tuple((int(c), int(s)) for c, s in d["stages"])
        return cls(**d)

    @classmethod
    def for_trunk(cls, trunk: ConvNet) -> HeadConfig:
        sides = trunk.config.spatial_sizes()[1:]  # each stage's output side
        return cls(stages=tuple(zip(trunk.config.channels, sides, strict=True)), logits=trunk.config.num_classes)


def _block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


DESIGNS = ("conv", "dense")


class VerdictHead(nn.Module):
    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        if config.design not in DESIGNS:
            raise ValueError(f"unknown verdict head design {config.design!r}: one of {DESIGNS}")
        self.config = config
        branches: list[nn.Module] = []
        n_in = config.logits
        if config.design == "dense":
            channels, side = config.stages[-1]
            self.branches = nn.ModuleList()
            self.hidden = nn.Sequential(nn.Linear(n_in + channels * side * side, config.width), nn.ReLU())
            self.fc = nn.Linear(config.width, config.classes)
            return
        for channels, side in config.stages:
            layers: list[nn.Module] = []
            c_in = channels
            if side >= 12:  # a big map is halved first, so no branch costs more than a few pixels
                layers += _block(c_in, config.width, stride=2)
                side, c_in = (side - 3) // 2 + 1, config.width
            layers += _block(c_in, config.width)
            side -= 2
            branches.append(nn.Sequential(*layers))
            n_in += config.width * side * side
        self.branches = nn.ModuleList(branches)
        self.fc = nn.Linear(n_in, config.classes)

    def forward(self, logits: torch.Tensor, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        """In float32 whatever the trunk's precision, converting only the stages it reads."""
        if self.config.design == "dense":
            return self.fc(self.hidden(torch.cat([stages[-1].float().flatten(1), logits.float()], 1)))
        parts = [b(s.float()).flatten(1) for b, s in zip(self.branches, stages, strict=True)]
        return self.fc(torch.cat([*parts, logits.float()], 1))


def fused_head(head: VerdictHead) -> VerdictHead:
    """A copy for serving: each batch norm folded into the conv before it (same function
    up to float rounding; fewer small operations at batch 1)."""
    fast = copy.deepcopy(head).eval()
    for branch in fast.branches:
        assert isinstance(branch, nn.Sequential)
        for i in range(len(branch) - 1):
            conv, bn = branch[i], branch[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                branch[i], branch[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
    return fast


def stage_names(trunk: ConvNet) -> list[str]:
    """The layer that ends each stage: its pool, or in a `fused_for_inference` copy the
    ReLU moved after it (both give the same map)."""
    names = trunk.layer_names
    kinds = trunk.kinds()
    out = []
    for i, name in enumerate(names):
        if kinds[name] == "pool":
            nxt = names[i + 1] if i + 1 < len(names) else None
            out.append(nxt if nxt is not None and kinds[nxt] == "relu" else name)
    return out


def trunk_outputs(
    trunk: ConvNet, x: torch.Tensor, names: Sequence[str] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and stage outputs of one pass through the digit network (`names`: its
    `stage_names`, worked out once by a caller that serves many passes)."""
    names = stage_names(trunk) if names is None else names
    logits, kept = trunk.features(x, names)
    return logits, [kept[n] for n in names]
