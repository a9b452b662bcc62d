"""How well /v1/read reads pages of numbers (`benchmarks/pages.py`), per family.

    python -m benchmarks.reading --split heldout --n 40            # in-process reader
    python -m benchmarks.reading --split heldout --url http://127.0.0.1:8000   # a server

The tuning split (MNIST training digits, seed 1) is what every choice of the reader was
looked at on; the held-out split (MNIST test digits, seed 2) only reports. Per family:
numbers read exactly (each true number matched to the read number whose box overlaps
it most), character error rate (Levenshtein over the numbers joined by a space, in
reading order), digit boxes found (recall) and their precision (IoU >= 0.5, one to one),
and the time to read a page.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.pages import FAMILIES, Box, TruePage, pages
from convlens.model.data import load_split

SEEDS = {"tune": 1, "heldout": 2}
MNIST_SPLIT = {"tune": "train", "heldout": "test"}
IOU = 0.5


@dataclass
class ReadPage:
    numbers: list[tuple[str, Box, list[Box]]]  # text, box, digit boxes
    seconds: float


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _matches(true: list[Box], found: list[Box]) -> int:
    pairs = sorted(((iou(t, f), i, j) for i, t in enumerate(true) for j, f in enumerate(found)), reverse=True)
    used_t: set[int] = set()
    used_f: set[int] = set()
    for score, i, j in pairs:
        if score < IOU:
            break
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
    return len(used_t)


@dataclass
class Tally:
    pages: int = 0
    numbers: int = 0
    exact: int = 0
    edits: int = 0
    chars: int = 0
    true_digits: int = 0
    found_digits: int = 0
    matched_digits: int = 0
    seconds: list[float] | None = None

    def add(self, truth: TruePage, read: ReadPage) -> None:
        self.pages += 1
        self.seconds = [*(self.seconds or []), read.seconds]
        for t in truth.numbers:
            self.numbers += 1
            best = max(read.numbers, key=lambda r: iou(t.box, r[1]), default=None)
            if best is not None and iou(t.box, best[1]) > 0.3 and best[0] == t.text:
                self.exact += 1
        want = " ".join(t.text for t in truth.numbers)
        got = " ".join(r[0] for r in read.numbers)
        self.edits += levenshtein(got, want)
        self.chars += len(want)
        true_boxes = [b for t in truth.numbers for b in t.digits]
        found_boxes = [b for r in read.numbers for b in r[2]]
        self.true_digits += len(true_boxes)
        self.found_digits += len(found_boxes)
        self.matched_digits += _matches(true_boxes, found_boxes)

    def row(self) -> dict[str, float]:
        s = np.array(self.seconds or [0.0])
        return {
            "pages": self.pages,
            "numbers": self.numbers,
            "exact_pct": round(100 * self.exact / max(self.numbers, 1), 2),
            "cer_pct": round(100 * self.edits / max(self.chars, 1), 2),
            "digit_recall_pct": round(100 * self.matched_digits / max(self.true_digits, 1), 2),
            "digit_precision_pct": round(100 * self.matched_digits / max(self.found_digits, 1), 2),
            "p50_ms": round(1000 * float(np.median(s)), 1),
            "max_ms": round(1000 * float(s.max()), 1),
        }


def local_reader(model_name: str):  # type: ignore[no-untyped-def]
    from convlens.app.config import Settings
    from convlens.app.core.reader import read_here
    from convlens.app.core.served_model import ServedModel
    from convlens.app.core.verdict import Judge

    settings = Settings()
    judge = Judge.load(settings.verdict_dir) if settings.verdict else None
    model = ServedModel.load(model_name, settings.weights_dir / model_name, judge=judge)

    def read(p: TruePage) -> ReadPage:
        start = time.perf_counter()
        r = read_here(Image.open(io.BytesIO(p.data)), model)
        numbers = [(n.text, n.box, [d.box for d in n.digits]) for n in r.numbers]
        return ReadPage(numbers, time.perf_counter() - start)

    return read


def served_reader(url: str, model_name: str):  # type: ignore[no-untyped-def]
    import httpx

    client = httpx.Client(base_url=url, timeout=60)

    def read(p: TruePage) -> ReadPage:
        start = time.perf_counter()
        r = client.post("/v1/read", params={"model": model_name}, content=p.data, headers={"content-type": p.content_type})
        r.raise_for_status()
        body = r.json()
        numbers = [(n["text"], tuple(n["box"]), [tuple(d["box"]) for d in n["digits"]]) for n in body["numbers"]]
        return ReadPage(numbers, time.perf_counter() - start)

    return read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=sorted(SEEDS), default="tune")
    ap.add_argument("--n", type=int, default=30, help="pages per family")
    ap.add_argument("--families", nargs="*", default=sorted(FAMILIES))
    ap.add_argument("--model", default="shipped")
    ap.add_argument("--url", help="read through a running server instead of in-process")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    ap.add_argument("--json", type=Path, help="write the table here")
    ap.add_argument("--show", type=int, default=0, help="print this many misread numbers per family")
    args = ap.parse_args()
    mnist = load_split(args.data_dir, MNIST_SPLIT[args.split], download_missing=False)
    pool = (mnist.images, mnist.labels)
    read = served_reader(args.url, args.model) if args.url else local_reader(args.model)
    table: dict[str, dict[str, float]] = {}
    total = Tally()
    for family in args.families:
        tally = Tally()
        shown = 0
        for p in pages(family, args.n, pool, SEEDS[args.split]):
            got = read(p)
            tally.add(p, got)
            total.add(p, got)
            if shown < args.show:
                want, have = [t.text for t in p.numbers], [r[0] for r in got.numbers]
                if want != have:
                    print(f"  {family}: want {want} got {have}")
                    shown += 1
        table[family] = tally.row()
        print(f"{family:12s} {json.dumps(table[family])}", flush=True)
    table["all"] = total.row()
    print(f"{'all':12s} {json.dumps(table['all'])}")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "n": args.n, "families": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
