"""How well the service tells one digit from everything else.

    python -m benchmarks.verdict --data-dir ../shared/data/mnist [--n 1000] [--url http://127.0.0.1:8000]

Held-out families (`model.nondigits.BENCH_*`), none of them a training family nor from a
training source: letters, symbols and words typed in STIX and Computer Modern
(matplotlib's fonts; training typed DejaVu and Liberation Sans), the same fonts' letters redrawn with a
pen, hand-drawn shapes (stars, arrows, triangles, boxes, ticks, crosses, faces, hearts,
spirals; training drew random scribbles, hatching and random outlines), crops of scikit-image
photographs training never saw, real textures (brick, grass, gravel) and salt-and-pepper
paper, 2-4 MNIST *test* digits in one picture, numbers typed in the unseen fonts, and
blank paper. Digits: the 10,000 MNIST test digits and both splits of
`benchmarks.realworld` (their flagged share; the verdict never changes a digit).
"Seen families" renders the training families afresh (another seed) for comparison.

Baseline, from the same run: a threshold on the digit network's max-softmax confidence
that keeps 99.5 % of the MNIST test digits.
Without --url it runs the service's own preprocessing, networks, verdict rule and the
reader's second look (`app/core/several.py`) in-process; "network alone" is the verdict
network's own verdict for the same uploads, before the look.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.realworld import Case, heldout_split, tuning_split
from convlens.model.data import load_split
from convlens.model.nondigits import (
    BENCH_BLANK,
    BENCH_NOT_A_DIGIT,
    BENCH_SEVERAL,
    TRAIN_NOT_A_DIGIT,
    TRAIN_SEVERAL,
    TUNE_BLANK,
    Family,
    as_upload,
)
from convlens.model.uploads import encode

BENCH_SEED, SEEN_SEED = 11, 12


@dataclass(frozen=True)
class Judged:
    verdict: str  # digit, not_a_digit, several_digits, blank, or another error code
    confidence: float  # the digit network's max probability (0 when refused)
    network: str | None = None  # the verdict network's own, before the reader's second look (in-process only)


Judge = Callable[[list[tuple[bytes, str]]], list[Judged]]


def render(
    families: dict[str, Family], n: int, seed: int, digits: np.ndarray, pad: bool = True
) -> dict[str, list[tuple[bytes, str]]]:
    out = {}
    for k, (name, family) in enumerate(families.items()):
        rng = np.random.default_rng([seed, k])
        out[name] = [as_upload(family(rng, digits), rng, pad=pad) for _ in range(n)]
    return out


def local_judge(batch: int = 256) -> Judge:
    """The service's own functions: preprocess -> ServedModel.answer -> Scored.of -> the
    reader's second look at what the verdict flags."""
    from convlens.app.config import Settings
    from convlens.app.core.errors import BlankImage, DomainError
    from convlens.app.core.pipeline import Scored
    from convlens.app.core.precision import serving_dtype
    from convlens.app.core.served_model import ServedModel, to_tensor
    from convlens.app.core.several import look_here
    from convlens.app.core.verdict import Judge as VerdictNetwork
    from convlens.app.imaging.preprocess import open_image, preprocess
    from convlens.app.reading.cuts import CutScorer

    settings = Settings()
    name = settings.default_model
    served = ServedModel.load(
        name,
        settings.model_dir(name),
        settings.precision,
        VerdictNetwork.load(settings.verdict_dir, dtype=serving_dtype(settings.precision)),
    )
    cuts = CutScorer.load(settings.cuts_dir)

    def judge(uploads: list[tuple[bytes, str]]) -> list[Judged]:
        out: list[Judged] = [Judged("", 0.0)] * len(uploads)
        pres, where = [], []
        for i, (data, _) in enumerate(uploads):
            try:
                pres.append(preprocess(data, settings.max_pixels))
                where.append(i)
            except DomainError as e:
                out[i] = Judged("blank" if isinstance(e, BlankImage) else e.code, 0.0)
        for s in range(0, len(pres), batch):
            rows = served.answer(to_tensor([p.pixels for p in pres[s : s + batch]]))
            for i, pre, row in zip(where[s : s + batch], pres[s : s + batch], rows, strict=True):
                scored = Scored.of(pre, row, 0.0, 0.0, served.judge)
                img = open_image(uploads[i][0], settings.max_pixels)
                look = look_here(img, scored.verdict, served, cuts)
                out[i] = Judged(look.verdict or "digit", float(scored.probabilities.max()), scored.verdict)
        return out

    return judge


def http_judge(url: str) -> Judge:
    import httpx

    client = httpx.Client(base_url=url, timeout=30)

    def one(data: bytes, content_type: str) -> Judged:
        r = client.post("/v1/predict", content=data, headers={"content-type": content_type})
        body = r.json()
        if r.status_code != 200:
            code = body["error"]["code"]
            return Judged("blank" if code == "blank_image" else code, 0.0)
        return Judged(body["verdict"], body["confidence"])

    return lambda uploads: [one(*u) for u in uploads]


def table(title: str, groups: dict[str, list[Judged]], wanted: str, cut: float) -> dict[str, dict[str, float]]:
    """Per family: share with the wanted verdict, share flagged (any but digit), and the
    max-softmax baseline's flagged share."""
    print(title)
    out = {}
    for name, judged in groups.items():
        n = len(judged)
        row = {
            "n": n,
            "wanted": sum(j.verdict == wanted for j in judged) / n,
            "flagged": sum(j.verdict != "digit" for j in judged) / n,
            "network_wanted": sum((j.network or j.verdict) == wanted for j in judged) / n,
            "baseline_flagged": sum(j.verdict == "blank" or j.confidence < cut for j in judged) / n,
        }
        out[name] = row
        print(
            f"  {name:30s} {wanted} {100 * row['wanted']:6.2f}% (network alone {100 * row['network_wanted']:6.2f}%)"
            f"  flagged {100 * row['flagged']:6.2f}%"
            f"  (max-softmax baseline {100 * row['baseline_flagged']:6.2f}%, n={n})"
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/mnist", help="default: %(default)s")
    p.add_argument("--n", type=int, default=1000, help="uploads per family (default: %(default)s)")
    p.add_argument(
        "--digits", type=int, default=2000, help="MNIST test digits per realworld split (default: %(default)s)"
    )
    p.add_argument("--url", help="measure a running service instead of in-process")
    p.add_argument("--json", metavar="FILE", help="write the figures here too")
    p.add_argument("--write-card", metavar="CARD", help="record the figures under 'benchmarks' in this card")
    args = p.parse_args()
    test = load_split(args.data_dir, "test")
    judge = http_judge(args.url) if args.url else local_judge()
    start = time.perf_counter()

    def digits_of(cases: list[Case]) -> dict[str, list[Judged]]:
        judged = judge([(c.data, c.content_type) for c in cases])
        out: dict[str, list[Judged]] = {}
        for c, j in zip(cases, judged, strict=True):
            out.setdefault(c.family, []).append(j)
        return out

    mnist = judge([(encode(Image.fromarray(d), "PNG"), "image/png") for d in test.images])
    confidences = np.array([j.confidence for j in mnist])
    cut = float(np.quantile(confidences, 0.005))  # the baseline keeps 99.5 % of MNIST test digits
    k = args.digits
    results = {
        "baseline_max_softmax_threshold": cut,
        "digits": table(
            f"real digits (flagged should be ~0; baseline cut at confidence {cut:.4f})",
            {
                "mnist_test": mnist,
                **{f"tuning/{f}": v for f, v in digits_of(tuning_split(test.images[:k], test.labels[:k])).items()},
                **{
                    f"heldout/{f}": v
                    for f, v in digits_of(
                        heldout_split(test.images[5000 : 5000 + k], test.labels[5000 : 5000 + k])
                    ).items()
                },
            },
            "digit",
            cut,
        ),
    }
    held_digits = test.images
    # empty paper is sent as it is: paper pasted on paper would have an edge
    for title, families, wanted, seed in (
        ("held-out: not a digit", BENCH_NOT_A_DIGIT, "not_a_digit", BENCH_SEED),
        ("held-out: several digits", BENCH_SEVERAL, "several_digits", BENCH_SEED),
        ("held-out: blank paper", BENCH_BLANK, "blank", BENCH_SEED),
        (
            "seen families (training's generators, a fresh seed): not a digit",
            TRAIN_NOT_A_DIGIT,
            "not_a_digit",
            SEEN_SEED,
        ),
        ("seen families: several digits (MNIST test digits)", TRAIN_SEVERAL, "several_digits", SEEN_SEED),
        ("tuning: blank paper (the blank test was chosen on these)", TUNE_BLANK, "blank", SEEN_SEED),
    ):
        pad = wanted != "blank"
        groups = {name: judge(ups) for name, ups in render(families, args.n, seed, held_digits, pad).items()}
        results[title] = table(title, groups, wanted, cut)
        if len(groups) > 1:
            n_all = sum(len(g) for g in groups.values())
            flagged = sum(r["flagged"] * r["n"] for r in results[title].values()) / n_all
            print(f"  {'all':30s} flagged {100 * flagged:6.2f}%")
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.write_card:
        card = json.loads(Path(args.write_card).read_text())
        card["benchmarks"] = {"command": f"python -m benchmarks.verdict --n {args.n} --digits {args.digits}", **results}
        Path(args.write_card).write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
