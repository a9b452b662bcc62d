"""Train a convlens network on MNIST and write weights + model card into an output dir.

    python -m model.train --data-dir data/mnist --out-dir weights            # shipped recipe
    python -m model.train --arch article --epochs 3                           # the article's net
    python -m model.train --smoke --data-dir tests/fixtures/mnist --out-dir /tmp/w

Part of every batch (--upload-share) comes from training digits rendered as uploads
(photos, pens, scans, typed digits; `model/uploads.py`) and preprocessed by the service's
own function (`model/upload_pool.py`). After training, a temperature is fitted on the
validation split and recorded; it is served only if it generalises (`model/calibrate.py`).

Deterministic on CPU for a given seed and thread count: every random draw (init, split,
shuffling, augmentation, dropout, rendering) comes from seeded generators.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from convlens.model.augment import AugmentConfig, augment
from convlens.model.calibrate import calibrate
from convlens.model.checkpoint import save_checkpoint
from convlens.model.data import DatasetError, Split, load_split
from convlens.model.evaluate import Evaluation, evaluate, normalize
from convlens.model.net import DESCRIPTIONS, MNIST_MEAN, MNIST_STD, PRESETS, ConvNet, NetConfig, count_parameters
from convlens.model.uploads import TRAIN, fonts

log = logging.getLogger("model.train")

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"


def train_one_epoch(
    model: ConvNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batch_size: int,
    gen: torch.Generator,
    aug: AugmentConfig | None,
    desc: str,
    quiet: bool = False,
    uploads: tuple[torch.Tensor, torch.Tensor] | None = None,
    upload_share: float = 0.0,
    ema: AveragedModel | None = None,
) -> dict[str, float]:
    """One pass over `images` (uint8, (N, 1, 28, 28)) in a seeded random order; with
    `uploads`, that share of every batch is replaced by random rendered uploads; `ema`
    follows the weights after every step."""
    model.train()
    order = torch.randperm(len(images), generator=gen)
    seen, loss_sum, correct, start = 0, 0.0, 0, time.perf_counter()
    bar = tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", disable=quiet, leave=True)
    for i in bar:
        idx = order[i : i + batch_size]
        x, y = images[idx], labels[idx]
        k = round(upload_share * len(idx)) if uploads is not None else 0
        if uploads is not None and k:
            pick = torch.randint(len(uploads[0]), (k,), generator=gen)
            x = torch.cat([x[k:], uploads[0][pick]])
            y = torch.cat([y[k:], uploads[1][pick]])
        x = x.float() / 255.0
        if aug is not None:
            x = augment(x, aug, gen)
        x = normalize(x).contiguous(memory_format=torch.channels_last)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        seen += len(idx)
        loss_sum += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        rate = seen / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", img_s=f"{rate:.0f}")
    return {
        "train_loss": loss_sum / seen,
        "train_accuracy": correct / seen,
        "seconds": time.perf_counter() - start,
    }


def render_uploads(
    args: argparse.Namespace, images: np.ndarray, labels: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """Training and validation digits rendered as uploads and preprocessed as the service
    does (`model.upload_pool`); the two pools come from disjoint digits."""
    from convlens.model.upload_pool import build_pool
    from convlens.model.uploads import TRAINING_FAMILIES

    info: dict[str, Any] = {
        "share_of_batch": args.upload_share,
        "families": sorted(TRAINING_FAMILIES),
        "style": asdict(TRAIN),
    }
    if not args.upload_pool or not args.upload_share:
        return None, (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)), {**info, "share_of_batch": 0.0}
    pick = np.random.default_rng(args.seed + 2).permutation(train_idx)[: args.upload_pool]
    x, y, refused = build_pool(images[pick], labels[pick], args.seed + 3, args.workers)
    vx, vy, vrefused = validation_uploads(images, labels, val_idx, args.upload_val, args.seed)
    info.update(n_train=len(x), n_val=len(vx), val_digits=args.upload_val, refused_train=refused, refused_val=vrefused)
    pool = (torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y.astype(np.int64)))
    return pool, (vx, vy), info


def split_indices(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) indices of the training set, seeded."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(perm[:val_size]), np.sort(perm[val_size:])


def validation_inputs(
    images: np.ndarray, labels: np.ndarray, seed: int, val_size: int, upload_val: int
) -> tuple[np.ndarray, np.ndarray]:
    """The validation digits and the first `upload_val` of them rendered as uploads, as
    training made them: what the temperature is fitted on (also by `model.calibrate`)."""
    val_idx, _ = split_indices(len(images), val_size, seed)
    ux, uy, _ = validation_uploads(images, labels, val_idx, upload_val, seed)
    return np.concatenate([images[val_idx], ux]), np.concatenate([labels[val_idx], uy])


def validation_uploads(
    images: np.ndarray, labels: np.ndarray, val_idx: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The first `n` validation digits rendered as uploads (their own seed)."""
    from convlens.model.upload_pool import build_pool

    return build_pool(images[val_idx[:n]], labels[val_idx[:n]], seed + 4)


def build_config(args: argparse.Namespace) -> NetConfig:
    cfg = PRESETS[args.arch]
    overrides: dict[str, Any] = {}
    if args.channels:
        overrides["channels"] = tuple(int(c) for c in args.channels.split(","))
    for name in ("convs_per_stage", "padding", "dropout", "hidden"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.batch_norm is not None:
        overrides["batch_norm"] = args.batch_norm
    return replace(cfg, **overrides)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir", default="data/mnist", help="MNIST IDX files; downloaded there if missing (default: %(default)s)"
    )
    p.add_argument("--out-dir", help="where weights and model card go (default: weights/ARCH)")
    p.add_argument(
        "--arch", choices=sorted(PRESETS), default="shipped", help="architecture preset (default: %(default)s)"
    )
    p.add_argument("--channels", help="override filters per stage, e.g. 16,32")
    p.add_argument("--convs-per-stage", type=int, help="override convolutions per stage")
    p.add_argument("--padding", type=int, choices=(0, 1), help="override conv padding")
    p.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None, help="override batch norm")
    p.add_argument("--dropout", type=float, help="override dropout before the dense layer")
    p.add_argument("--hidden", type=int, help="override hidden dense width (0: none)")
    p.add_argument("--epochs", type=int, default=15, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=128, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle learning rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default: %(default)s)")
    p.add_argument(
        "--val-size", type=int, default=5000, help="validation images carved from train (default: %(default)s)"
    )
    p.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="keep an exponential moving average of the weights with this decay per step and "
        "validate and save it instead (e.g. 0.999; default: %(default)s, off)",
    )
    p.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores, %(default)s)"
    )
    p.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    p.add_argument(
        "--upload-share",
        type=float,
        default=0.3,
        help="share of each batch drawn from rendered uploads (default: %(default)s)",
    )
    p.add_argument(
        "--upload-pool",
        type=int,
        default=30000,
        help="training digits rendered as uploads; 0: none (default: %(default)s)",
    )
    p.add_argument(
        "--upload-val", type=int, default=2000, help="validation digits rendered as uploads (default: %(default)s)"
    )
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes rendering uploads (default: %(default)s)"
    )
    p.add_argument("--no-verify", action="store_true", help="accept data whose checksums are not MNIST's (subsets)")
    p.add_argument("--limit-train", type=int, default=0, help="use only the first N training images (default: all)")
    p.add_argument(
        "--smoke", action="store_true", help="tiny quick run for tests: article net, 2 epochs, no plots, no checksums"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if not 0.0 <= args.ema <= 1.0:
        p.error(f"--ema must be between 0 and 1, got {args.ema}")
    if args.smoke:
        args.arch, args.epochs, args.no_verify, args.quiet = "article", min(args.epochs, 2), True, True
        args.val_size = min(args.val_size, 200)
        args.upload_pool, args.upload_val, args.workers = min(args.upload_pool, 300), min(args.upload_val, 100), 1
    args.out_dir = args.out_dir or f"weights/{args.arch}"
    return args


class TrainError(Exception):
    """A problem with the inputs of a run, said in one line."""


@dataclass
class Data:
    train: Split
    test: Split
    images: np.ndarray  # the training images used (after --limit-train)
    labels: np.ndarray
    val_idx: np.ndarray
    train_idx: np.ndarray


def load_data(args: argparse.Namespace) -> Data:
    try:
        train = load_split(args.data_dir, "train", verify=not args.no_verify)
        test = load_split(args.data_dir, "test", verify=not args.no_verify)
    except DatasetError as e:
        raise TrainError(str(e)) from e
    if args.upload_pool and args.upload_share and not fonts(TRAIN.fonts, TRAIN.font_exclude):
        raise TrainError(f"no {TRAIN.fonts} TrueType fonts for the typed uploads; install fonts-dejavu-core")
    images, labels = train.images, train.labels
    if args.limit_train:
        images, labels = images[: args.limit_train], labels[: args.limit_train]
    if not 0 < args.val_size < len(images):
        raise TrainError(f"--val-size must be between 1 and {len(images) - 1}")
    val_idx, train_idx = split_indices(len(images), args.val_size, args.seed)
    return Data(train, test, images, labels, val_idx, train_idx)


@dataclass
class Fit:
    history: list[dict[str, Any]]
    best_epoch: int
    seconds: float


def fit(
    model: ConvNet,
    args: argparse.Namespace,
    data: Data,
    aug: AugmentConfig | None,
    uploads: tuple[torch.Tensor, torch.Tensor] | None,
    val_uploads: tuple[np.ndarray, np.ndarray],
) -> Fit:
    """Every epoch, then the weights of the epoch best on MNIST and uploads validation."""
    x_train = torch.from_numpy(data.images[data.train_idx]).unsqueeze(1)
    y_train = torch.from_numpy(data.labels[data.train_idx].astype(np.int64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.2)
    gen = torch.Generator().manual_seed(args.seed + 1)
    # the average, batch-norm statistics included, is what gets validated and saved
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema), use_buffers=True) if args.ema else None
    judged = ema.module if ema is not None else model
    val_x, val_y = data.images[data.val_idx], data.labels[data.val_idx]
    history: list[dict[str, Any]] = []
    best: tuple[float, float, int] | None = None  # (mean accuracy, -mean loss, epoch)
    best_state: dict[str, torch.Tensor] = {}
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        stats = train_one_epoch(
            model,
            x_train,
            y_train,
            optimizer,
            scheduler,
            args.batch_size,
            gen,
            aug,
            desc=f"epoch {epoch}/{args.epochs}",
            quiet=args.quiet,
            uploads=uploads,
            upload_share=args.upload_share,
            ema=ema,
        )
        val = evaluate(judged, val_x, val_y)
        val_up = evaluate(judged, *val_uploads) if len(val_uploads[0]) else val
        history.append(
            {
                "epoch": epoch,
                **{k: round(v, 6) for k, v in stats.items()},
                "val_loss": round(val.loss, 6),
                "val_accuracy": round(val.accuracy, 6),
                "val_uploads_accuracy": round(val_up.accuracy, 6),
                "lr_end": scheduler.get_last_lr()[0],
            }
        )
        log.info(
            "epoch %d: train loss %.4f, val loss %.4f, val accuracy %.4f%%, %.0f s",
            epoch,
            stats["train_loss"],
            val.loss,
            100 * val.accuracy,
            stats["seconds"],
        )
        # the best epoch is the one best on both: MNIST digits and rendered uploads
        key = ((val.accuracy + val_up.accuracy) / 2, -(val.loss + val_up.loss) / 2, epoch)
        if best is None or key[:2] > best[:2]:
            best, best_state = key, copy.deepcopy(judged.state_dict())
    assert best is not None
    model.load_state_dict(best_state)
    return Fit(history, best[2], time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    config = build_config(args)
    aug = None if args.no_augment else AugmentConfig()
    try:
        data = load_data(args)
    except TrainError as e:
        print(f"error: {e}", file=sys.stderr)  # noqa: T201
        return 2

    pool_started = time.perf_counter()
    uploads, val_uploads, upload_info = render_uploads(args, data.images, data.labels, data.train_idx, data.val_idx)
    upload_info["seconds"] = round(time.perf_counter() - pool_started, 1)

    model = ConvNet(config).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    n_params = count_parameters(model)
    log.info("architecture %s: %d parameters, sizes %s", config, n_params, config.spatial_sizes())
    run = fit(model, args, data, aug, uploads, val_uploads)
    model = model.to(memory_format=torch.contiguous_format)
    test_metrics = evaluate(model, data.test.images, data.test.labels)
    val_x, val_y = data.images[data.val_idx], data.labels[data.val_idx]
    calibration = calibrate(
        model,
        np.concatenate([val_x, val_uploads[0]]),
        np.concatenate([val_y, val_uploads[1]]),
        data.test.images,
        data.test.labels,
    )
    log.info("calibration: %s", calibration)
    log.info(
        "best epoch %d; test accuracy %.4f%% on %d images", run.best_epoch, 100 * test_metrics.accuracy, test_metrics.n
    )
    write_outputs(args, argv, Trained(model, aug, data, run, test_metrics, upload_info, calibration))
    return 0


@dataclass
class Trained:
    """What a run produced and measured: everything the card and the plots are made of."""

    model: ConvNet
    aug: AugmentConfig | None
    data: Data
    run: Fit
    test_metrics: Evaluation
    upload_info: dict[str, Any]
    calibration: dict[str, Any]


def write_outputs(args: argparse.Namespace, argv: list[str] | None, trained: Trained) -> None:
    """Weights, model card and (unless --smoke) the two plots, into --out-dir."""
    out = Path(args.out_dir)
    run, test_metrics = trained.run, trained.test_metrics
    sha = save_checkpoint(trained.model, out / WEIGHTS_FILE)
    card = build_card(args, argv, trained, sha)
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    if not args.smoke:
        from convlens.model.plots import plot_confusion, plot_curves

        plot_curves(run.history, out / "training_curves.png")
        plot_confusion(
            test_metrics.confusion_matrix,
            out / "confusion_matrix.png",
            f"MNIST test set: {100 * test_metrics.accuracy:.2f}% of {test_metrics.n}",
        )
    log.info("wrote %s (sha256 %s) and %s in %.0f s", out / WEIGHTS_FILE, sha[:12], out / CARD_FILE, run.seconds)


def build_card(args: argparse.Namespace, argv: list[str] | None, trained: Trained, sha: str) -> dict[str, Any]:
    import safetensors

    model, aug, data, run = trained.model, trained.aug, trained.data, trained.run
    test_metrics, upload_info, calibration = trained.test_metrics, trained.upload_info, trained.calibration
    config, n_params = model.config, count_parameters(model)
    train, test, history, best_epoch = data.train, data.test, run.history, run.best_epoch
    train_seconds, n_train, n_val = run.seconds, len(data.train_idx), len(data.val_idx)

    argv = sys.argv[1:] if argv is None else argv
    return {
        "name": "convlens",
        "version": f"{args.arch}-{sha[:12]}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "description": DESCRIPTIONS.get(args.arch, "MNIST digit classifier"),
        "architecture": {
            "preset": args.arch,
            "config": config.to_dict(),
            "parameters": n_params,
            "layers": [asdict(r) for r in model.layer_table()],
        },
        "input": {
            "size": [1, 28, 28],
            "ink": "white on black",
            "normalization": {"mean": MNIST_MEAN, "std": MNIST_STD},
        },
        "training": {
            "command": "python -m model.train " + shlex.join(argv),
            "seed": args.seed,
            "epochs": args.epochs,
            "best_epoch": best_epoch,
            "batch_size": args.batch_size,
            "optimizer": {"name": "AdamW", "lr": args.lr, "weight_decay": args.weight_decay},
            "schedule": "one-cycle (cosine), 20% warm-up",
            "ema_decay": args.ema or None,
            "augmentation": aug.to_dict() if aug else None,
            "uploads": upload_info,
            "limit_train": args.limit_train or None,
            "threads": args.threads,
            "seconds": round(train_seconds, 1),
            "history": history,
        },
        "data": {
            "n_train": n_train,
            "n_val": n_val,
            "n_test": test_metrics.n,
            "payload_md5": {**train.md5, **test.md5},
            "checksums_verified": not args.no_verify,
        },
        "metrics": {
            "test_accuracy": test_metrics.accuracy,
            "test_loss": round(test_metrics.loss, 6),
            "per_class_accuracy": test_metrics.per_class_accuracy,
            "confusion_matrix": test_metrics.confusion_matrix,
        },
        "calibration": calibration,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
        "weights": {"file": WEIGHTS_FILE, "sha256": sha, "format": "safetensors"},
    }


if __name__ == "__main__":
    sys.exit(main())
