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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.pages import FAMILIES, Box, TrueNumber, TruePage, pages
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


Reader = Callable[[TruePage], ReadPage]


def local_reader(model_name: str, use_cuts: bool = True) -> Reader:
    from convlens.app.config import Settings
    from convlens.app.core.precision import serving_dtype
    from convlens.app.core.reader import read_here
    from convlens.app.core.served_model import ServedModel
    from convlens.app.core.verdict import Judge
    from convlens.app.reading.cuts import CutScorer

    settings = Settings()
    judge = Judge.load(settings.verdict_dir, dtype=serving_dtype(settings.precision)) if settings.verdict else None
    model = ServedModel.load(model_name, settings.weights_dir / model_name, judge=judge)
    cuts = CutScorer.load(settings.cuts_dir) if use_cuts else None

    def read(p: TruePage) -> ReadPage:
        start = time.perf_counter()
        r = read_here(Image.open(io.BytesIO(p.data)), model, cuts)
        numbers = [(n.text, n.box, [d.box for d in n.digits]) for n in r.numbers]
        return ReadPage(numbers, time.perf_counter() - start)

    return read


def served_reader(url: str, model_name: str) -> Reader:
    import httpx

    client = httpx.Client(base_url=url, timeout=60)

    def read(p: TruePage) -> ReadPage:
        start = time.perf_counter()
        r = client.post(
            "/v1/read", params={"model": model_name}, content=p.data, headers={"content-type": p.content_type}
        )
        r.raise_for_status()
        body = r.json()
        numbers = [(n["text"], tuple(n["box"]), [tuple(d["box"]) for d in n["digits"]]) for n in body["numbers"]]
        return ReadPage(numbers, time.perf_counter() - start)

    return read


def _truth_json(p: TruePage) -> dict:
    return {
        "numbers": [[t.text, list(t.box), [list(b) for b in t.digits]] for t in p.numbers],
        "size": [p.width, p.height],
    }


def dump(folder: Path, families: list[str], n: int, pool: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    truth: dict[str, dict] = {}
    for family in families:
        for k, p in enumerate(pages(family, n, pool, seed)):
            name = f"{family}_{k:03d}.{'jpg' if p.content_type == 'image/jpeg' else 'png'}"
            (folder / name).write_bytes(p.data)
            truth[name] = {"family": family, **_truth_json(p)}
    (folder / "truth.json").write_text(json.dumps({"pages": truth}))
    print(f"{len(truth)} pages in {folder}")


def score_peer(answers: Path) -> None:
    """Numbers read exactly and CER of a peer that reads numbers but boxes no digits."""
    truth = json.loads((answers.parent / "truth.json").read_text())["pages"]
    got = json.loads(answers.read_text())
    tallies: dict[str, Tally] = {}
    for name, t in truth.items():
        numbers = [TrueNumber(text, [tuple(b) for b in digits]) for text, _box, digits in t["numbers"]]
        page = TruePage(b"", "", numbers, *t["size"])
        peer = got[name]
        read = ReadPage([(text, tuple(box), []) for text, box in peer["numbers"]], peer["seconds"])
        tallies.setdefault(t["family"], Tally()).add(page, read)
        tallies.setdefault("all", Tally()).add(page, read)
    for family, tally in sorted(tallies.items(), key=lambda kv: kv[0] == "all"):
        row = {k: v for k, v in tally.row().items() if "digit" not in k}
        print(f"{family:12s} {json.dumps(row)}")


def noise_seconds(url: str, repeats: int = 3) -> list[float]:
    """Seconds to answer a 12 MP photo of noise (thousands of specks, a carpet), `repeats`
    times. The noise is drawn at a quarter of the side and enlarged: pure pixel noise
    would not fit the 10 MB body limit as a JPEG."""
    import httpx

    speckle = np.random.default_rng(0).integers(0, 256, (750, 1000, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(speckle).resize((4000, 3000), Image.Resampling.BILINEAR).save(buf, "JPEG", quality=90)
    out = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(repeats):
            start = time.perf_counter()
            c.post("/v1/read", content=buf.getvalue(), headers={"content-type": "image/jpeg"}).raise_for_status()
            out.append(round(time.perf_counter() - start, 3))
    return out


def picture(folder: Path, families: list[str], pool: tuple[np.ndarray, np.ndarray], seed: int, read: Reader) -> None:
    """Page 0 of each family, true boxes green and read boxes red: what the table cannot show."""
    from PIL import ImageDraw, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    for family in families:
        p = pages(family, 1, pool, seed)[0]
        got = read(p)
        img = ImageOps.exif_transpose(Image.open(io.BytesIO(p.data))).convert("RGB")
        draw = ImageDraw.Draw(img)
        width = max(2, img.width // 400)
        for t in p.numbers:
            for b in t.digits:
                draw.rectangle(b, outline=(0, 170, 0), width=width)
        for _text, _box, digits in got.numbers:
            for b in digits:
                draw.rectangle(b, outline=(220, 0, 0), width=width)
        img.thumbnail((900, 900))
        img.save(folder / f"{family}.png", optimize=True)
        print(family, "true", [t.text for t in p.numbers], "read", [r[0] for r in got.numbers])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=sorted(SEEDS), default="tune")
    ap.add_argument("--n", type=int, default=30, help="pages per family")
    ap.add_argument("--families", nargs="*", default=sorted(FAMILIES))
    ap.add_argument("--model", default="shipped")
    ap.add_argument("--url", help="read through a running server instead of in-process")
    ap.add_argument("--no-cuts", action="store_true", help="in-process, score cuts by the verdict network alone")
    ap.add_argument(
        "--plain",
        action="store_true",
        help="in-process, the plain reader: one connected stroke, one digit (no cuts, no joins)",
    )
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    ap.add_argument("--json", type=Path, help="write the table here")
    ap.add_argument("--dump", type=Path, help="write the pages and their truth here (for a peer), read nothing")
    ap.add_argument("--score-peer", type=Path, help="score a peer's answers (DIR/NAME.json beside DIR/truth.json)")
    ap.add_argument(
        "--picture", type=Path, help="draw page 0 of each family with true (green) and read (red) digit boxes into DIR"
    )
    ap.add_argument("--show", type=int, default=0, help="print this many misread numbers per family")
    args = ap.parse_args()
    if args.score_peer:
        return score_peer(args.score_peer)
    mnist = load_split(args.data_dir, MNIST_SPLIT[args.split], download_missing=False)
    pool = (mnist.images, mnist.labels)
    if args.dump:
        return dump(args.dump, args.families, args.n, pool, SEEDS[args.split])
    if args.picture:
        return picture(args.picture, args.families, pool, SEEDS[args.split], local_reader(args.model))
    if args.plain:
        from convlens.app.reading import segment

        segment.SPLIT_WIDTH, segment.MAX_GROUP = float("inf"), 1
    read = served_reader(args.url, args.model) if args.url else local_reader(args.model, not args.no_cuts)
    table: dict[str, dict[str, float] | dict[str, list[float]]] = {}
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
    if args.url:
        table["noise_12mp"] = {"seconds": noise_seconds(args.url)}
        print(f"a 4000 x 3000 JPEG of noise: {json.dumps(table['noise_12mp'])}")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "n": args.n, "families": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
