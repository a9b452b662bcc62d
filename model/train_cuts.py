"""Train the cut network: is a candidate the reader cut from a line exactly one digit?

    python -m model.train_cuts --data-dir data/mnist --out-dir weights/cuts
    python -m model.train_cuts --smoke --data-dir tests/fixtures/mnist --out-dir /tmp/cuts

The reader (`app/reading/`) over-segments every line and lets networks score each run of
pieces. The digit networks answer "which digit", but a clean piece of one digit (the stem
of a 7, the left arc of a 0) is a perfectly good 1 to them. This network of the
article's shape answers the other question, from three views of the candidate: its
picture as the digit networks see it, and its own ink and its neighbours' ink at the
line's scale. It learns from the reader's own candidates on number strips of MNIST
training digits (`model/strips.py`), each labelled by the digits' own ink: "one digit"
when the run holds at least 85 % of one digit's ink and little else. Deterministic for a
seed and thread count.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from convlens.app.reading import segment
from convlens.app.reading.page import ink_of
from convlens.model.card import CARD_FILE, WEIGHTS_FILE
from convlens.model.checkpoint import save_checkpoint
from convlens.model.data import DatasetError, load_split
from convlens.model.net import ConvNet, NetConfig, count_parameters
from convlens.model.strips import strip

log = logging.getLogger("model.train_cuts")
CUTS = NetConfig(channels=(32, 64), batch_norm=True, in_channels=3, num_classes=2)
CLASSES = ("not_one_digit", "one_digit")
COVER = 0.85  # a run is one digit when it holds this share of one digit's ink ...
STRAY = 0.15  # ... and at most this share of its own ink is anyone else's


def candidates_of(gray: np.ndarray) -> tuple[segment.Layout, list[tuple[list[segment.Piece], np.ndarray]]]:
    """The reader's layout of a picture and, per run, (pieces, 3 x 28 x 28 input)."""
    layout = segment.layout(ink_of(gray))
    out = []
    for line in layout.lines:
        for word in line:
            for i, j in segment.runs(word):
                pieces = word.pieces[i:j]
                pic = segment.picture(layout, pieces)
                if pic is not None:
                    x = np.concatenate([pic[None], segment.context(layout, pieces, word.height)])
                    out.append((pieces, x))
    return layout, out


def _label(lay: segment.Layout, pieces: list[segment.Piece], masks: list[np.ndarray]) -> int:
    x0, y0, x1, y1 = segment.box(pieces)
    mine = np.zeros((y1 - y0, x1 - x0), bool)
    for p in pieces:
        mine |= p.mask(lay.labels, y0, x0, y1 - y0, x1 - x0)
    size = int(mine.sum())
    if not size:
        return 0
    strokes = lay.labels > 0
    best = 0
    for m in masks:
        own = m & strokes
        total = int(own.sum())
        inter = int((own[y0:y1, x0:x1] & mine).sum())
        if total and inter >= COVER * total and size - inter <= STRAY * size:
            best = 1
    return best


def build(images: np.ndarray, labels: np.ndarray, n_strips: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(n_strips):
        s = strip(images, labels, rng)
        layout, cands = candidates_of(s.gray)
        for pieces, x in cands:
            xs.append(np.round(x * 255).astype(np.uint8))
            ys.append(_label(layout, pieces, s.masks))
    if not xs:
        return np.zeros((0, 3, 28, 28), np.uint8), np.zeros(0, np.int64)
    return np.stack(xs), np.array(ys, np.int64)


def _job(args: tuple[np.ndarray, np.ndarray, int, int]) -> tuple[np.ndarray, np.ndarray]:
    torch.set_num_threads(1)
    return build(*args)


def build_set(
    images: np.ndarray, labels: np.ndarray, n_strips: int, seed: int, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    chunk = 250
    jobs = [(images, labels, min(chunk, n_strips - s), seed * 7919 + s) for s in range(0, n_strips, chunk)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_job, jobs))
    else:
        parts = [_job(j) for j in jobs]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def train(
    x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, lr: float, seed: int
) -> tuple[ConvNet, list[dict[str, float]]]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = ConvNet(CUTS)
    images, targets = torch.from_numpy(x), torch.from_numpy(y)
    weight = len(targets) / (2 * torch.bincount(targets, minlength=2).clamp(min=1).float())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * -(-len(images) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        start, loss_sum = time.perf_counter(), 0.0
        order = torch.randperm(len(images), generator=gen)
        for i in range(0, len(images), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(images[idx].float() / 255), targets[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        row = {
            "epoch": epoch,
            "train_loss": round(loss_sum / len(images), 5),
            "seconds": round(time.perf_counter() - start, 1),
        }
        history.append(row)
        log.info("epoch %d: %s", epoch, row)
    model.eval()
    return model, history


@torch.no_grad()
def accuracy(model: ConvNet, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    model.eval()
    got = torch.cat([model(torch.from_numpy(x[i : i + 4096]).float() / 255).argmax(1) for i in range(0, len(x), 4096)])
    t = torch.from_numpy(y)
    return {
        "accuracy": round(float((got == t).float().mean()), 5),
        "one_digit_recall": round(float((got[t == 1] == 1).float().mean()), 5) if (t == 1).any() else 0.0,
        "not_one_digit_recall": round(float((got[t == 0] == 0).float().mean()), 5) if (t == 0).any() else 0.0,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/mnist", help="MNIST IDX files (default: %(default)s)")
    p.add_argument("--out-dir", default="weights/cuts", help="default: %(default)s")
    p.add_argument("--strips", type=int, default=6000, help="training strips (default: %(default)s)")
    p.add_argument("--val-strips", type=int, default=1000, help="validation strips (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=5, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=256, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument(
        "--val", type=int, default=10000, help="MNIST training digits kept for validation (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    p.add_argument("--workers", type=int, default=2, help="processes cutting strips (default: %(default)s)")
    p.add_argument("--no-verify", action="store_true", help="accept data whose checksums are not MNIST's (subsets)")
    p.add_argument("--smoke", action="store_true", help="tiny run for tests: 1 epoch, few strips, no checksums")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs, args.strips, args.val_strips, args.val, args.no_verify = 1, 40, 10, 200, True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        split = load_split(args.data_dir, "train", verify=not args.no_verify)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)  # noqa: T201
        return 2
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    n = len(split.images)
    n_val = min(args.val, n // 5)
    fit = split.images[: n - n_val], split.labels[: n - n_val]
    val = split.images[n - n_val :], split.labels[n - n_val :]
    x, y = build_set(*fit, args.strips, args.seed, args.workers)
    vx, vy = build_set(*val, args.val_strips, args.seed + 1, args.workers)
    log.info("%d candidates (%.1f %% one digit); validation %d", len(y), 100 * y.mean(), len(vy))
    model, history = train(x, y, args.epochs, args.batch_size, args.lr, args.seed)
    out = Path(args.out_dir)
    sha = save_checkpoint(model, out / WEIGHTS_FILE)
    card = {
        "name": "cuts",
        "version": f"cuts-{sha[:12]}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "description": "Judges whether a candidate the reader cut from a line is exactly one digit.",
        "architecture": model.config.to_dict(),
        "parameters": count_parameters(model),
        "cuts": {"classes": list(CLASSES), "inputs": ["picture", "own_ink_at_line_scale", "other_ink_at_line_scale"]},
        "training": {
            "command": "python -m model.train_cuts " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "seed": args.seed,
            "epochs": args.epochs,
            "seconds": round(time.perf_counter() - started, 1),
            "history": history,
            "candidates": len(y),
            "one_digit_share": round(float(y.mean()), 4),
        },
        "validation": {"candidates": len(vy), **accuracy(model, vx, vy)},
        "weights": {"file": WEIGHTS_FILE, "sha256": sha},
    }
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    log.info("cut network: validation %s", card["validation"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
