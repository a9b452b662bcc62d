"""Would ONNX Runtime serve faster than torch here? Forward passes per second, one thread.

    python -m benchmarks.onnx_backend [--model shipped] [--seconds 3]

Both sides compute probabilities from the same (B, 1, 28, 28) input on one thread: torch
as the service runs it (batch norm folded, channels-last, the serving precision chosen
by CONVLENS_PRECISION) and ONNX Runtime on the exported graph (`convlens export`),
alternating, 3 rounds per batch size; prints images/s and the ratio ORT / torch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import torch

from convlens.app.config import Settings
from convlens.app.core.served_model import ServedModel
from convlens.model.export import export


def rate(fn, seconds: float, batch: int) -> float:
    for _ in range(5):
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n * batch / (time.perf_counter() - start)


def main() -> None:
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="shipped")
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    settings = Settings()
    served = ServedModel.load(args.model, settings.model_dir(args.model), settings.precision)
    with tempfile.TemporaryDirectory() as d:
        path = export(served.reference, Path(d) / "m.onnx", "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    print(f"{args.model}: torch serving copy in {served.precision} vs ONNX Runtime {ort.__version__}, 1 thread")
    for batch in (1, 8, 64):
        x = np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)
        xt = (torch.from_numpy(x) - 0.1307) / 0.3081
        ours, theirs = [], []
        for _ in range(3):
            ours.append(rate(lambda: served.probabilities(xt), args.seconds, batch))  # noqa: B023
            theirs.append(rate(lambda: session.run(None, {"image": x}), args.seconds, batch))  # noqa: B023
        print(
            f"  batch {batch:2d}: torch {median(ours):8.0f} images/s, ORT {median(theirs):8.0f} images/s, "
            f"ORT / torch x{median(theirs) / median(ours):.2f} "
            f"(rounds: {', '.join(f'{b / a:.2f}' for a, b in zip(ours, theirs, strict=True))})"
        )


if __name__ == "__main__":
    main()
