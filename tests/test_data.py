import gzip
import shutil

import numpy as np
import pytest

from convlens.model.data import DatasetError, load_file, load_split, md5_hex, parse_idx, read_bytes, write_idx

FIXTURES = "tests/fixtures/mnist"


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def test_reads_valid_images_and_labels_raw_and_gzip(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    raw = tmp_path / "imgs"
    raw.write_bytes(idx_bytes(images, 0x803))
    gz = tmp_path / "imgs.gz"
    gz.write_bytes(gzip.compress(idx_bytes(images, 0x803)))
    for path in (raw, gz):
        np.testing.assert_array_equal(parse_idx(read_bytes(path)), images)
    labels = np.array([3, 7, 1], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels, 0x801)), labels)


def test_write_idx_round_trips(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(parse_idx(read_bytes(tmp_path / "a.gz")), a)


def test_truncated_file_is_refused():
    payload = idx_bytes(np.zeros((3, 28, 28), np.uint8), 0x803)
    with pytest.raises(DatasetError, match="truncated"):
        parse_idx(payload[:-10])
    with pytest.raises(DatasetError, match="truncated"):
        parse_idx(payload[:6])


def test_wrong_magic_is_refused():
    payload = idx_bytes(np.zeros((3, 28, 28), np.uint8), 0x803)
    with pytest.raises(DatasetError, match="magic"):
        parse_idx(b"\x12\x34" + payload[2:])
    with pytest.raises(DatasetError, match="magic"):
        parse_idx(payload[:2] + b"\x0d" + payload[3:])  # float data, not uint8


def test_truncated_gzip_is_a_dataset_error(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((3, 28, 28), np.uint8), 0x803))
    (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cannot read"):
        read_bytes(tmp_path / "x.gz")


def test_wrong_checksum_is_refused(tmp_path):
    # a fixture file is a valid IDX file, but not MNIST's: verification must notice
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(f"{FIXTURES}/{name}", tmp_path / name)
    with pytest.raises(DatasetError, match="checksum"):
        load_split(tmp_path, "test", download_missing=False)
    split = load_split(tmp_path, "test", verify=False, download_missing=False)
    assert split.images.shape == (1000, 28, 28)
    assert split.md5["t10k-images-idx3-ubyte"] == md5_hex(read_bytes(tmp_path / "t10k-images-idx3-ubyte.gz"))


def test_missing_file_offline_says_where_to_put_it(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(DatasetError) as e:
        load_split(tmp_path, "train")
    message = str(e.value)
    assert "\n" not in message
    assert str(tmp_path) in message and "could not be downloaded" in message


def test_download_verifies_the_checksum(tmp_path, monkeypatch):
    real = gzip.compress(idx_bytes(np.array([1, 2], np.uint8), 0x801))

    class Resp:
        def __init__(self, body):
            self.body = body

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self):
            return self.body

    calls = []

    def fake(url, timeout):
        calls.append(url)
        # first mirror serves something corrupt, the second the right payload
        return Resp(b"garbage" if len(calls) == 1 else real)

    monkeypatch.setattr("urllib.request.urlopen", fake)
    from convlens.model.data import download

    path = download("t10k-labels-idx1-ubyte", tmp_path, md5_hex(gzip.decompress(real)))
    assert len(calls) == 2
    arr, _ = load_file(path, verify=False)
    np.testing.assert_array_equal(arr, [1, 2])


def test_fixture_subset_loads():
    train = load_split(FIXTURES, "train", verify=False, download_missing=False)
    assert train.images.shape == (2000, 28, 28) and train.labels.shape == (2000,)
    assert set(np.unique(train.labels)) == set(range(10))
