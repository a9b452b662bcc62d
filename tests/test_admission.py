"""Expensive requests are bounded; over the bound they get 503, and health stays quick."""

import asyncio
import time

import httpx
import pytest

from benchmarks.harness import png_bytes, running_server
from convlens.app.core.admission import Gate
from convlens.app.core.errors import Overloaded


def test_gate_runs_limit_lets_queue_wait_and_refuses_the_rest():
    async def scenario() -> tuple[list[str], int]:
        gate = Gate(limit=2, queue=1, retry_after_s=3)
        release = asyncio.Event()
        peak = 0

        async def job() -> str:
            nonlocal peak
            try:
                async with gate.slot():
                    peak = max(peak, gate.active)
                    await release.wait()
                    return "ran"
            except Overloaded as e:
                assert e.retry_after_s == 3
                return "refused"

        tasks = [asyncio.create_task(job()) for _ in range(5)]
        await asyncio.sleep(0.01)
        assert (gate.active, gate.waiting) == (2, 1)
        release.set()
        results = await asyncio.gather(*tasks)
        assert (gate.active, gate.waiting) == (0, 0)
        return results, peak

    results, peak = asyncio.run(scenario())
    assert sorted(results) == ["ran", "ran", "ran", "refused", "refused"]
    assert peak == 2


@pytest.mark.slow
def test_a_flood_of_feature_maps_gets_503_and_health_answers(mnist_test):
    env = {"WEB_CONCURRENCY": "1", "CONVLENS_EXPENSIVE_CONCURRENCY": "1", "CONVLENS_EXPENSIVE_QUEUE": "2"}
    files = {"file": ("d.png", png_bytes(mnist_test.images[0]), "image/png")}

    async def flood(url: str) -> tuple[list[int], list[str], float]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            maps = [c.post("/v1/feature-maps?png=true", files=files) for _ in range(40)]
            started = time.perf_counter()
            replies = await asyncio.gather(*maps, c.get("/healthz"))
            health = replies[-1]
            assert health.status_code == 200
            statuses = [r.status_code for r in replies[:-1]]
            retry = [r.headers.get("retry-after", "") for r in replies[:-1] if r.status_code == 503]
            return statuses, retry, time.perf_counter() - started

    with running_server(env) as server:
        statuses, retry, _ = asyncio.run(flood(server.url))
        assert set(statuses) <= {200, 503} and statuses.count(200) >= 3 and statuses.count(503) >= 1
        assert all(r == "1" for r in retry)
        r = httpx.post(server.url + "/v1/feature-maps", files=files)
        assert r.status_code == 200  # the gate is free again once the flood is over
        assert server.terminate() == 0


def test_a_refusal_waits_its_pause_so_a_retry_storm_slows_down():
    async def refusal_time() -> float:
        gate = Gate(limit=1, queue=0, retry_after_s=1, reject_delay_s=0.05)
        async with gate.slot():
            started = time.perf_counter()
            try:
                async with gate.slot():
                    pass
            except Overloaded:
                return time.perf_counter() - started
        raise AssertionError("the second request was not refused")

    assert asyncio.run(refusal_time()) >= 0.05
