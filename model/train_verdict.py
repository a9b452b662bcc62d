"""Train the verdict head: is the 28 x 28 input one digit, not a digit, or several?

    python -m model.train_verdict --data-dir data/mnist --out-dir weights/verdict
    python -m model.train_verdict --smoke --data-dir tests/fixtures/mnist --out-dir /tmp/v

A small head on the frozen shipped network's activations (`model/verdict_head.py`), three
outputs, trained by outlier exposure (Hendrycks et al., 2019). The trunk's features of
every input are computed once, for the input as it is and for one augmented copy. The card
records the trunk's sha256: a retrained shipped network needs a retrained head.
Digits: MNIST training digits as they are, and rendered as uploads by the families the
digit networks train on and by `nondigits.as_upload`; not digits: the training families of
`model/nondigits.py` (DejaVu and Liberation Sans letters and words, pen-drawn letters,
scribbles, hatching, random figures, noise, formula textures, some of scikit-image's
photographs); several digits: two to four MNIST training digits side by side. Everything an upload goes through passes
the service's own preprocessing, so the network judges what it will be shown.

The served rule: "digit" unless the digit probability falls below a threshold chosen on
the validation digits (MNIST digits 50,000-59,999 and their uploads) to flag at most
`--max-flagged` of them; then whichever of the other two is likelier. Deterministic for
a seed and thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from convlens.model.augment import AugmentConfig, augment
from convlens.model.card import CARD_FILE, WEIGHTS_FILE, load_folder
from convlens.model.checkpoint import CheckpointError, save_checkpoint
from convlens.model.data import DatasetError, load_split
from convlens.model.evaluate import normalize
from convlens.model.net import VERDICT_CLASSES, ConvNet, count_parameters
from convlens.model.nondigits import TRAIN_NOT_A_DIGIT, TRAIN_SEVERAL, Family, as_upload
from convlens.model.verdict_head import DESIGNS, HeadConfig, VerdictHead, trunk_outputs

log = logging.getLogger("model.train_verdict")
DIGIT, NOT_A_DIGIT, SEVERAL = range(3)
MAX_PIXELS = 50_000_000


def _preprocessed(data: bytes) -> np.ndarray | None:
    from convlens.app.core.errors import DomainError
    from convlens.app.imaging.preprocess import preprocess

    try:
        return np.round(preprocess(data, MAX_PIXELS).pixels * 255).astype(np.uint8)
    except DomainError:
        return None  # blank after preprocessing: the service answers blank_image, not a verdict


def render_family(name: str, n: int, seed: int, digits: np.ndarray) -> np.ndarray:
    """n pictures of a non-digit family as uploads, preprocessed: (n', 28, 28) uint8.
    A third are sent through the digit networks' own upload families too (from their
    28 x 28 input), so no renderer is a sign of "not a digit"."""
    from convlens.model.uploads import TRAIN, TRAINING_FAMILIES

    family: Family = {**TRAIN_NOT_A_DIGIT, **TRAIN_SEVERAL}[name]
    rng = np.random.default_rng(seed)
    kinds = [k for k in TRAINING_FAMILIES if k != "typed"]
    out = []
    for i in range(n):
        x = _preprocessed(as_upload(family(rng, digits), rng)[0])
        if x is not None and i % 3 == 0:
            # the digit families assume a digit's ink: a speck's crop can come out empty
            with contextlib.suppress(ValueError, IndexError):
                x = _preprocessed(TRAINING_FAMILIES[kinds[int(rng.integers(len(kinds)))]](x, 0, rng, TRAIN)[0])
        if x is not None:
            out.append(x)
    return np.stack(out) if out else np.zeros((0, 28, 28), np.uint8)


def render_digits(images: np.ndarray, seed: int) -> np.ndarray:
    """Digits through `as_upload` (the renderer the other classes use) and preprocessing."""
    rng = np.random.default_rng(seed)
    out = []
    for d in images:
        x = _preprocessed(as_upload(1.0 - d.astype(np.float32) / 255, rng)[0])
        if x is not None:
            out.append(x)
    return np.stack(out) if out else np.zeros((0, 28, 28), np.uint8)


def _digit_uploads(images: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    from convlens.model.upload_pool import render

    return render(images, labels, seed)[0]


def build_set(
    digits: np.ndarray, labels: np.ndarray, n_uploads: int, n_per_family: int, seed: int, workers: int
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Inputs and verdict labels: every digit as it is, `n_uploads` of them rendered
    (half by the digit families, half by `as_upload`), `n_per_family` of each other family."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(digits))[:n_uploads]
    half = len(pick) // 2
    chunk = 500
    jobs: list[tuple[str, Any, tuple[Any, ...]]] = []
    for s in range(0, half, chunk):
        part = pick[s : min(s + chunk, half)]
        jobs.append(("digit_uploads", _digit_uploads, (digits[part], labels[part], seed * 7919 + s)))
    for s in range(half, len(pick), chunk):
        jobs.append(("digit_as_upload", render_digits, (digits[pick[s : s + chunk]], seed * 7907 + s)))
    for k, name in enumerate([*TRAIN_NOT_A_DIGIT, *TRAIN_SEVERAL]):
        for s in range(0, n_per_family, chunk):
            jobs.append((name, render_family, (name, min(chunk, n_per_family - s), seed * 7901 + k * 1000 + s, digits)))
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
            parts = list(pool.map(_run_job, jobs))
    else:
        parts = [_run_job(j) for j in jobs]
    xs, ys, counts = [digits], [np.full(len(digits), DIGIT)], {"mnist_digits": len(digits)}
    for (name, _, _), x in zip(jobs, parts, strict=True):
        verdict = DIGIT if name.startswith("digit") else SEVERAL if name in TRAIN_SEVERAL else NOT_A_DIGIT
        xs.append(x)
        ys.append(np.full(len(x), verdict))
        counts[name] = counts.get(name, 0) + len(x)
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64), counts


Set = tuple[np.ndarray, np.ndarray, dict[str, int]]  # inputs, verdict labels, counts by family


def _rendering(args: argparse.Namespace) -> dict[str, int]:
    """What a rendered set depends on besides the data: a cache from other options is refused."""
    return {"seed": args.seed, "uploads": args.uploads, "per_family": args.per_family, "val": args.val}


def write_sets(path: Path, fit: Set, val: Set, rendering: dict[str, int]) -> None:
    """The rendered sets, so that trying another head does not render them again (the
    rendering is most of a run)."""
    meta = json.dumps({"counts": [fit[2], val[2]], "rendering": rendering})
    np.savez(path, x=fit[0], y=fit[1], vx=val[0], vy=val[1], meta=meta)


def read_sets(path: Path, rendering: dict[str, int]) -> tuple[Set, Set]:
    """Raises DatasetError when the cache is not one, or was rendered with other options."""
    try:
        z = np.load(path)
        meta = json.loads(str(z["meta"]))
        fit: Set = (z["x"], z["y"], meta["counts"][0])
        val: Set = (z["vx"], z["vy"], meta["counts"][1])
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"{path} is not a cache of rendered verdict sets: {e}") from e
    if meta["rendering"] != rendering:
        raise DatasetError(f"{path} was rendered with {meta['rendering']}, not {rendering}: delete it or match them")
    return fit, val


def sets(images: np.ndarray, labels: np.ndarray, args: argparse.Namespace) -> tuple[Set, Set]:
    """The training and validation sets: the last `--val` training digits validate. Read
    from `--cache` when it exists, else rendered (and written there)."""
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.is_file():
        return read_sets(cache, _rendering(args))
    n = len(images)
    n_val = min(args.val, n // 5)
    fit = build_set(images[: n - n_val], labels[: n - n_val], args.uploads, args.per_family, args.seed, args.workers)
    val = build_set(
        images[n - n_val :],
        labels[n - n_val :],
        max(2, args.uploads * n_val // max(n - n_val, 1)),
        max(2, args.per_family // 5),
        args.seed + 1,
        args.workers,
    )
    if cache is not None:
        write_sets(cache, fit, val, _rendering(args))
    return fit, val


def _run_job(job: tuple[str, Any, tuple[Any, ...]]) -> np.ndarray:
    return job[1](*job[2])


def _one_thread() -> None:
    torch.set_num_threads(1)  # the rendering processes share the cores among themselves


Features = tuple[torch.Tensor, list[torch.Tensor]]  # the trunk's logits and stage outputs


@torch.no_grad()
def trunk_features(trunk: ConvNet, images: np.ndarray, batch: int = 2000) -> Features:
    """The frozen digit network's logits and stage outputs for uint8 inputs, kept in
    float16 (half the memory of a training set's maps; the head reads them in float32)."""
    trunk.eval()
    logits, stages = [], []
    for i in range(0, len(images), batch):
        lg, st = trunk_outputs(trunk, normalize(torch.from_numpy(images[i : i + batch]).unsqueeze(1)))
        logits.append(lg.half())
        stages.append([t.half() for t in st])
    if not logits:
        return torch.zeros(0, trunk.config.num_classes), []
    return torch.cat(logits), [torch.cat(parts) for parts in zip(*stages, strict=True)]


def augmented(images: np.ndarray, seed: int) -> np.ndarray:
    """One augmented copy of the inputs (the digit networks' small shifts, turns and
    stroke changes): the frozen trunk's features are computed once, not every epoch."""
    gen = torch.Generator().manual_seed(seed)
    out = [
        (augment(torch.from_numpy(images[i : i + 2000]).unsqueeze(1).float() / 255, AugmentConfig(), gen)[:, 0] * 255)
        .round()
        .to(torch.uint8)
        .numpy()
        for i in range(0, len(images), 2000)
    ]
    return np.concatenate(out) if out else images


def _rows(f: Features, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    return f[0][idx].float(), [s[idx].float() for s in f[1]]


@torch.no_grad()
def verdict_probabilities(head: VerdictHead, f: Features, batch: int = 2000) -> torch.Tensor:
    head.eval()
    n = len(f[0])
    parts = [head(*_rows(f, torch.arange(i, min(i + batch, n)))).softmax(1) for i in range(0, n, batch)]
    return torch.cat(parts) if parts else torch.zeros(0, 3)


def choose_threshold(p_digit: torch.Tensor, max_flagged: float) -> float:
    """The digit probability below which an input is flagged: the `max_flagged` quantile
    of the validation digits' own digit probabilities."""
    return float(torch.quantile(p_digit.double(), max_flagged)) if len(p_digit) else 0.5


def verdicts(probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """The served rule (the service's `app/core/verdict.py` applies the same one)."""
    other = torch.where(probs[:, SEVERAL] > probs[:, NOT_A_DIGIT], SEVERAL, NOT_A_DIGIT)
    return torch.where(probs[:, DIGIT] >= threshold, DIGIT, other)


def train(
    f: Features,
    y: np.ndarray,
    config: HeadConfig,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    quiet: bool,
) -> tuple[VerdictHead, list[dict[str, float]]]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    head = VerdictHead(config)
    labels = torch.from_numpy(y)
    # each class weighs as much as the others in the loss, whatever its count
    weight = len(labels) / (3 * torch.bincount(labels, minlength=3).clamp(min=1).float())
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * -(-len(labels) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    history = []
    for epoch in range(1, epochs + 1):
        head.train()
        start, loss_sum = time.perf_counter(), 0.0
        order = torch.randperm(len(labels), generator=gen)
        for i in range(0, len(labels), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(head(*_rows(f, idx)), labels[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        row = {
            "epoch": epoch,
            "train_loss": round(loss_sum / len(labels), 5),
            "seconds": round(time.perf_counter() - start, 1),
        }
        history.append(row)
        if not quiet:
            log.info("epoch %d: %s", epoch, row)
    head.eval()
    return head, history


def rates(probs: torch.Tensor, y: np.ndarray, threshold: float) -> dict[str, float]:
    got = verdicts(probs, threshold)
    y_t = torch.from_numpy(y)
    out = {}
    for k, name in enumerate(VERDICT_CLASSES):
        mine = y_t == k
        if mine.any():
            out[f"{name}_recall"] = round(float((got[mine] == k).float().mean()), 5)
            if k:
                out[f"{name}_flagged"] = round(float((got[mine] != DIGIT).float().mean()), 5)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/mnist", help="MNIST IDX files (default: %(default)s)")
    p.add_argument("--out-dir", default="weights/verdict", help="default: %(default)s")
    p.add_argument(
        "--trunk", default="weights/shipped", help="the digit network whose activations it reads (default: %(default)s)"
    )
    p.add_argument("--design", choices=DESIGNS, default="conv", help="the head's design (default: %(default)s)")
    p.add_argument("--width", type=int, default=32, help="the head's channels or hidden units (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=12, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=256, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument(
        "--uploads", type=int, default=16000, help="training digits rendered as uploads (default: %(default)s)"
    )
    p.add_argument("--per-family", type=int, default=2500, help="inputs of each other family (default: %(default)s)")
    p.add_argument(
        "--val", type=int, default=10000, help="MNIST training digits kept for validation (default: %(default)s)"
    )
    p.add_argument(
        "--max-flagged", type=float, default=0.0003, help="share of validation digits flagged (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="the sets' and augmentation's seed (default: %(default)s)")
    p.add_argument("--head-seed", type=int, help="the head's initialisation and order (default: --seed)")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores, %(default)s)"
    )
    p.add_argument(
        "--cache", help="npz of the rendered sets: read when it exists, else written (same data, seed and sizes only)"
    )
    p.add_argument("--workers", type=int, default=2, help="processes rendering uploads (default: %(default)s)")
    p.add_argument("--no-verify", action="store_true", help="accept data whose checksums are not MNIST's (subsets)")
    p.add_argument("--smoke", action="store_true", help="tiny run for tests: 1 epoch, few inputs, no checksums")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs, args.uploads, args.per_family, args.val, args.no_verify = 1, 100, 40, 200, True
    if not 0 <= args.max_flagged < 1:
        p.error("--max-flagged must be in [0, 1)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)  # the same seed on another thread count trains another head
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        train_split = load_split(args.data_dir, "train", verify=not args.no_verify)
        trunk = load_folder(Path(args.trunk))  # before the rendering: a bad --trunk fails at once
    except (DatasetError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)  # noqa: T201
        return 2
    started = time.perf_counter()
    try:
        (x, y, counts), (vx, vy, vcounts) = sets(train_split.images, train_split.labels, args)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)  # noqa: T201
        return 2
    log.info("training set %s; validation set %s", counts, vcounts)
    # the inputs as they are and one augmented copy, each through the frozen trunk once
    f_plain, f_aug = trunk_features(trunk.network, x), trunk_features(trunk.network, augmented(x, args.seed))
    f = (torch.cat([f_plain[0], f_aug[0]]), [torch.cat(p) for p in zip(f_plain[1], f_aug[1], strict=True)])
    del f_plain, f_aug
    config = replace(HeadConfig.for_trunk(trunk.network), design=args.design, width=args.width)
    y2 = np.concatenate([y, y])
    head_seed = args.seed if args.head_seed is None else args.head_seed
    head, history = train(f, y2, config, args.epochs, args.batch_size, args.lr, head_seed, args.quiet)
    p_val = verdict_probabilities(head, trunk_features(trunk.network, vx))
    threshold = choose_threshold(p_val[torch.from_numpy(vy) == DIGIT, DIGIT], args.max_flagged)
    out = Path(args.out_dir)
    sha = save_checkpoint(head, out / WEIGHTS_FILE)
    card = {
        "name": "verdict",
        "version": f"verdict-{sha[:12]}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "description": "Judges whether a preprocessed upload is one digit, not a digit, or several digits, "
        "from the shipped network's own activations.",
        "architecture": config.to_dict(),
        "parameters": count_parameters(head),
        "trunk": {"folder": args.trunk, "version": trunk.version, "sha256": trunk.card["weights"]["sha256"]},
        "verdict": {
            "classes": list(VERDICT_CLASSES),
            "threshold": round(threshold, 6),
            "max_flagged": args.max_flagged,
        },
        "training": {
            "command": "python -m model.train_verdict " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "seed": args.seed,
            "head_seed": head_seed,
            "threads": args.threads,
            "epochs": args.epochs,
            "seconds": round(time.perf_counter() - started, 1),
            "history": history,
            "inputs": counts,
        },
        "validation": {"inputs": vcounts, **rates(p_val, vy, threshold)},
        "weights": {"file": WEIGHTS_FILE, "sha256": sha},
    }
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    log.info("verdict network: threshold %.4f, validation %s", threshold, card["validation"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
