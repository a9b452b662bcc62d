"""The network outside the service: ONNX (ONNX Runtime, browsers, phones) or TorchScript.

The exported graph takes what the Open Inference Protocol's `image` input takes,
(N, 1, 28, 28) float32 ink in [0, 1] (an MNIST pixel / 255), normalises it itself and
returns probabilities (N, 10), with the card's served temperature; no preprocessing is
inside (see convlens.app.imaging for that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn

from convlens.model.net import MNIST_MEAN, MNIST_STD, ConvNet

Format = Literal["onnx", "torchscript"]
OPSET = 18


class Portable(nn.Module):
    """Normalisation, the network, softmax: one graph from ink to probabilities."""

    def __init__(self, network: ConvNet, temperature: float = 1.0) -> None:
        super().__init__()
        self.network = network.eval()
        self.temperature = temperature

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.network((image - MNIST_MEAN) / MNIST_STD)
        return torch.softmax(logits / self.temperature, dim=1)


def export(network: ConvNet, path: Path, fmt: Format, temperature: float = 1.0) -> Path:
    module = Portable(network, temperature).eval()
    example = torch.zeros(2, 1, 28, 28)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if fmt == "torchscript":
            torch.jit.trace(module, example).save(str(path))
        else:
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=["image"],
                output_names=["probabilities"],
                dynamic_shapes={"image": {0: batch}},
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
            )
    return path
