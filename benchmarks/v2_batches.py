"""Open Inference Protocol `infer` with 1, 64 and 256 images in one tensor.

    python -m benchmarks.v2_batches [--seconds 8] [--clients 4]

Starts the service as users run it (2 workers) and, per tensor size, lets `--clients`
threads post `/v2/models/shipped/infer` back to back for `--seconds`: requests/s, images/s
and the median request latency. The images are the committed MNIST test digits as FP32
ink maps, JSON-encoded as a Triton or KServe client sends them.
"""

from __future__ import annotations

import argparse
import threading
import time
from statistics import median

import httpx
import numpy as np

from benchmarks.harness import mnist_fixture, running_server

SIZES = (1, 64, 256)


def body(images: np.ndarray) -> dict:
    x = (images / 255.0).astype(np.float32)
    return {"inputs": [{"name": "image", "datatype": "FP32", "shape": [len(x), 1, 28, 28], "data": x.ravel().tolist()}]}


def run(url: str, payload: dict, clients: int, seconds: float) -> tuple[list[float], int]:
    """Latencies of the answered requests, and how many were refused (503: queue full)."""
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    refused = [0]
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = c.post("/v2/models/shipped/infer", json=payload)
                with lock:
                    if r.status_code == 503:
                        refused[0] += 1
                    else:
                        r.raise_for_status()
                        latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, refused[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--clients", type=int, default=2, help="threads posting back to back (default: %(default)s)")
    args = p.parse_args()
    images = mnist_fixture().images
    with running_server({"WEB_CONCURRENCY": "2"}) as server:
        for n in SIZES:
            payload = body(images[:n])
            run(server.url, payload, args.clients, 1.0)  # warm both workers
            lat, refused = run(server.url, payload, args.clients, args.seconds)
            rps = len(lat) / args.seconds
            print(
                f"{n:4d} images a request: {rps:7.1f} req/s, {rps * n:8.0f} images/s, "
                f"p50 {1000 * median(lat):7.1f} ms ({len(lat)} answered, {refused} refused 503, "
                f"{args.clients} clients)",
                flush=True,
            )


if __name__ == "__main__":
    main()
