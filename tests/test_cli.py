"""The `convlens` command end to end: in-process, against a real server, and exit codes."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from benchmarks.harness import FIXTURES, ROOT, mnist_fixture, running_server
from benchmarks.pages import FAMILIES, page

UPLOADS = sorted((FIXTURES / "uploads").glob("*.png"))
LABELS = {p: int(p.stem.split("_")[-1]) for p in UPLOADS}


def convlens(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The console script as installed (`convlens`), run from another directory."""
    return subprocess.run(
        [sys.executable, "-m", "convlens.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd or ROOT
    )


def test_predict_in_process_reads_every_file_and_says_the_digit(tmp_path):
    out = convlens("predict", *map(str, UPLOADS), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["digit"] for a in answers] == [LABELS[p] for p in UPLOADS]
    assert all(a["model"] == "shipped" and abs(sum(a["probabilities"]) - 1) < 1e-6 for a in answers)
    text = convlens("predict", str(UPLOADS[0]), "--model", "article", cwd=tmp_path)
    assert text.returncode == 0 and text.stdout.startswith(f"{UPLOADS[0]}: {LABELS[UPLOADS[0]]} (")
    assert "article" in text.stdout


def test_exit_codes_scripts_can_rely_on(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    out = convlens("predict", str(UPLOADS[0]), str(bad))
    assert out.returncode == 1 and "unreadable_image" in out.stdout and f"{UPLOADS[0]}: " in out.stdout
    assert convlens("predict", str(UPLOADS[0]), "--model", "nope").returncode == 2
    assert convlens("predict").returncode == 2  # no files: usage
    unreachable = convlens("predict", str(UPLOADS[0]), "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 3 and unreachable.stderr.startswith("convlens: cannot reach")


def test_read_prints_the_numbers_of_each_photo(tmp_path):
    mnist = mnist_fixture()
    sheet = page(FAMILIES["ordinary"], (mnist.images, mnist.labels), np.random.default_rng(11))
    photo = tmp_path / "page.png"
    photo.write_bytes(sheet.data)
    out = convlens("read", str(photo), str(UPLOADS[0]), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"{photo}: " + " ".join(n.text for n in sheet.numbers)
    assert lines[1] == f"{UPLOADS[0]}: {LABELS[UPLOADS[0]]}"
    full = json.loads(convlens("read", str(photo), "--json", cwd=tmp_path).stdout)
    assert [n["text"] for n in full["numbers"]] == [n.text for n in sheet.numbers]
    assert all(len(d["box"]) == 4 for n in full["numbers"] for d in n["digits"])
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert convlens("read", str(bad)).returncode == 1


@pytest.mark.slow
def test_predict_and_feature_maps_against_a_real_server(tmp_path):
    with running_server({"WEB_CONCURRENCY": "1"}) as server:
        out = convlens("predict", *map(str, UPLOADS), "--url", server.url, "--model", "mlp", "--json")
        assert out.returncode == 0, out.stderr
        answers = [json.loads(line) for line in out.stdout.splitlines()]
        assert [a["model"] for a in answers] == ["mlp"] * len(UPLOADS)
        local = [
            json.loads(x)
            for x in convlens("predict", *map(str, UPLOADS), "--model", "mlp", "--json").stdout.splitlines()
        ]
        assert [a["digit"] for a in answers] == [a["digit"] for a in local]
        png = tmp_path / "conv1.png"
        r = convlens("feature-maps", str(UPLOADS[0]), "--layer", "conv1", "-o", str(png), "--url", server.url)
        assert r.returncode == 0, r.stderr
        remote = Image.open(io.BytesIO(png.read_bytes()))
        r = convlens("feature-maps", str(UPLOADS[0]), "--layer", "conv1", "-o", str(png))
        assert r.returncode == 0 and Image.open(io.BytesIO(png.read_bytes())).size == remote.size
        missing = convlens("feature-maps", str(UPLOADS[0]), "--layer", "conv9", "-o", str(png), "--url", server.url)
        assert missing.returncode == 1 and "unknown_layer" in missing.stderr
        remote_read = convlens("read", str(UPLOADS[0]), "--url", server.url)
        assert remote_read.returncode == 0 and remote_read.stdout == f"{UPLOADS[0]}: {LABELS[UPLOADS[0]]}\n"
        assert server.terminate() == 0
