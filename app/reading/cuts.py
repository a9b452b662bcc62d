"""The cut network as the reader runs it: is a candidate exactly one digit?

Trained by `model/train_cuts.py` on the reader's own candidates; loaded once at start-up
beside the other networks, run in the read gate's low-priority thread (it only ever sees
candidates of pages, never a /v1/predict upload).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convlens.model.card import load_folder
from convlens.model.checkpoint import CheckpointError
from convlens.model.net import ConvNet, fused_for_inference

FOLDER = "cuts"
CLASSES = ("not_one_digit", "one_digit")


@dataclass
class CutScorer:
    network: ConvNet
    card: dict[str, Any]

    def __post_init__(self) -> None:
        self.serving = fused_for_inference(self.network)

    @classmethod
    def load(cls, folder: Path) -> CutScorer:
        """Raises CheckpointError with one readable line on any problem."""
        loaded = load_folder(folder)
        if tuple(loaded.card.get("cuts", {}).get("classes") or ()) != CLASSES:
            raise CheckpointError(f"{folder} is not a cut network: its card names no classes {CLASSES}")
        return cls(loaded.network, loaded.card)

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unknown"))

    @torch.inference_mode()
    def one_digit(self, x: np.ndarray, batch: int = 1024) -> np.ndarray:
        """(N, 3, 28, 28) float inputs in [0, 1] -> (N,) probability of exactly one digit."""
        parts = [
            self.serving(torch.from_numpy(x[i : i + batch]).contiguous(memory_format=torch.channels_last)).softmax(1)[
                :, 1
            ]
            for i in range(0, len(x), batch)
        ]
        return torch.cat(parts).numpy() if parts else np.zeros(0, np.float32)
