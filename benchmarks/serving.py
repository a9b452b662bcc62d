"""Throughput and latency of convlens against the usual ways to serve a CNN.

    python -m benchmarks.serving [--duration 10] [--connections 1,16,64]

Starts each server as a real process on loopback, drives it with wrk (Debian's `wrk`)
posting the same 28x28 PNG as multipart, and prints requests/s, p50 and p99 per server
and the ratios convlens / baseline from this one run. The machine's speed drifts by tens
of percent over minutes, so servers are measured interleaved: all start once, the ones
not being measured are paused (SIGSTOP: no CPU, not even a polling loop), and for each
connection count every server takes its turn, `--rounds` times in rotating order;
the table gives medians and each ratio comes from back-to-back measurements.
  convlens  the service as users run it (python -m convlens.app.serve, default settings)
  floor     FastAPI endpoint that reads the upload and returns a constant
  tutorial  one forward pass per request inside an async endpoint, same model
  tutorial2 the same with two uvicorn workers
  litserve  LitServe with dynamic batching, same model (pip install litserve)
  torchserve TorchServe 0.12, 2 workers, batches of 32 / 5 ms (Java + pip install torchserve
            torch-model-archiver; benchmarks/servers/torchserve_*.py)
Every row also gives the server's CPU time per request and the cores it used (from /proc,
every process of the server's session).
Then images/s of /v1/predict/batch with 64 images per request against the raw forward
pass of the model at batch 64 (same torch threads and precision), measured in this
process right before each batch run, `--rounds` times. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
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
from statistics import median

import httpx
import torch
from PIL import Image

from benchmarks.harness import BOUNDARY, multipart
from convlens.app.config import Precision

ROOT = Path(__file__).resolve().parent.parent


def digit_png() -> bytes:
    from convlens.model.data import load_split

    x = load_split(ROOT / "tests/fixtures/mnist", "test", verify=False, download_missing=False).images[0]
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="PNG")
    return buf.getvalue()


def lua_script(body: bytes, path: str, tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
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


PREDICT_PATH = {"torchserve": "/predictions/convlens"}  # every other server: /v1/predict


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60, path: str = "/v1/predict") -> None:
    deadline = time.time() + timeout
    body = multipart([("file", digit_png())])
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.post(url + path, content=body, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def start(
    name: str, port: int, env: dict[str, str], baseline: Path | None = None, baseline_env: dict[str, str] | None = None
) -> subprocess.Popen:
    py = sys.executable
    root = baseline if name == "baseline" and baseline else ROOT

    def uvicorn(app: str, *extra: str) -> list[str]:
        return [py, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning", *extra]

    commands = {
        "convlens": [py, "-m", "convlens.app.serve"],
        # convlens from another checkout (--baseline), namespaced or from before it was
        "baseline": [py, "-m", "convlens.app.serve" if (root / "convlens").is_dir() else "app.serve"],
        "floor": uvicorn("benchmarks.servers.floor:app"),
        "tutorial": uvicorn("benchmarks.servers.tutorial:app"),
        "tutorial2": uvicorn("benchmarks.servers.tutorial:app", "--workers", "2"),
        "litserve": [py, "-m", "benchmarks.servers.litserve_server", str(port)],
        "torchserve": [py, "-m", "benchmarks.servers.torchserve_server", str(port)],
    }
    env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1", "PYTHONPATH": str(root)}
    if name == "baseline":
        env.update(baseline_env or {})
    return subprocess.Popen(
        commands[name], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def stop(proc: subprocess.Popen) -> None:
    """The server's whole session (workers, a JVM) goes, paused or not."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(20)
    with contextlib.suppress(ProcessLookupError):
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


def raw_forward_images_per_s(batch: int, threads: int, precision: Precision, seconds: float = 3.0) -> float:
    """The network alone, exactly as the service runs it (BN folded, channels-last, same precision)."""
    from convlens.app.config import Settings
    from convlens.app.core.served_model import ServedModel

    torch.set_num_threads(threads)
    s = Settings()
    predictor = ServedModel.load(s.default_model, s.model_dir(s.default_model), precision)
    x = torch.randn(batch, 1, 28, 28)
    for _ in range(5):
        predictor.logits(x)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        predictor.logits(x)
        n += 1
    return n * batch / (time.perf_counter() - start)


def pause(proc: subprocess.Popen, paused: bool) -> None:
    with contextlib.suppress(ProcessLookupError):  # a server that died is reported by wrk
        os.killpg(proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU of every process in a session (a server and its workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[3]) == sid:  # field 6 of stat: the session id
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=2, help="measurements per server and cell (default: %(default)s)")
    p.add_argument("--connections", default="1,16,64", help="default: %(default)s")
    p.add_argument(
        "--servers", default="convlens,floor,tutorial,tutorial2,litserve,torchserve", help="default: %(default)s"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="WEB_CONCURRENCY for all servers (default: each its own default)"
    )
    p.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of convlens (e.g. a git worktree of main) measured as server 'baseline'",
    )
    p.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the baseline server only (e.g. CONVLENS_VERDICT=false); repeatable",
    )
    args = p.parse_args()
    if args.baseline and "baseline" not in args.servers.split(","):
        args.servers += ",baseline"
    return args


def start_all(
    names: list[str], env: dict[str, str], baseline: Path | None, baseline_env: dict[str, str]
) -> tuple[dict, dict[str, str]]:
    """Every server started, ready and paused; one that fails is reported and left out."""
    procs: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    for i, name in enumerate(names):
        port = 8100 + i
        procs[name] = proc = start(name, port, env, baseline, baseline_env)
        urls[name] = f"http://127.0.0.1:{port}"
        try:
            wait_ready(urls[name], proc, timeout=120, path=PREDICT_PATH.get(name, "/v1/predict"))
        except Exception as e:  # one broken baseline should not hide the others
            print(f"{name}: {e}", flush=True)
            if proc.stderr is not None and proc.poll() is not None:
                print(proc.stderr.read().decode()[-2000:], flush=True)
            stop(procs.pop(name))
            continue
        pause(proc, True)
    return procs, urls


def measure(proc: subprocess.Popen, url: str, script: Path, connections: int, duration: int) -> dict[str, float]:
    """One wrk run against an otherwise paused server, with the server's CPU per request."""
    pause(proc, False)
    try:
        run_wrk(url, script, connections, 1)  # warm the connections and caches
        cpu = session_cpu_seconds(proc.pid)
        r = run_wrk(url, script, connections, duration)
        cpu = session_cpu_seconds(proc.pid) - cpu
    finally:
        pause(proc, True)
    r["cpu_ms"] = 1000 * cpu / max(1.0, r["rps"] * duration)
    r["cores"] = cpu / duration
    return r


Samples = dict[str, dict[int, list[dict[str, float]]]]


def measure_rounds(procs: dict, urls: dict[str, str], scripts: dict[str, Path], conns: list[int], args) -> Samples:
    """Every server in turn for each connection count, in rotating order each round."""
    samples: Samples = {}
    names = list(procs)
    for rnd in range(args.rounds):
        for c in conns:
            for name in names[rnd % len(names) :] + names[: rnd % len(names)]:
                r = measure(procs[name], urls[name], scripts[name], c, args.duration)
                samples.setdefault(name, {}).setdefault(c, []).append(r)
                print(
                    f"round {rnd + 1} {name:9s} c={c:3d}  {r['rps']:8.0f} req/s  p50 {r['p50']:7.2f} ms"
                    f"  p99 {r['p99']:7.2f} ms  {r['cpu_ms']:.2f} CPU ms/req  {r['cores']:.2f} cores"
                    f"  non-2xx {r['non2xx']} {r['socket_errors']}",
                    flush=True,
                )
    return samples


def measure_batches(proc, url: str, png: bytes, tmp: Path, args, threads: int, precision) -> list[tuple[float, float]]:
    """(batch endpoint images/s, raw forward images/s) per round; the raw pass is measured
    right before each batch run (server paused), so a ratio never compares two different
    moments of this drifting machine."""
    script = lua_script(multipart([("files", png)] * 64), "/v1/predict/batch", tmp)
    out = []
    for _ in range(args.rounds):
        raw = raw_forward_images_per_s(64, threads, precision)
        batch = measure(proc, url, script, 2, args.duration)
        out.append((batch["rps"] * 64, raw))
        print(
            f"batch64   c=  2  {batch['rps'] * 64:8.0f} images/s  p50 {batch['p50']:7.2f} ms"
            f"  raw forward {raw:8.0f} images/s  non-2xx {batch['non2xx']} {batch['socket_errors']}",
            flush=True,
        )
    return out


def report(samples: Samples, batches: list[tuple[float, float]], conns: list[int], args) -> None:
    print(f"\nmedians of {args.rounds} round(s), {args.duration} s each:")
    print("\n| server | conns | req/s | p50 ms | p99 ms | CPU ms/req | cores |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, by_c in samples.items():
        for c, rs in by_c.items():
            med = {k: median([r[k] for r in rs]) for k in ("rps", "p50", "p99", "cpu_ms", "cores")}
            print(
                f"| {name} | {c} | {med['rps']:.0f} | {med['p50']:.2f} | {med['p99']:.2f} "
                f"| {med['cpu_ms']:.2f} | {med['cores']:.2f} |"
            )
    if "convlens" in samples:
        ours = samples["convlens"]
        print("\nratios convlens / baseline, one per round (each from back-to-back runs), and their median:")
        for name in samples:
            if name == "convlens":
                continue
            for c in conns:
                if c not in samples[name] or c not in ours:
                    continue
                pairs = list(zip(ours[c], samples[name][c], strict=True))
                tput = [a["rps"] / b["rps"] for a, b in pairs]
                lat = [a["p50"] / b["p50"] for a, b in pairs]
                print(
                    f"  vs {name:9s} c={c:3d}: throughput x{median(tput):.2f} ({', '.join(f'{t:.2f}' for t in tput)}),"
                    f" p50 x{median(lat):.2f} ({', '.join(f'{t:.2f}' for t in lat)})"
                )
    if batches:
        shares = [100 * ips / raw for ips, raw in batches]
        print(
            f"\nbatch endpoint (64 images per request) / raw forward pass at batch 64, measured just before it:"
            f" {median(shares):.0f}% ({', '.join(f'{x:.0f}%' for x in shares)});"
            f" images/s {median([ips for ips, _ in batches]):,.0f} vs {median([raw for _, raw in batches]):,.0f}"
        )


def main() -> None:
    from convlens.app.config import Settings
    from convlens.app.core.precision import resolve_precision

    args = parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    threads = Settings().torch_threads
    precision = resolve_precision(Settings().precision)
    conns = [int(c) for c in args.connections.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="convlens-bench-"))
    png = digit_png()
    body = multipart([("file", png)])
    env = {"WEB_CONCURRENCY": str(args.workers)} if args.workers else {}
    baseline_env = dict(kv.split("=", 1) for kv in args.baseline_env)
    procs, urls = start_all(args.servers.split(","), env, args.baseline, baseline_env)
    batches: list[tuple[float, float]] = []
    try:
        scripts = {name: lua_script(body, PREDICT_PATH.get(name, "/v1/predict"), tmp / name) for name in procs}
        samples = measure_rounds(procs, urls, scripts, conns, args)
        if "convlens" in procs:
            batches = measure_batches(procs["convlens"], urls["convlens"], png, tmp, args, threads, precision)
    finally:
        for proc in procs.values():
            pause(proc, False)
            stop(proc)
    raw = raw_forward_images_per_s(64, threads, precision)
    print(f"\nraw forward pass, batch 64, {threads} torch thread(s), {precision}: {raw:,.0f} images/s")
    if precision != "float32":
        raw32 = raw_forward_images_per_s(64, threads, "float32")
        print(f"the same in float32 (what the baselines run): {raw32:,.0f} images/s")
    report(samples, batches, conns, args)


if __name__ == "__main__":
    main()
