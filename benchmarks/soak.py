"""Bounded load test: many clients for a fixed time, some hostile, against a real server.

    python -m benchmarks.soak [--seconds 60] [--clients 64] [--hostile 0.2] [--rss-limit-mb 1500]

Starts `python -m convlens.app.serve` on a loopback port, then runs `--clients` concurrent
clients for `--seconds`: most post good digits (which must all succeed), a share post
hostile uploads (which must all get a 4xx, never a 5xx or a dropped connection), and one
probes /healthz every 0.5 s (which must always answer). Samples the server's RSS (all
its processes) throughout and prints the figures; exits 1 if any bound is broken.
Traffic goes to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

import httpx

from benchmarks.harness import corpus, png_bomb, png_bytes, running_server


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the uvicorn workers)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


async def run(args: argparse.Namespace, url: str, pid: int) -> int:
    from convlens.model.data import load_split

    test = load_split("tests/fixtures/mnist", "test", verify=False, download_missing=False)
    goods = [(png_bytes(x), int(y)) for x, y in zip(test.images[:200], test.labels[:200], strict=True)]
    hostile = [c for c in corpus(test) if c[2] >= 400 and "iter" not in repr(type(c[1].get("content")))]
    hostile.append(
        ("bomb", {"content": png_bomb(20_000), "headers": {"content-type": "image/png"}}, 413, "image_too_large")
    )
    stats = {
        "good": 0,
        "good_failed": 0,
        "wrong_digit": 0,
        "hostile": 0,
        "hostile_5xx": 0,
        "hostile_other": 0,
        "health": 0,
        "health_failed": 0,
        "overloaded": 0,
    }
    rss: list[float] = []
    deadline = time.monotonic() + args.seconds
    limits = httpx.Limits(max_connections=args.clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                if rng.random() < args.hostile:
                    name, kw, status, _ = rng.choice(hostile)
                    try:
                        r = await client.post("/v1/predict", **kw)
                        stats["hostile"] += 1
                        if r.status_code >= 500:
                            stats["hostile_5xx"] += 1
                            print(f"5xx on {name}: {r.status_code} {r.text[:200]}")
                        elif r.status_code != status:
                            stats["hostile_other"] += 1
                    except httpx.HTTPError as e:
                        stats["hostile_5xx"] += 1
                        print(f"connection failed on {name}: {e!r}")
                else:
                    data, label = rng.choice(goods)
                    try:
                        r = await client.post("/v1/predict", files={"file": ("d.png", data, "image/png")})
                    except httpx.HTTPError as e:
                        stats["good_failed"] += 1
                        print(f"good request failed: {e!r}")
                        continue
                    if r.status_code == 503:
                        stats["overloaded"] += 1  # documented back-pressure, counted apart
                        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                    elif r.status_code != 200:
                        stats["good_failed"] += 1
                        print(f"good request got {r.status_code}: {r.text[:200]}")
                    else:
                        stats["good"] += 1
                        stats["wrong_digit"] += r.json()["digit"] != label

        async def prober() -> None:
            while time.monotonic() < deadline:
                t = time.monotonic()
                try:
                    r = await client.get("/healthz", timeout=2)
                    stats["health"] += 1
                    stats["health_failed"] += r.status_code != 200
                except httpx.HTTPError:
                    stats["health_failed"] += 1
                rss.append(rss_mb(pid))
                await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - t)))

        start = time.monotonic()
        await asyncio.gather(prober(), *(worker(i) for i in range(args.clients)))
        elapsed = time.monotonic() - start

    print(f"\n{args.clients} clients for {elapsed:.0f} s against {url}")
    print(
        f"good requests:    {stats['good']} ok ({stats['good'] / elapsed:.0f}/s), {stats['good_failed']} failed, "
        f"{stats['overloaded']} told to retry (503)"
    )
    print(f"accuracy on them: {100 * (1 - stats['wrong_digit'] / max(stats['good'], 1)):.2f}%")
    print(
        f"hostile requests: {stats['hostile']}, {stats['hostile_5xx']} answered 5xx or dropped, "
        f"{stats['hostile_other']} got an unexpected 4xx"
    )
    print(f"health checks:    {stats['health']}, {stats['health_failed']} failed")
    print(
        f"server RSS:       start {rss[0]:.0f} MB, max {max(rss):.0f} MB, end {rss[-1]:.0f} MB "
        f"(bound {args.rss_limit_mb} MB)"
    )
    broken = stats["good_failed"] or stats["hostile_5xx"] or stats["health_failed"] or max(rss) > args.rss_limit_mb
    print("RESULT:", "FAIL" if broken else "PASS")
    return 1 if broken else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60, help="default: %(default)s")
    p.add_argument("--clients", type=int, default=64, help="default: %(default)s")
    p.add_argument("--hostile", type=float, default=0.2, help="share of hostile requests (default: %(default)s)")
    p.add_argument("--rss-limit-mb", type=float, default=1500, help="bound on server RSS (default: %(default)s)")
    p.add_argument("--workers", default="2", help="WEB_CONCURRENCY (default: %(default)s)")
    args = p.parse_args()
    with running_server({"WEB_CONCURRENCY": args.workers}, ready_timeout=120) as server:
        code = asyncio.run(run(args, server.url, server.proc.pid))
        server.terminate()
    sys.exit(code)


if __name__ == "__main__":
    main()
