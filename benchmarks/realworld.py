"""Digits as users upload them, made from MNIST test images, and the accuracy on them.

Each variant is rendered at a size and in a file format a person would send: dark ink
on light paper, enlarged and off-centre on a non-square canvas, as JPEG; transparent
PNG; thick pen; slight tilt; a phone photo (uneven light, noise, blur, big JPEG).
Separately: the plain MNIST digits as PNG, and digits shifted 3-5 px inside the 28 x 28
frame.

    python -m benchmarks.realworld --data-dir ../shared/data/mnist [--n 2000] [--url http://127.0.0.1:8000]

Without --url it runs the service's own preprocessing and network in-process.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

Variant = Callable[[np.ndarray, np.random.Generator], tuple[bytes, str]]


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _enlarge(digit: np.ndarray, rng: np.random.Generator, lo: int = 4, hi: int = 14) -> Image.Image:
    k = int(rng.integers(lo, hi + 1))
    return Image.fromarray(digit).resize((28 * k, 28 * k), Image.Resampling.BICUBIC)


def _on_canvas(ink: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, tuple[int, int]]:
    """A bigger, non-square canvas with the digit placed off-centre."""
    w, h = ink.size
    cw, ch = int(w * rng.uniform(1.2, 2.2)), int(h * rng.uniform(1.1, 1.8))
    x, y = int(rng.integers(0, cw - w + 1)), int(rng.integers(0, ch - h + 1))
    canvas = Image.new("L", (cw, ch), 0)
    canvas.paste(ink, (x, y))
    return canvas, (x, y)


def paper_jpeg(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    canvas, _ = _on_canvas(_enlarge(digit, rng), rng)
    ink = np.asarray(canvas, np.float32) / 255
    paper, pen = rng.uniform(200, 250), rng.uniform(0, 70)
    gray = paper + (pen - paper) * ink
    return _save(
        Image.fromarray(gray.clip(0, 255).astype(np.uint8)).convert("RGB"), "JPEG", quality=int(rng.integers(70, 95))
    ), "image/jpeg"


def transparent_png(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    canvas, _ = _on_canvas(_enlarge(digit, rng, 2, 10), rng)
    alpha = np.asarray(canvas)
    color = rng.integers(0, 90, 3) if rng.random() < 0.7 else rng.integers(190, 256, 3)  # dark or light pen
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., :3] = color
    rgba[..., 3] = alpha
    return _save(Image.fromarray(rgba, "RGBA"), "PNG"), "image/png"


def thick_pen(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    big = _enlarge(digit, rng, 8, 12)
    big = big.filter(ImageFilter.MaxFilter(int(rng.choice([5, 7, 9]))))
    canvas, _ = _on_canvas(big, rng)
    return _save(Image.fromarray(255 - np.asarray(canvas)), "PNG"), "image/png"


def tilted(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    big = _enlarge(digit, rng, 4, 8).rotate(float(rng.uniform(-12, 12)), Image.Resampling.BICUBIC, expand=True)
    canvas, _ = _on_canvas(big, rng)
    return _save(Image.fromarray(255 - np.asarray(canvas)), "PNG"), "image/png"


def phone_photo(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    canvas, _ = _on_canvas(_enlarge(digit, rng, 12, 30), rng)
    ink = np.asarray(canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0))), np.float32) / 255
    h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w]
    light = 1 - 0.25 * rng.random() * (xx / w) - 0.2 * rng.random() * (yy / h)  # uneven light
    paper = rng.uniform(150, 225) * light
    gray = paper + (rng.uniform(20, 60) - paper) * ink + rng.normal(0, 4, ink.shape)
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 0.97)])  # warm indoor light
    rgb = (gray[..., None] * tint).clip(0, 255).astype(np.uint8)
    return _save(Image.fromarray(rgb), "JPEG", quality=int(rng.integers(75, 92))), "image/jpeg"


VARIANTS: dict[str, Variant] = {
    "paper_jpeg": paper_jpeg,
    "transparent_png": transparent_png,
    "thick_pen": thick_pen,
    "tilted": tilted,
    "phone_photo": phone_photo,
}


def shifted(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """The MNIST digit moved 3-5 px (in a random direction) inside its 28 x 28 frame."""
    dy, dx = (int(rng.integers(3, 6)) * int(rng.choice([-1, 1])) for _ in range(2))
    if rng.random() < 0.5:
        dy = 0 if rng.random() < 0.5 else dy
    else:
        dx = 0 if rng.random() < 0.5 else dx
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    dy = int(np.clip(dy, -rows[0], 27 - rows[-1]))
    dx = int(np.clip(dx, -cols[0], 27 - cols[-1]))
    moved = np.roll(digit, (dy, dx), axis=(0, 1))
    return _save(Image.fromarray(moved), "PNG"), "image/png"


def build(images: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[tuple[str, int, bytes, str]]:
    """(variant, label, bytes, content type) for every image, variants taken in turn."""
    rng = np.random.default_rng(seed)
    names = list(VARIANTS)
    out = []
    for i, (digit, label) in enumerate(zip(images, labels, strict=True)):
        name = names[i % len(names)]
        data, ctype = VARIANTS[name](digit, rng)
        out.append((name, int(label), data, ctype))
    return out


def build_plain(images: np.ndarray, labels: np.ndarray) -> list[tuple[str, int, bytes, str]]:
    """The MNIST test digits themselves, as PNG: must score what the offline evaluation does."""
    return [
        ("mnist_png", int(y), _save(Image.fromarray(x), "PNG"), "image/png")
        for x, y in zip(images, labels, strict=True)
    ]


def build_shifted(images: np.ndarray, labels: np.ndarray, seed: int = 1) -> list[tuple[str, int, bytes, str]]:
    rng = np.random.default_rng(seed)
    return [("shifted_3_5px", int(y), *shifted(x, rng)) for x, y in zip(images, labels, strict=True)]


def main() -> None:
    from model.data import load_split

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/mnist", help="default: %(default)s")
    p.add_argument("--n", type=int, default=10000, help="MNIST test images to use (default: %(default)s)")
    p.add_argument("--url", help="measure a running service instead of in-process")
    p.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    args = p.parse_args()
    test = load_split(args.data_dir, "test")
    images, labels = test.images[: args.n], test.labels[: args.n]
    cases = (
        build_plain(images, labels) + build(images, labels, args.seed) + build_shifted(images, labels, args.seed + 1)
    )
    classify = _http_classifier(args.url) if args.url else _local_classifier()
    start = time.perf_counter()
    right: dict[str, list[int]] = {}
    for name, label, data, ctype in cases:
        right.setdefault(name, []).append(int(classify(data, ctype) == label))
    print(f"{len(cases)} images in {time.perf_counter() - start:.0f} s")
    user = [v for k, vs in right.items() if k in VARIANTS for v in vs]
    for name, vs in right.items():
        print(f"  {name:18s} {100 * np.mean(vs):6.2f}%  (n={len(vs)})")
    print(f"  {'all user uploads':18s} {100 * np.mean(user):6.2f}%  (n={len(user)})")


def _local_classifier() -> Callable[[bytes, str], int]:
    from app.config import Settings
    from app.errors import ApiError
    from app.predictor import Predictor, to_tensor
    from app.preprocess import preprocess

    settings = Settings()
    predictor = Predictor.load(settings.weights_path, settings.resolved_card_path, settings.precision)

    def classify(data: bytes, _: str) -> int:
        try:
            pre = preprocess(data, settings.max_pixels)
        except ApiError:
            return -1
        return int(predictor.probabilities(to_tensor(pre.pixels))[0].argmax())

    return classify


def _http_classifier(url: str) -> Callable[[bytes, str], int]:
    import httpx

    client = httpx.Client(base_url=url, timeout=30)

    def classify(data: bytes, ctype: str) -> int:
        r = client.post("/v1/predict", content=data, headers={"content-type": ctype})
        return r.json()["digit"] if r.status_code == 200 else -1

    return classify


if __name__ == "__main__":
    main()
