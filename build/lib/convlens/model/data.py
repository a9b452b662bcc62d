"""MNIST: read, validate and (with internet) fetch the four standard IDX files.

IDX is LeCun's format: a big-endian magic (0x0801 labels, 0x0803 images), the
dimension sizes, then raw uint8 payload. Files may be gzip-compressed or raw.
Checksums are of the decompressed payload, so re-compressed copies still verify.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


@dataclass(frozen=True)
class IdxFile:
    stem: str  # name without ".gz"
    md5: str  # of the decompressed payload
    count: int


SPLITS: dict[str, tuple[IdxFile, IdxFile]] = {
    "train": (
        IdxFile("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 60000),
        IdxFile("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 60000),
    ),
    "test": (
        IdxFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 10000),
        IdxFile("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 10000),
    ),
}


class DatasetError(Exception):
    """A data file is missing, truncated, corrupt or cannot be fetched."""


def read_bytes(path: Path) -> bytes:
    """The decompressed payload of a raw or gzip-compressed file."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        return raw
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e


def parse_idx(payload: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode an IDX payload of uint8 data, checking magic and size."""
    if len(payload) < 4:
        raise DatasetError(f"{source}: truncated header ({len(payload)} bytes)")
    zero, dtype_code, ndim = payload[0] << 8 | payload[1], payload[2], payload[3]
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise DatasetError(
            f"{source}: bad magic number 0x{int.from_bytes(payload[:4], 'big'):08x} "
            "(expected 0x00000801 labels or 0x00000803 images)"
        )
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise DatasetError(f"{source}: truncated header")
    dims = tuple(int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(payload) != expected:
        raise DatasetError(
            f"{source}: {len(payload)} bytes but dimensions {dims} need {expected}"
            + (" (truncated)" if len(payload) < expected else " (trailing data)")
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims).copy()


def md5_hex(payload: bytes) -> str:
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def find_file(data_dir: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    return None


def download(stem: str, data_dir: Path, md5: str, timeout: float = 30.0) -> Path:
    """Fetch `stem.gz` from the first mirror that serves a file with the right payload."""
    data_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MIRRORS:
        url = mirror + stem + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                raw = resp.read()
            payload = gzip.decompress(raw)
        except (OSError, urllib.error.URLError, EOFError, gzip.BadGzipFile) as e:
            errors.append(f"{url}: {e}")
            continue
        if md5_hex(payload) != md5:
            errors.append(f"{url}: checksum mismatch")
            continue
        fd, tmp = tempfile.mkstemp(dir=data_dir, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        shutil.move(tmp, data_dir / (stem + ".gz"))
        log.info("downloaded %s", url)
        return data_dir / (stem + ".gz")
    raise DatasetError(
        f"MNIST file {stem}.gz is not in {data_dir} and could not be downloaded "
        f"({'; '.join(errors)}); put the four MNIST .gz files in {data_dir}"
    )


def load_file(path: Path, spec: IdxFile | None = None, verify: bool = True) -> tuple[np.ndarray, str]:
    """Array and payload md5 of one IDX file; `verify` checks the standard checksum."""
    payload = read_bytes(path)
    digest = md5_hex(payload)
    if verify and spec is not None and digest != spec.md5:
        raise DatasetError(f"{path}: checksum {digest} does not match MNIST's {spec.md5}")
    return parse_idx(payload, str(path)), digest


@dataclass
class Split:
    images: np.ndarray  # (N, 28, 28) uint8, white ink on black
    labels: np.ndarray  # (N,) uint8
    md5: dict[str, str]  # file stem -> payload md5


def load_split(data_dir: str | Path, split: str, *, verify: bool = True, download_missing: bool = True) -> Split:
    """Load "train" or "test"; `verify=False` accepts subsets such as test fixtures."""
    data_dir = Path(data_dir)
    img_spec, lbl_spec = SPLITS[split]
    arrays, digests = [], {}
    for spec in (img_spec, lbl_spec):
        path = find_file(data_dir, spec.stem)
        if path is None:
            if not download_missing:
                raise DatasetError(f"{spec.stem}(.gz) not found in {data_dir}")
            path = download(spec.stem, data_dir, spec.md5)
        array, digest = load_file(path, spec, verify)
        if verify and len(array) != spec.count:
            raise DatasetError(f"{path}: {len(array)} items, expected {spec.count}")
        arrays.append(array)
        digests[spec.stem] = digest
    images, labels = arrays
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(f"{split} images have shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{split}: {len(images)} images but {labels.shape} labels")
    if labels.max(initial=0) > 9:
        raise DatasetError(f"{split}: label {labels.max()} out of range 0-9")
    return Split(images, labels, digests)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as gzip IDX (for fixtures and subsets)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = LABELS_MAGIC if array.ndim == 1 else IMAGES_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + array.tobytes())
