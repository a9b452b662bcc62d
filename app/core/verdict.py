"""Whether an upload is one digit at all: the verdict network, as the service runs it.

Every prediction carries a verdict beside the digit: "digit", "not_a_digit" or
"several_digits", judged by a small network of the article's shape on the same 28 x 28
input the digit network reads (`model/train_verdict.py`), whichever model is asked. A
blank upload never reaches it: it is the 400 `blank_image` error, the fourth verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from convlens.model.card import load_folder
from convlens.model.checkpoint import CheckpointError
from convlens.model.net import VERDICT_CLASSES, ConvNet, fused_for_inference

Verdict = Literal["digit", "not_a_digit", "several_digits", "blank"]
DIGIT, NOT_A_DIGIT, SEVERAL = range(3)
FOLDER = "verdict"


@dataclass
class Judge:
    network: ConvNet
    card: dict[str, Any]
    threshold: float = field(init=False)

    def __post_init__(self) -> None:
        self.threshold = float(self.card["verdict"]["threshold"])
        self.serving = fused_for_inference(self.network)

    @classmethod
    def load(cls, folder: Path) -> Judge:
        """Raises CheckpointError with one readable line on any problem."""
        loaded = load_folder(folder)
        classes = loaded.card.get("verdict", {}).get("classes")
        if tuple(classes or ()) != VERDICT_CLASSES or "threshold" not in loaded.card["verdict"]:
            raise CheckpointError(f"{folder} is not a verdict network: its card names no classes {VERDICT_CLASSES}")
        return cls(loaded.network, loaded.card)

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unknown"))

    @torch.inference_mode()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised input -> (N, 3) probabilities of VERDICT_CLASSES."""
        return self.serving(x.float().contiguous(memory_format=torch.channels_last)).softmax(1)

    def decide(self, judged: torch.Tensor) -> Verdict:
        """One input's verdict from its three probabilities: a digit unless the network
        finds that unlikely (below the card's threshold), then the likelier of the others."""
        return decide(judged, self.threshold)


def decide(judged: torch.Tensor, threshold: float) -> Verdict:
    if float(judged[DIGIT]) >= threshold:
        return "digit"
    return "several_digits" if float(judged[SEVERAL]) > float(judged[NOT_A_DIGIT]) else "not_a_digit"
