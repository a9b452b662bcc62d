"""One named network as the service runs it: checked weights, card, serving copy, batcher."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convlens.app.config import Precision
from convlens.app.core.precision import DTYPES, resolve_precision
from convlens.app.core.scheduler import BatchScheduler, BatchStats
from convlens.app.core.verdict import Judge
from convlens.model.card import load_folder
from convlens.model.net import MNIST_MEAN, MNIST_STD, NUM_CLASSES, ConvNet, LayerInfo, fused_for_inference
from convlens.model.verdict_head import trunk_outputs


@dataclass
class ServedModel:
    """`serving` makes every prediction: BN folded, channels-last, in the serving precision
    (bfloat16 halves the batched forward pass on CPUs that have it; 9,999 of the 10,000
    MNIST test digits get the float32 digit). `reference` is the float32 network as
    trained, whose every layer (BN included) the feature maps and explanations show."""

    name: str
    reference: ConvNet
    card: dict[str, Any]
    precision: Precision = "float32"
    layers: list[LayerInfo] = field(init=False)
    # the verdict head, shared by every model: it runs in the same batched pass
    judge: Judge | None = None
    scheduler: BatchScheduler | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.precision = resolve_precision(self.precision)
        self.dtype = DTYPES[self.precision]
        self.serving = fused_for_inference(self.reference).to(self.dtype)
        # the card's served temperature (model/calibrate.py): 1.0 when fitting one did not
        # help on unseen validation digits, and for weights trained before calibration
        self.temperature = float(self.card.get("calibration", {}).get("temperature", 1.0))
        self.layers = self.reference.layer_table()
        self.kinds = self.reference.kinds()
        self.layer_types = {row.name: row.type for row in self.layers}
        self.feature_layers = self.reference.feature_layer_names
        # the layers shown by default: the article's conv -> ReLU -> pool walk
        self.default_layers = [n for n in self.feature_layers if self.kinds[n] != "bn"]
        # Grad-CAM reads the last conv block's output: the ReLU after the last conv
        self.last_conv_output: str | None = None
        for name in self.feature_layers:
            if self.kinds[name] == "conv" or (self.kinds[name] == "relu" and self.last_conv_output):
                self.last_conv_output = name
        self._warm = False

    @classmethod
    def load(cls, name: str, folder: Path, precision: Precision = "float32", judge: Judge | None = None) -> ServedModel:
        """Raises CheckpointError with one readable line on any problem."""
        loaded = load_folder(folder)
        return cls(name=name, reference=loaded.network, card=loaded.card, precision=precision, judge=judge)

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unknown"))

    @property
    def is_cnn(self) -> bool:
        return self.last_conv_output is not None

    @property
    def ready(self) -> bool:
        return self._warm and self.scheduler is not None

    @property
    def filter_layers(self) -> list[str]:
        """Conv layers that read the image itself: their 3x3 filters are pictures."""
        return [
            n
            for n, m in self.reference.layers.named_children()
            if self.kinds[n] == "conv" and isinstance(m, torch.nn.Conv2d) and m.in_channels == 1
        ]

    def signed_output(self, layer: str) -> bool:
        """Conv and batch-norm outputs have a sign (drawn blue-white-red); ReLU and pool do not."""
        return self.kinds[layer] in ("conv", "bn")

    def filters(self, layer: str) -> np.ndarray | None:
        """(C, k, k) weights of a layer in `filter_layers`, else None."""
        if layer not in self.filter_layers:
            return None
        return getattr(self.reference.layers, layer).weight.detach()[:, 0].numpy()

    def make_scheduler(self, stats: BatchStats, **options: Any) -> BatchScheduler:
        """This model's own micro-batcher, so one model's queue never holds up another's."""
        self.scheduler = BatchScheduler(self.answer, stats=stats, **options)
        return self.scheduler

    def warm_up(self, max_batch: int) -> float:
        """Run every batch shape once so the first user does not pay for allocation."""
        start = time.perf_counter()
        for b in sorted({1, 2, 4, 8, min(max_batch, 64), max_batch}):
            self.answer(torch.zeros(b, 1, 28, 28))
        self.features(torch.zeros(1, 1, 28, 28), self.feature_layers)
        self._warm = True
        return time.perf_counter() - start

    def skip_warm_up(self) -> None:
        self._warm = True

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.serving(self._input(x)).float()

    def _softmax(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits / self.temperature if self.temperature != 1.0 else logits, dim=1)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self._softmax(self.logits(x))

    @torch.inference_mode()
    def answer(self, x: torch.Tensor) -> torch.Tensor:
        """What the micro-batcher computes: (N, 10) digit probabilities, followed by the
        verdict head's (N, 3) when there is one (`split_answer` takes them apart). When the
        head reads this very network, one pass gives both."""
        if self.judge is None:
            return self.probabilities(x)
        if self.judge.reads(str(self.card["weights"]["sha256"]), self.dtype):
            logits, stages = trunk_outputs(self.serving, self._input(x), self.judge.stages)
            return torch.cat([self._softmax(logits.float()), self.judge.from_trunk(logits, stages)], 1)
        return torch.cat([self.probabilities(x), self.judge.probabilities(x)], 1)

    @torch.inference_mode()
    def features(self, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        """Activations of the float32 network. Its probabilities are not returned: every
        prediction comes from `serving`, so an image gets the same ones on every endpoint."""
        return self.reference.features(x, names)[1]


def to_tensor(pixels: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """(28, 28) ink maps in [0, 1] -> the normalised (N, 1, 28, 28) network input."""
    batch = np.stack(pixels) if isinstance(pixels, list) else pixels[None]
    return torch.from_numpy((batch[:, None] - MNIST_MEAN) / MNIST_STD)


def split_answer(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rows of `ServedModel.answer` -> (digit probabilities, verdict probabilities or None)."""
    return out[..., :NUM_CLASSES], (out[..., NUM_CLASSES:] if out.shape[-1] > NUM_CLASSES else None)
