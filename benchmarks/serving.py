"""Throughput and latency of convlens against the usual ways to serve a CNN.

    python -m benchmarks.serving [--duration 10] [--connections 1,16,64]

Starts each server as a real process on loopback, drives it with wrk (Debian's `wrk`)
posting the same 28x28 PNG as multipart, and prints requests/s, p50 and p99 per server
and the ratios convlens / baseline from this one run:
  convlens  the service as users run it (python -m app.serve, default settings)
  floor     FastAPI endpoint that reads the upload and returns a constant
  tutorial  one forward pass per request inside an async endpoint, same model
  litserve  LitServe with dynamic batching, same model (pip install litserve)
Then images/s of /v1/predict/batch with 64 images per request against the raw forward
pass of the model at batch 64 (same torch threads and precision). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BOUNDARY = "convlensbenchboundary"


def digit_png() -> bytes:
    from model.data import load_split

    x = load_split(ROOT / "tests/fixtures/mnist", "test", verify=False, download_missing=False).images[0]
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="PNG")
    return buf.getvalue()


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


def lua_script(body: bytes, path: str, tmp: Path) -> Path:
    body_file = tmp / f"body-{len(body)}.bin"
    body_file.write_bytes(body)
    script = tmp / f"post-{len(body)}.lua"
    script.write_text(
        f'local f = io.open("{body_file}", "rb")\n'
        "wrk.body = f:read('*all')\nf:close()\n"
        'wrk.method = "POST"\n'
        f'wrk.path = "{path}"\n'
        f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={BOUNDARY}"\n'
    )
    return script


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    body = multipart([("file", digit_png())])
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.post(url + "/v1/predict", content=body, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def start(name: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    py = sys.executable
    commands = {
        "convlens": [py, "-m", "app.serve"],
        "floor": [py, "-m", "uvicorn", "benchmarks.servers.floor:app", "--port", str(port), "--log-level", "warning"],
        "tutorial": [
            py,
            "-m",
            "uvicorn",
            "benchmarks.servers.tutorial:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        "litserve": [py, "-m", "benchmarks.servers.litserve_server", str(port)],
    }
    env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        commands[name], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    assert m, text
    return float(m.group(1)) * UNITS[m.group(2)]


def run_wrk(url: str, script: Path, connections: int, duration: int) -> dict[str, float]:
    threads = 1 if connections < 2 else 2
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def raw_forward_images_per_s(batch: int, threads: int, precision: str, seconds: float = 3.0) -> float:
    """The network alone, exactly as the service runs it (BN folded, channels-last, same precision)."""
    from app.config import Settings
    from app.predictor import Predictor

    torch.set_num_threads(threads)
    s = Settings()
    predictor = Predictor.load(s.weights_path, s.resolved_card_path, precision)  # type: ignore[arg-type]
    x = torch.randn(batch, 1, 28, 28)
    for _ in range(5):
        predictor.logits(x)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        predictor.logits(x)
        n += 1
    return n * batch / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement (default: %(default)s)")
    p.add_argument("--connections", default="1,16,64", help="default: %(default)s")
    p.add_argument("--servers", default="convlens,floor,tutorial,litserve", help="default: %(default)s")
    p.add_argument(
        "--workers", type=int, default=None, help="WEB_CONCURRENCY for all servers (default: each its own default)"
    )
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    conns = [int(c) for c in args.connections.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="convlens-bench-"))
    png = digit_png()
    single = lua_script(multipart([("file", png)]), "/v1/predict", tmp)
    results: dict[str, dict[int, dict[str, float]]] = {}
    env = {"WEB_CONCURRENCY": str(args.workers)} if args.workers else {}
    for i, name in enumerate(args.servers.split(",")):
        port = 8100 + i
        proc = start(name, port, env)
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc)
            results[name] = {}
            for c in conns:
                results[name][c] = r = run_wrk(f"http://127.0.0.1:{port}", single, c, args.duration)
                print(
                    f"{name:9s} c={c:3d}  {r['rps']:8.0f} req/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms"
                    f"  non-2xx {r['non2xx']} {r['socket_errors']}",
                    flush=True,
                )
            if name == "convlens":
                time.sleep(2)  # let the last run's backlog drain
                batch = lua_script(multipart([("files", png)] * 64), "/v1/predict/batch", tmp)
                r = run_wrk(f"http://127.0.0.1:{port}", batch, 2, args.duration)
                results["batch64"] = {2: {**r, "images_per_s": r["rps"] * 64}}
                print(
                    f"batch64   c=  2  {r['rps'] * 64:8.0f} images/s  p50 {r['p50']:7.2f} ms"
                    f"  non-2xx {r['non2xx']} {r['socket_errors']}",
                    flush=True,
                )
        except Exception as e:  # one broken baseline should not hide the others
            print(f"{name}: {e}", flush=True)
            if proc.stderr is not None and proc.poll() is not None:
                print(proc.stderr.read().decode()[-2000:], flush=True)
        finally:
            stop(proc)

    from app.config import Settings
    from app.predictor import resolve_precision

    threads = Settings().torch_threads
    precision = resolve_precision(Settings().precision)
    raw = raw_forward_images_per_s(64, threads, precision)
    print(f"\nraw forward pass, batch 64, {threads} torch thread(s), {precision}: {raw:,.0f} images/s")
    if precision != "float32":
        raw32 = raw_forward_images_per_s(64, threads, "float32")
        print(f"the same in float32 (what the baselines run): {raw32:,.0f} images/s")
    print("\n| server | conns | req/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |")
    for name, by_c in results.items():
        if name == "batch64":
            continue
        for c, r in by_c.items():
            print(f"| {name} | {c} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} |")
    if "convlens" in results:
        ours = results["convlens"]
        print("\nratios (convlens / baseline, same run):")
        for name in results:
            if name in ("convlens", "batch64"):
                continue
            for c in conns:
                if c in results[name] and c in ours:
                    print(
                        f"  vs {name:9s} c={c:3d}: throughput x{ours[c]['rps'] / results[name][c]['rps']:.2f},"
                        f" p50 x{ours[c]['p50'] / results[name][c]['p50']:.2f}"
                    )
    if "batch64" in results:
        ips = results["batch64"][2]["images_per_s"]
        print(f"\nbatch endpoint: {ips:,.0f} images/s = {100 * ips / raw:.0f}% of the raw forward pass at batch 64")


if __name__ == "__main__":
    main()
