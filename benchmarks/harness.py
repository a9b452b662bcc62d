"""What tests and benchmarks share: fixture data, upload builders, the hostile corpus, and
a real server process. Both import it from here, so imports run one way only: tests may
import benchmarks (they test them), benchmarks never import tests.

The hostile corpus is one list of (name, request kwargs, expected status, expected error
code or digit check), generated here; tests/test_hostile.py runs one test per case and
benchmarks/soak.py mixes them into its load.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from convlens.model.data import Split, load_split
from convlens.model.uploads import encode

__all__ = ["encode"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BOUNDARY = "convlensbenchboundary"


def mnist_fixture(split: str = "test") -> Split:
    """The committed MNIST subset: 1,000 test or 2,000 training digits."""
    return load_split(FIXTURES / "mnist", split, verify=False, download_missing=False)


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


def png_with_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def multipart(files: list[tuple[str, bytes]]) -> bytes:
    parts = []
    for field, data in files:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="d.png"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def png_bomb(side: int) -> bytes:
    """A real, complete grayscale PNG of side x side black pixels: tiny file, huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def digit(mnist_test, i=0, invert=True) -> Image.Image:
    x = mnist_test.images[i]
    return Image.fromarray(255 - x if invert else x)


def corpus(mnist_test) -> list[tuple[str, dict, int, str | None]]:
    """(name, request kwargs, expected status, expected error code or digit check)"""
    x = mnist_test.images[0]
    png = png_bytes(x)
    jpeg = encode(Image.fromarray(x), "JPEG", quality=90)
    raw = {"content-type": "image/png"}
    frames = [Image.fromarray(x).convert("P"), Image.fromarray(255 - x).convert("P")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    pal = Image.fromarray(255 - x).convert("P")
    rotated = Image.fromarray(x).transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 counter-clockwise to display"
    tall = np.full((10, 10_000), 255, np.uint8)
    tall[:, 4000:4010] = 0  # a 10 x 10 dot far to one side
    return [
        ("empty body", {"content": b"", "headers": raw}, 400, "empty_image"),
        ("empty file field", {"files": {"file": ("a.png", b"", "image/png")}}, 400, "empty_image"),
        ("truncated png", {"content": png[: len(png) // 2], "headers": raw}, 400, "unreadable_image"),
        (
            "truncated jpeg",
            {"content": jpeg[: len(jpeg) // 2], "headers": {"content-type": "image/jpeg"}},
            400,
            "unreadable_image",
        ),
        ("random bytes", {"content": np.random.default_rng(0).bytes(5000), "headers": raw}, 400, "unreadable_image"),
        (
            "text as text/plain",
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        (
            "svg",
            {
                "content": b'<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>',
                "headers": {"content-type": "image/svg+xml"},
            },
            400,
            "unreadable_image",
        ),
        (
            "pdf renamed png",
            {"files": {"file": ("scan.png", b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF", "image/png")}},
            400,
            "unreadable_image",
        ),
        ("html as image", {"content": b"<html><body>7</body></html>", "headers": raw}, 400, "unreadable_image"),
        (
            "header claims 50000x50000",
            {"content": png_with_header(50_000, 50_000), "headers": raw},
            413,
            "image_too_large",
        ),
        ("bomb: 400 MB of pixels in a tiny png", {"content": png_bomb(20_000), "headers": raw}, 413, "image_too_large"),
        ("1x1 image", {"content": png_bytes(np.array([[255]], np.uint8)), "headers": raw}, 400, "blank_image"),
        ("10000x10 image", {"content": png_bytes(tall), "headers": raw}, 200, None),
        ("16-bit grayscale", {"content": png_bytes(x.astype(np.uint16) * 257), "headers": raw}, 200, "digit"),
        (
            "cmyk jpeg",
            {"content": encode(digit(mnist_test).convert("CMYK"), "JPEG"), "headers": {"content-type": "image/jpeg"}},
            200,
            "digit",
        ),
        (
            "palette png with transparency",
            {"content": encode(pal, "PNG", transparency=255), "headers": raw},
            200,
            "digit",
        ),
        ("animated gif: first frame", {"content": gif, "headers": {"content-type": "image/gif"}}, 200, "digit"),
        (
            "exif-rotated jpeg",
            {"content": encode(rotated, "JPEG", quality=95, exif=exif), "headers": {"content-type": "image/jpeg"}},
            200,
            "digit",
        ),
        ("all black", {"content": png_bytes(np.zeros((28, 28), np.uint8)), "headers": raw}, 400, "blank_image"),
        ("all white", {"content": png_bytes(np.full((300, 200), 255, np.uint8)), "headers": raw}, 400, "blank_image"),
        ("wrong field name", {"files": {"image": ("a.png", png, "image/png")}}, 422, "malformed_request"),
        (
            "wrong content type",
            {"content": png, "headers": {"content-type": "application/json"}},
            415,
            "unsupported_media_type",
        ),
        ("no content type", {"content": png}, 415, "unsupported_media_type"),
        (
            "over limit with content-length",
            {"content": b"\0" * (10 * 1024 * 1024 + 1), "headers": raw},
            413,
            "payload_too_large",
        ),
        (
            "over limit, chunked",
            {"content": iter([b"\0" * (6 * 1024 * 1024)] * 2), "headers": raw},
            413,
            "payload_too_large",
        ),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@contextmanager
def running_server(env: dict[str, str] | None = None, ready_timeout: float = 60) -> Iterator[Server]:
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", **(env or {})}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "convlens.app.serve"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}: {proc.stdout.read()[-3000:]}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("server not ready in time")
            time.sleep(0.2)
        yield Server(url, port, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
