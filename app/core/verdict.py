"""Whether an upload is one digit at all: the verdict head, as the service runs it.

Every prediction carries a verdict beside the digit: "digit", "not_a_digit" or
"several_digits", judged by a small head on the shipped network's own activations
(`model/verdict_head.py`, trained by `model/train_verdict.py`) from the same 28 x 28 input
the digit network reads, whichever model is asked. For the shipped network it reads the
pass that found the digit; for the others it runs its own copy of the shipped trunk. A
blank upload never reaches it: it is the 400 `blank_image` error, the fourth verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from convlens.model.card import CARD_FILE, WEIGHTS_FILE, load_folder, read_card
from convlens.model.checkpoint import CheckpointError, load_head
from convlens.model.net import VERDICT_CLASSES, ConvNet, fused_for_inference
from convlens.model.verdict_head import VerdictHead, fused_head, stage_names, trunk_outputs

Verdict = Literal["digit", "not_a_digit", "several_digits", "blank"]
DIGIT, NOT_A_DIGIT, SEVERAL = range(3)
FOLDER = "verdict"


@dataclass
class Judge:
    head: VerdictHead
    card: dict[str, Any]
    trunk: ConvNet  # the serving copy of the digit network whose activations the head reads
    dtype: torch.dtype = torch.float32  # the trunk's serving precision, as the served model's
    threshold: float = field(init=False)

    def __post_init__(self) -> None:
        self.threshold = float(self.card["verdict"]["threshold"])
        self.trunk_sha256 = str(self.card["trunk"]["sha256"])
        self.serving = fused_head(self.head)
        self.stages = stage_names(self.trunk)  # once: every batch reads the same layers

    @classmethod
    def load(cls, folder: Path, trunk_folder: Path | None = None, dtype: torch.dtype = torch.float32) -> Judge:
        """Raises CheckpointError with one readable line on any problem. The trunk is the
        folder beside this one that the card names, unless `trunk_folder` says otherwise;
        its weights must be the ones the head was trained on."""
        card = read_card(folder)
        classes = card.get("verdict", {}).get("classes")
        if tuple(classes or ()) != VERDICT_CLASSES or "threshold" not in card["verdict"] or "trunk" not in card:
            raise CheckpointError(f"{folder} is not a verdict head: its card names no classes {VERDICT_CLASSES}")
        head = load_head(folder / WEIGHTS_FILE, expected_sha256=card["weights"]["sha256"])
        trunk_folder = trunk_folder or folder.parent / Path(str(card["trunk"]["folder"])).name
        trunk = load_folder(trunk_folder)
        if trunk.card["weights"]["sha256"] != card["trunk"]["sha256"]:
            raise CheckpointError(
                f"the verdict head in {folder} was trained on the weights {card['trunk']['sha256'][:12]}..., "
                f"{trunk_folder / CARD_FILE} vouches for {trunk.card['weights']['sha256'][:12]}...: retrain the head"
            )
        return cls(head, card, fused_for_inference(trunk.network).to(dtype), dtype)

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unknown"))

    def reads(self, weights_sha256: str, dtype: torch.dtype) -> bool:
        """Whether a served network's own pass is the one the head reads."""
        return weights_sha256 == self.trunk_sha256 and dtype == self.dtype

    @torch.inference_mode()
    def from_trunk(self, logits: torch.Tensor, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        """The trunk's logits and stage outputs -> (N, 3) probabilities of VERDICT_CLASSES."""
        return self.serving(logits, stages).softmax(1)

    @torch.inference_mode()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised input -> (N, 3), through the head's own trunk."""
        return self.from_trunk(
            *trunk_outputs(self.trunk, x.to(self.dtype).contiguous(memory_format=torch.channels_last), self.stages)
        )

    def decide(self, judged: Sequence[float] | torch.Tensor) -> Verdict:
        """One input's verdict from its three probabilities: a digit unless the network
        finds that unlikely (below the card's threshold), then the likelier of the others."""
        return decide(judged, self.threshold)


def decide(judged: Sequence[float] | torch.Tensor, threshold: float) -> Verdict:
    if float(judged[DIGIT]) >= threshold:
        return "digit"
    return "several_digits" if float(judged[SEVERAL]) > float(judged[NOT_A_DIGIT]) else "not_a_digit"
