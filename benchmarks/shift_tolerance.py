"""The article's shift claim over the MNIST test set, for every served model.

    python -m benchmarks.shift_tolerance [--n 2000] [--max-shift 4]

For each of the first `--n` MNIST test digits (preprocessed as the service does) and each
(dx, dy) with |dx|, |dy| <= k, the same zero-filled shift as /v1/experiments/shift. Prints
per model and per shift distance (Chebyshev, 0..k): the share of shifted copies that keep
the unshifted prediction, their accuracy, and for CNNs the mean cosine similarity of the
first conv and the last pool outputs with the unshifted ones.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from convlens.app.config import Settings
from convlens.app.core.served_model import ServedModel, to_tensor
from convlens.app.core.shift import all_shifts, cosine_to_first, offsets
from convlens.app.imaging.preprocess import preprocess_array
from convlens.model.data import load_split

ROOT = Path(__file__).resolve().parent.parent


def measure(model: ServedModel, pixels: list[np.ndarray], labels: np.ndarray, k: int) -> dict[int, dict[str, float]]:
    grid = offsets(k)
    centre = grid.index((0, 0))
    ring = [max(abs(dx), abs(dy)) for dx, dy in grid]
    sums: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    conv = next((n for n in model.feature_layers if model.kinds[n] == "conv"), None)
    pool = ([n for n in model.feature_layers if model.kinds[n] == "pool"] or [None])[-1]
    for img, label in zip(pixels, labels, strict=True):
        x = to_tensor(all_shifts(img, k))
        digits = model.probabilities(x).argmax(1)
        acts = model.features(x, [conv, pool]) if conv and pool else {}
        cos_conv = cosine_to_first(acts[conv], acts[conv][centre]) if acts else None
        cos_pool = cosine_to_first(acts[pool], acts[pool][centre]) if acts else None
        for i, r in enumerate(ring):
            s = sums[r]
            s["n"] += 1
            s["stable"] += float(digits[i] == digits[centre])
            s["correct"] += float(digits[i] == label)
            if cos_conv is not None and cos_pool is not None:
                s["conv"] += cos_conv[i]
                s["pool"] += cos_pool[i]
    return {r: {key: v / s["n"] for key, v in s.items() if key != "n"} for r, s in sorted(sums.items())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--max-shift", type=int, default=4)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared/data/mnist"))
    args = p.parse_args()
    torch.set_num_threads(2)
    test = load_split(args.data_dir, "test", verify=False)
    pixels = [preprocess_array(img)[0] for img in test.images[: args.n]]
    labels = test.labels[: args.n]
    settings = Settings()
    print(f"{args.n} MNIST test digits, every shift up to {args.max_shift} px (zero fill)")
    for name in settings.models:
        model = ServedModel.load(name, settings.model_dir(name))
        rows = measure(model, pixels, labels, args.max_shift)
        print(f"\n{name} ({sum(r.parameters for r in model.layers):,} parameters)")
        print("  shift  keeps answer  accuracy  conv1 cosine  last pool cosine")
        for r, s in rows.items():
            cos = f"{s['conv']:12.3f}  {s['pool']:16.3f}" if "conv" in s else f"{'-':>12s}  {'-':>16s}"
            print(f"  {r:5d}  {100 * s['stable']:11.2f}%  {100 * s['correct']:7.2f}%  {cos}")


if __name__ == "__main__":
    main()
