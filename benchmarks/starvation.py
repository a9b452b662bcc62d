"""Do expensive requests starve cheap ones? Health latency and predictions under a flood.

    python -m benchmarks.starvation [--duration 10] [--flood 64] [--baseline DIR]

Starts convlens as users run it (python -m convlens.app.serve, 2 workers) and measures, each for
`--duration` seconds:
  quiet   8 wrk connections on /v1/predict alone; a probe GETs /healthz every 20 ms
  flood   the same, while `--flood` more connections post /v1/feature-maps?png=true
          (megabytes of JSON each) as fast as they are answered, or with `--flood-with read`
          a 4000 x 3000 phone photo of a page to /v1/read
and prints /v1/predict req/s (flood / quiet), /healthz p50/p99/max, and what the flood
got (200s and 503s). With --baseline, a convlens checkout at DIR is measured the same way
in the same run (e.g. the commit before the admission gate).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

import httpx

from benchmarks.serving import digit_png, lua_script, multipart, run_wrk, start, stop, wait_ready

PORT = 8790


def probe_health(url: str, stop_at: float, out: list[float]) -> None:
    with httpx.Client(timeout=10) as c:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            c.get(url + "/healthz")
            out.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.02)


def measure(url: str, predict: Path, maps: Path | None, flood: int, duration: int) -> dict[str, float]:
    latencies: list[float] = []
    flooding: subprocess.Popen | None = None
    if maps is not None:
        flooding = subprocess.Popen(
            ["wrk", "-t2", f"-c{flood}", f"-d{duration + 2}s", "--timeout", "30s", "-s", str(maps), url],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # let the flood fill the server first
    prober = threading.Thread(target=probe_health, args=(url, time.perf_counter() + duration, latencies))
    prober.start()
    result = run_wrk(url, predict, 8, duration)
    prober.join()
    row = {"predict_rps": result["rps"], "predict_p99": result["p99"]}
    latencies.sort()
    row |= {
        "health_p50": median(latencies),
        "health_p99": latencies[int(0.99 * (len(latencies) - 1))],
        "health_max": latencies[-1],
        "health_n": len(latencies),
    }
    if flooding is not None:
        text = flooding.communicate()[0]
        total = int(re.search(r"(\d+) requests in", text).group(1))
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        row |= {"flood_requests": total, "flood_non2xx": int(bad.group(1)) if bad else 0}
    return row


def phone_photo() -> bytes:
    """A 12-megapixel JPEG of a page of numbers (`benchmarks/pages.py`)."""
    import numpy as np

    from benchmarks.harness import mnist_fixture
    from benchmarks.pages import FAMILIES, page

    mnist = mnist_fixture()
    return page(FAMILIES["photo_12mp"], (mnist.images, mnist.labels), np.random.default_rng(0)).data


def run_server(name: str, baseline: Path | None, args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, float]]:
    url = f"http://127.0.0.1:{PORT}"
    png = digit_png()
    predict = lua_script(multipart([("file", png)]), "/v1/predict", tmp)
    if args.flood_with == "read":
        maps = lua_script(multipart([("file", phone_photo())]), "/v1/read", tmp)
    else:
        maps_body = multipart([("file", png)]) + b" "  # another length: another script file
        maps = lua_script(maps_body, "/v1/feature-maps?png=true", tmp)
    proc = start(name, PORT, {"WEB_CONCURRENCY": "2"}, baseline)
    try:
        wait_ready(url, proc)
        quiet = measure(url, predict, None, 0, args.duration)
        flooded = measure(url, predict, maps, args.flood, args.duration)
    finally:
        stop(proc)
    return {"quiet": quiet, "flood": flooded}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--flood", type=int, default=64, help="connections posting feature maps (default: %(default)s)")
    p.add_argument("--flood-with", choices=["feature-maps", "read"], default="feature-maps")
    p.add_argument("--baseline", type=Path, help="another convlens checkout, measured the same way")
    args = p.parse_args()
    servers = ["convlens"] + (["baseline"] if args.baseline else [])
    with tempfile.TemporaryDirectory() as d:
        for name in servers:
            r = run_server(name, args.baseline, args, Path(d))
            q, f = r["quiet"], r["flood"]
            print(
                f"{name:9s} predict quiet {q['predict_rps']:7.0f} req/s, under flood {f['predict_rps']:7.0f} req/s "
                f"({f['predict_rps'] / q['predict_rps']:.2f}x); /healthz under flood p50 {f['health_p50']:.1f} ms, "
                f"p99 {f['health_p99']:.1f} ms, max {f['health_max']:.1f} ms (n={f['health_n']}; quiet p99 "
                f"{q['health_p99']:.1f} ms); flood: {f['flood_requests']} requests, {f['flood_non2xx']} not 2xx"
            )


if __name__ == "__main__":
    main()
