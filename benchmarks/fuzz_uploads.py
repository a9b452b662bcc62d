"""Mutation fuzzing of the upload decoder: every damaged file must be refused, not crash.

    python -m benchmarks.fuzz_uploads [--seconds 120 | --mutants N] [--seed 1] [--save-dir DIR]

Encodes a small digit in every format and pixel mode the service accepts, then for
`--seconds` flips, deletes and inserts random bytes and runs each mutant through the
service's own preprocessing. A mutant may decode (a digit or a refusal, both fine); any
exception that is not one of the service's domain errors would be a 500 over HTTP. Prints
the counts and the slowest mutant's time, saves one file per distinct failure into
`--save-dir`, exits 1 if there was any.
The files it found are committed under tests/fixtures/hostile/ and replayed by the tests.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from convlens.app.core.errors import DomainError
from convlens.app.imaging.preprocess import preprocess

FORMATS: tuple[tuple[str, dict[str, object]], ...] = (
    ("PNG", {}),
    ("JPEG", {"quality": 80}),
    ("JPEG", {"quality": 80, "progressive": True}),
    ("GIF", {}),
    ("BMP", {}),
    ("WEBP", {}),
    ("TIFF", {}),
    ("TIFF", {"compression": "tiff_lzw"}),
)
MODES = ("L", "RGB", "RGBA", "P", "1", "I;16", "LA", "CMYK", "I", "F")


def seeds() -> dict[str, bytes]:
    """One small, valid file per format and mode that format can store."""
    digit = np.zeros((40, 30), np.uint8)
    digit[8:30, 12:18] = 255
    out = {}
    for fmt, options in FORMATS:
        for mode in MODES:
            buf = io.BytesIO()
            try:
                Image.fromarray(digit).convert(mode).save(buf, fmt, **options)
            except (OSError, ValueError, KeyError):
                continue  # the format cannot store that mode
            out[f"{fmt.lower()}-{mode}-{len(options)}"] = buf.getvalue()
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i, op = rng.randrange(len(b)), rng.random()
        if op < 0.6:
            b[i] = rng.randrange(256)
        elif op < 0.8:
            del b[i : i + rng.randint(1, 16)]
        else:
            b[i:i] = rng.randbytes(rng.randint(1, 16))
    return bytes(b)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--mutants", type=int, default=0, help="stop after this many instead (same ones for a seed)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-pixels", type=int, default=50_000_000, help="the service's default limit")
    p.add_argument("--save-dir", type=Path, default=Path("fuzz-failures"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")  # Pillow warns about every damaged TIFF tag
    rng = random.Random(args.seed)
    files = seeds()
    names = sorted(files)
    outcomes: Counter[str] = Counter()
    failures: Counter[tuple[str, str]] = Counter()
    slowest = (0.0, "")  # a small file that takes long to decode would be a cheap attack
    started = time.monotonic()
    end = started + args.seconds
    done = 0
    while (done < args.mutants) if args.mutants else (time.monotonic() < end):
        done += 1
        name = rng.choice(names)
        data = mutate(files[name], rng)
        start = time.perf_counter()
        try:
            preprocess(data, args.max_pixels)
            outcomes["decoded"] += 1
        except DomainError as e:
            outcomes[e.code] += 1
        except Exception as e:  # finding these is the point
            key = (name, f"{type(e).__name__}: {str(e)[:80]}")
            if key not in failures:
                args.save_dir.mkdir(parents=True, exist_ok=True)
                (args.save_dir / f"{name}-{len(failures)}.bin").write_bytes(data)
            failures[key] += 1
        slowest = max(slowest, (time.perf_counter() - start, name))
    total = sum(outcomes.values()) + sum(failures.values())
    print(f"{total:,} mutants of {len(files)} seed files in {time.monotonic() - started:.0f} s")
    print(f"  slowest mutant: {1000 * slowest[0]:.1f} ms (of {slowest[1]})")
    for code, n in outcomes.most_common():
        print(f"  {code:24s} {n:9,}")
    for (name, what), n in failures.most_common():
        print(f"  FAILURE {n:5,} x {name}: {what}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
