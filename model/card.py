"""A model folder on disk: weights plus the card that vouches for them.

Every served network lives in its own folder (`weights/<name>/`) holding
`model.safetensors` and `model_card.json`; the card records the weights' sha256, and a
folder whose weights do not match their card is refused as a whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convlens.model.checkpoint import CheckpointError, load_checkpoint
from convlens.model.net import ConvNet

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"


@dataclass(frozen=True)
class ModelFolder:
    network: ConvNet  # float32, eval mode, exactly as trained
    card: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unknown"))


def read_card(folder: Path) -> dict[str, Any]:
    path = folder / CARD_FILE
    if not path.is_file():
        raise CheckpointError(f"model card not found: {path}")
    try:
        card = json.loads(path.read_text())
        if not isinstance(card["weights"]["sha256"], str):  # the one field serving needs
            raise TypeError("weights.sha256 is not a string")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"model card {path} is unreadable: {e}") from e
    return card


def load_folder(folder: Path) -> ModelFolder:
    """Raises CheckpointError with one readable line on any problem."""
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"weights file not found: {weights}")
    card = read_card(folder)
    return ModelFolder(load_checkpoint(weights, expected_sha256=card["weights"]["sha256"]), card)
