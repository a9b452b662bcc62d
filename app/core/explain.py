"""Why a network chose a digit: a 28 x 28 heat map of the input pixels that mattered.

Captum computes the attributions; this module only chooses where to look and puts every
method on one scale (the 28 x 28 grid the network saw, 0 = no evidence, 1 = the most):
- gradcam: Grad-CAM on the last conv block's output (CNNs only), upsampled bilinearly;
- saliency: |d target logit / d pixel|;
- occlusion: how much the target's probability falls when a 4 x 4 patch of the input is
  blanked (to the background, not to 0 of the normalised input), stride 2; works for
  every model, the MLP included.
Explanations run on a private copy of the float32 network, one at a time per model:
Captum's hooks must not see the feature-map requests that share the served network.
"""

from __future__ import annotations

import copy
import threading
from typing import Literal

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam, Occlusion, Saliency

from convlens.app.core.errors import UnsupportedMethod
from convlens.app.core.served_model import ServedModel
from convlens.model.net import MNIST_MEAN, MNIST_STD, ConvNet

Method = Literal["gradcam", "saliency", "occlusion"]
METHODS: tuple[Method, ...] = ("gradcam", "saliency", "occlusion")
BACKGROUND = -MNIST_MEAN / MNIST_STD  # a pixel without ink, normalised
OCCLUSION_PATCH = 4
OCCLUSION_STRIDE = 2


class Explainer:
    def __init__(self, model: ServedModel) -> None:
        self.name = model.name
        self.network: ConvNet = copy.deepcopy(model.reference).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)  # gradients flow to the input only
        self.gradcam_layer = model.last_conv_output
        self._lock = threading.Lock()

    def methods(self) -> list[Method]:
        return [m for m in METHODS if m != "gradcam" or self.gradcam_layer is not None]

    def check(self, method: Method) -> None:
        """UnsupportedMethod before any work, e.g. Grad-CAM asked of the MLP."""
        if method not in self.methods():
            raise UnsupportedMethod(
                f"method {method!r} needs a conv layer; model {self.name!r} has none "
                f"(use {' or '.join(self.methods())})"
            )

    def heatmap(self, x: torch.Tensor, target: int, method: Method) -> np.ndarray:
        """x: (1, 1, 28, 28) normalised input -> (28, 28) float32 in [0, 1]."""
        self.check(method)
        with self._lock, torch.enable_grad():
            attribution = self._attribute(x.float().clone(), target, method)
        return _unit(attribution.detach().reshape(attribution.shape[-2:]).numpy())

    def _attribute(self, x: torch.Tensor, target: int, method: Method) -> torch.Tensor:
        if method == "gradcam":
            assert self.gradcam_layer is not None
            layer = getattr(self.network.layers, self.gradcam_layer)
            cam = LayerGradCam(self.network, layer).attribute(x, target=target, relu_attributions=True)
            return LayerAttribution.interpolate(cam, x.shape[-2:], interpolate_mode="bilinear").clamp(min=0)
        if method == "saliency":
            return Saliency(self.network).attribute(x.requires_grad_(), target=target, abs=True)
        probs = Occlusion(lambda t: torch.softmax(self.network(t), dim=1))
        drop = probs.attribute(
            x,
            target=target,
            sliding_window_shapes=(1, OCCLUSION_PATCH, OCCLUSION_PATCH),
            strides=(1, OCCLUSION_STRIDE, OCCLUSION_STRIDE),
            baselines=BACKGROUND,
        )
        return drop.clamp(min=0)  # evidence for the target, not against it


def _unit(a: np.ndarray) -> np.ndarray:
    top = float(a.max())
    return (a / top if top > 0 else np.zeros_like(a)).astype(np.float32)
