"""Measure any weights on the MNIST test set.

python -m model.evaluate --weights weights/shipped/model.safetensors --data-dir data/mnist [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from convlens.model.checkpoint import CheckpointError, load_checkpoint
from convlens.model.data import DatasetError, load_split
from convlens.model.net import MNIST_MEAN, MNIST_STD, NUM_CLASSES


@dataclass
class Evaluation:
    accuracy: float  # fraction in [0, 1]
    loss: float
    n: int
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]  # [true][predicted]


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float images (N, 1, 28, 28) -> the network's input scale."""
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    return (images - MNIST_MEAN) / MNIST_STD


def to_input(images: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) uint8 -> normalised (N, 1, 28, 28) float tensor."""
    return normalize(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1))


@torch.no_grad()
def all_logits(model: torch.nn.Module, images: np.ndarray, batch_size: int = 1000) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(to_input(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> Evaluation:
    was_training = model.training
    model.eval()
    targets = torch.from_numpy(labels.astype(np.int64))
    preds, loss_sum = [], 0.0
    for i in range(0, len(images), batch_size):
        logits = model(to_input(images[i : i + batch_size]))
        y = targets[i : i + batch_size]
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1))
    model.train(was_training)
    pred = torch.cat(preds).numpy()
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels.astype(np.int64), pred), 1)
    support = confusion.sum(1)
    per_class = np.divide(np.diag(confusion), support, out=np.zeros(NUM_CLASSES), where=support > 0)
    n = len(labels)
    return Evaluation(
        accuracy=float(np.trace(confusion) / n) if n else 0.0,
        loss=loss_sum / n if n else 0.0,
        n=n,
        per_class_accuracy=[round(float(a), 6) for a in per_class],
        confusion_matrix=confusion.tolist(),
    )


def format_metrics(m: Evaluation) -> str:
    lines = [f"accuracy {m.accuracy:.4%} on {m.n} images (loss {m.loss:.4f})", "per class:"]
    lines += [f"  {d}: {a:.4%}" for d, a in enumerate(m.per_class_accuracy)]
    lines.append("confusion matrix (rows true, columns predicted):")
    lines += ["  " + " ".join(f"{v:5d}" for v in row) for row in m.confusion_matrix]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="weights/shipped/model.safetensors", help="default: %(default)s")
    p.add_argument("--data-dir", default="data/mnist", help="MNIST directory (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--no-verify", action="store_true", help="accept subsets whose checksums are not MNIST's")
    args = p.parse_args(argv)
    try:
        model = load_checkpoint(args.weights)
        test = load_split(args.data_dir, "test", verify=not args.no_verify)
    except (CheckpointError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)  # noqa: T201
        return 2
    m = evaluate(model, test.images, test.labels)
    print(json.dumps(asdict(m)) if args.json else format_metrics(m))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
