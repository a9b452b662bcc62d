"""One scan at every zoom: does the service read a low-resolution scan the same way
however it was enlarged?

    python -m benchmarks.zoom --data-dir ../shared/data/mnist [--n 1000] [--optdigits]

Frame-filling scans (8 px, 17 grey levels, the digit touching the frame), enlarged to
each of --sizes px by nearest neighbour (an editor's zoom, no smoothing), bilinear and
bicubic, half of them dark ink on white: accuracy per size and resampler, and the share
of scans given the same digit in every cell. The scans are the first --n MNIST test
digits (the tuning split's), each ink box reduced to 8 px on its longer side and centred
in an 8 x 8 frame. --optdigits adds UCI optdigits' 1,797 real 8 x 8 scans: the held-out
split's `optdigits_real` family at other sizes (the two faults this probe shows were
found on them; docs/preprocessing.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.realworld import Answer, Case, local_classifier
from convlens.model.uploads import encode, ink_box

ROOT = Path(__file__).resolve().parent.parent
Classifier = Callable[[list[Case]], list[Answer]]
RESAMPLERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


def mnist_scans(images: np.ndarray, side: int = 8) -> np.ndarray:
    """Each digit's ink box reduced to `side` px on its longer side, centred in a side x
    side frame (so it touches two edges), at 17 grey levels."""
    out = []
    for x in images:
        box = Image.fromarray(ink_box(x, 0))
        s = side / max(box.size)
        box = box.resize((max(1, round(box.width * s)), max(1, round(box.height * s))), Image.Resampling.BOX)
        frame = Image.new("L", (side, side))
        frame.paste(box, ((side - box.width) // 2, (side - box.height) // 2))
        out.append(np.round(np.asarray(frame, np.float32) / 255 * 16) / 16)
    return np.stack(out)


def optdigit_scans() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images / 16, digits.target


@dataclass(frozen=True)
class Probe:
    every: float  # accuracy over all cells
    worst: float  # accuracy of the worst cell
    same: float  # share of scans read as the same digit in every cell
    refused: int


def probe(scans: np.ndarray, labels: np.ndarray, sizes: list[int], classify: Classifier) -> Probe:
    """Print accuracy per size and resampler, and return the summary."""
    dark = np.random.default_rng(0).random(len(scans)) < 0.5
    answers = {}
    for side in sizes:
        for name, resample in RESAMPLERS.items():
            cases = []
            for ink, y, d in zip(scans, labels, dark, strict=True):
                a = (ink * 255).astype(np.uint8)
                img = Image.fromarray(255 - a if d else a).resize((side, side), resample)
                cases.append(Case(f"{side}", int(y), encode(img, "PNG"), "image/png"))
            answers[side, name] = np.array([a[0] for a in classify(cases)])
    print("   px " + "".join(f"{n:>10s}" for n in RESAMPLERS))
    for side in sizes:
        print(f"{side:5d} " + "".join(f"{100 * (answers[side, n] == labels).mean():9.2f}%" for n in RESAMPLERS))
    table = np.stack(list(answers.values()))
    result = Probe(
        every=float((table == labels).mean()),
        worst=float(min((a == labels).mean() for a in answers.values())),
        same=float((table == table[0]).all(0).mean()),
        refused=int((table < 0).sum()),
    )
    print(f"  all cells {100 * result.every:.2f}%, worst cell {100 * result.worst:.2f}%, refused {result.refused}")
    print(f"  scans read as the same digit in all {len(answers)} cells: {100 * result.same:.2f}%")
    return result


def main() -> None:
    from convlens.model.data import load_split

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared/data/mnist"))
    p.add_argument("--n", type=int, default=1000, help="MNIST test digits (default: %(default)s)")
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 20, 28, 32, 60, 100, 128, 160, 200])
    p.add_argument("--optdigits", action="store_true", help="also the held-out optdigits scans")
    args = p.parse_args()
    classify = local_classifier()
    test = load_split(args.data_dir, "test")
    n = min(args.n, 5000)
    print(f"MNIST test digits 0-{n - 1} as 8 px scans (tuning data)")
    probe(mnist_scans(test.images[:n]), test.labels[:n], args.sizes, classify)
    if args.optdigits:
        scans, labels = optdigit_scans()
        print(f"UCI optdigits, {len(labels)} real 8 x 8 scans (held-out data)")
        probe(scans, labels, args.sizes, classify)


if __name__ == "__main__":
    main()
