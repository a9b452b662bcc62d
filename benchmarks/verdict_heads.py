"""Verdict head designs compared on one training set: how much each flags, what each costs.

    python -m benchmarks.verdict_heads --data-dir ../shared/data/mnist [--cache /tmp/sets.npz]

Renders `model/train_verdict.py`'s training and validation sets once (about 18 minutes on
this machine; `--cache` keeps them for the next run), trains every design in `--designs`
on the same trunk features with the same seed, epochs and threshold rule, and prints per
design its validation figures (the tuning side: no held-out family is looked at here) and
the head's time in float32 on one thread at batch 1, 8 and 64, the way the service runs it
beside the bfloat16 trunk. The held-out families are measured afterwards by
`benchmarks.verdict` on the weights a chosen design is trained into. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from convlens.model.card import load_folder
from convlens.model.data import load_split
from convlens.model.net import fused_for_inference
from convlens.model.train_verdict import (
    DIGIT,
    augmented,
    choose_threshold,
    rates,
    sets,
    train,
    trunk_features,
    verdict_probabilities,
)
from convlens.model.verdict_head import HeadConfig, VerdictHead, fused_head, stage_names, trunk_outputs


def head_ms(head: VerdictHead, trunk_path: str, batch: int, repeats: int = 300) -> float:
    """Median ms of the served head (batch norms folded) on the trunk's bfloat16 outputs."""
    trunk = fused_for_inference(load_folder(Path(trunk_path)).network).to(torch.bfloat16)
    names = stage_names(trunk)
    serving = fused_head(head)
    x = torch.randn(batch, 1, 28, 28).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        logits, stages = trunk_outputs(trunk, x, names)
        times = []
        for i in range(repeats + 30):
            start = time.perf_counter()
            serving(logits, stages).softmax(1)
            if i >= 30:
                times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--trunk", default="weights/shipped")
    p.add_argument("--cache", default=None, help="npz of the rendered sets: read if present, else written")
    p.add_argument("--designs", default="conv:32,dense:64", help="design:width, comma-separated")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--uploads", type=int, default=16000)
    p.add_argument("--per-family", type=int, default=2500)
    p.add_argument("--max-flagged", type=float, default=0.0003)
    p.add_argument("--seed", type=int, default=0, help="the sets' and the augmentation's seed")
    p.add_argument("--val", type=int, default=10000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--head-seeds", default="0", help="seeds of each head's training, comma-separated")
    args = p.parse_args()
    torch.set_num_threads(1)
    split = load_split(args.data_dir, "train", verify=True)
    (x, y, _), (vx, vy, _) = sets(split.images, split.labels, args)
    trunk = load_folder(Path(args.trunk)).network
    f_plain, f_aug = trunk_features(trunk, x), trunk_features(trunk, augmented(x, args.seed))
    f = (torch.cat([f_plain[0], f_aug[0]]), [torch.cat(s) for s in zip(f_plain[1], f_aug[1], strict=True)])
    del f_plain, f_aug
    fv = trunk_features(trunk, vx)
    y2 = np.concatenate([y, y])
    print(f"training inputs {len(y2)}, validation {len(vy)}")
    rows = []
    for spec, seed in ((s, int(k)) for s in args.designs.split(",") for k in args.head_seeds.split(",")):
        design, width = spec.split(":")
        config = replace(HeadConfig.for_trunk(trunk), design=design, width=int(width))
        start = time.perf_counter()
        head, _ = train(f, y2, config, args.epochs, 256, 3e-3, seed, True)
        seconds = time.perf_counter() - start
        p_val = verdict_probabilities(head, fv)
        threshold = choose_threshold(p_val[torch.from_numpy(vy) == DIGIT, DIGIT], args.max_flagged)
        r = rates(p_val, vy, threshold)
        ms = [head_ms(head, args.trunk, b) for b in (1, 8, 64)]
        params = sum(q.numel() for q in head.parameters())
        rows.append((f"{spec} seed {seed}", params, seconds, r, ms))
        print(spec, seed, params, f"{seconds:.0f} s", r, " / ".join(f"{m:.3f}" for m in ms), flush=True)
    print(
        "\n| design | parameters | not a digit flagged | several flagged | several recall | digits kept "
        "| head ms b1 / b8 / b64 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for spec, params, _, r, ms in rows:
        print(
            f"| {spec} | {params:,} | {r['not_a_digit_flagged']:.2%} | {r['several_digits_flagged']:.2%} "
            f"| {r['several_digits_recall']:.2%} | {r['digit_recall']:.2%} | {' / '.join(f'{m:.3f}' for m in ms)} |"
        )


if __name__ == "__main__":
    main()
