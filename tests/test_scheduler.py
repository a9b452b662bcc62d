import asyncio
import threading
import time

import pytest
import torch

from convlens.app.core.errors import Overloaded
from convlens.app.core.scheduler import BatchScheduler, BatchStats
from convlens.model.net import ARTICLE, ConvNet


def ids(n: int, start: int = 0) -> list[torch.Tensor]:
    """Inputs whose only content is their own id, so outputs can be matched to requests."""
    return [torch.full((1, 3), float(i)) for i in range(start, start + n)]


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.delay = delay

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        if self.delay:
            time.sleep(self.delay)
        return x[:, :1] * 10


async def started(fn, **kw) -> BatchScheduler:
    s = BatchScheduler(fn, **kw)
    await s.start()
    return s


def test_outputs_match_unbatched_forward_for_every_request():
    torch.manual_seed(0)
    net = ConvNet(ARTICLE).eval()
    xs = [torch.randn(1, 1, 28, 28) for _ in range(40)]

    async def main():
        s = await started(lambda x: net(x).detach(), max_batch_size=16, max_wait=0.005)
        outs = await asyncio.gather(*(s.submit(x) for x in xs))
        await s.stop()
        return outs

    outs = asyncio.run(main())
    with torch.no_grad():
        for x, out in zip(xs, outs, strict=True):
            torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-5)


def test_each_request_gets_its_own_rows_under_concurrency():
    rec = Recorder(delay=0.005)

    async def main():
        s = await started(rec, max_batch_size=8, max_wait=0.002)
        xs = ids(200)
        xs.append(torch.cat(ids(5, start=1000)))  # one request with five rows
        outs = await asyncio.gather(*(s.submit(x) for x in xs))
        await s.stop()
        return xs, outs

    xs, outs = asyncio.run(main())
    for x, out in zip(xs, outs, strict=True):
        assert out.shape == (len(x), 1)
        assert torch.equal(out, x[:, :1] * 10)
    assert max(rec.calls) > 1, "concurrent requests should share forward passes"
    assert len(rec.calls) < 100
    assert max(rec.calls) <= 8 and sum(rec.calls) == 205


def test_a_lone_request_never_waits_for_company():
    async def main():
        s = await started(Recorder(), max_batch_size=64, max_wait=30.0)
        out = await asyncio.wait_for(s.submit(ids(1)[0]), timeout=5.0)  # would take 30 s if it waited
        await s.stop()
        return out

    assert asyncio.run(main()).item() == 0


def test_oversized_request_runs_alone_in_one_pass():
    rec = Recorder()

    async def main():
        s = await started(rec, max_batch_size=4, max_queue=64)
        out = await s.submit(torch.cat(ids(10)))
        await s.stop()
        return out

    assert asyncio.run(main()).shape == (10, 1)
    assert rec.calls == [10]


def test_a_failing_batch_fails_only_its_own_requests():
    def fn(x: torch.Tensor) -> torch.Tensor:
        if (x == -1).any():
            raise ValueError("poisoned batch")
        return x[:, :1]

    async def main():
        s = await started(fn)
        ok1 = await s.submit(ids(1, 5)[0])
        with pytest.raises(ValueError, match="poisoned"):
            await s.submit(torch.full((1, 3), -1.0))
        ok2 = await asyncio.gather(*(s.submit(x) for x in ids(10)))
        await s.stop()
        return ok1, ok2

    ok1, ok2 = asyncio.run(main())
    assert ok1.item() == 5 and [o.item() for o in ok2] == list(range(10))


def test_wrong_number_of_outputs_is_an_error_not_a_mixup():
    async def main():
        s = await started(lambda x: x[:1, :1])
        with pytest.raises(RuntimeError, match="1 outputs for 3 inputs"):
            await s.submit(torch.cat(ids(3)))
        ok = await s.submit(ids(1, 4)[0])  # the loop survives
        await s.stop()
        return ok

    assert asyncio.run(main()).item() == 4


def test_bounded_queue_answers_overloaded_with_retry_after():
    gate = threading.Event()

    def blocked(x: torch.Tensor) -> torch.Tensor:
        gate.wait(10)
        return x[:, :1]

    async def main():
        s = await started(blocked, max_batch_size=1, max_queue=3, retry_after_s=2)
        first = asyncio.create_task(s.submit(ids(1)[0]))
        await asyncio.sleep(0.05)  # the first one is now inside the forward pass
        queued = [asyncio.create_task(s.submit(x)) for x in ids(3, 1)]
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded) as e:
            await s.submit(ids(1, 99)[0])
        gate.set()
        done = await asyncio.gather(first, *queued)
        await s.stop()
        return e.value, done

    err, done = asyncio.run(main())
    assert isinstance(err, Overloaded) and err.retry_after_s == 2
    assert [d.item() for d in done] == [0, 1, 2, 3]


def test_shutdown_completes_queued_work_and_refuses_new():
    rec = Recorder(delay=0.01)
    sizes: list[int] = []

    async def main():
        s = await started(rec, max_batch_size=4, stats=BatchStats(on_batch=lambda n, w, c: sizes.append(n)))
        tasks = [asyncio.create_task(s.submit(x)) for x in ids(30)]
        await asyncio.sleep(0)  # all enqueued
        await s.stop()
        with pytest.raises(Overloaded):
            await s.submit(ids(1)[0])
        return await asyncio.gather(*tasks)

    outs = asyncio.run(main())
    assert [o.item() for o in outs] == [10 * i for i in range(30)]
    assert sum(sizes) == 30 and all(1 <= n <= 4 for n in sizes)


class ThreadRecorder(Recorder):
    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self.threads: list[str] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.threads.append(threading.current_thread().name)
        return super().__call__(x)


def test_the_only_request_in_flight_runs_on_the_event_loop():
    """Nothing to batch it with: no thread hops. Anything else goes through the queue."""
    rec = ThreadRecorder()
    in_flight = [1]

    async def main():
        s = await started(rec, is_alone=lambda: in_flight[0] == 1)
        loop_thread = threading.current_thread().name
        (out,) = [await s.submit(x) for x in ids(1, start=7)]
        assert out.item() == 70 and rec.threads == [loop_thread]
        in_flight[0] = 3  # other requests are being served: batch
        await s.submit(ids(1)[0])
        assert rec.threads[-1].startswith("inference")
        in_flight[0] = 1
        await s.submit(torch.cat(ids(2)))  # more than one image: never on the loop
        assert rec.threads[-1].startswith("inference")
        await s.stop()

    asyncio.run(main())


def test_requests_arriving_together_are_batched_even_if_each_looked_alone():
    """Each request's task may start before the others have: `is_alone` is asked only after
    the requests that arrived together have all reached the scheduler."""
    rec = ThreadRecorder(delay=0.01)
    in_flight = [0]

    async def main():
        s = await started(rec, max_batch_size=64, is_alone=lambda: in_flight[0] == 1)

        async def request(x: torch.Tensor) -> torch.Tensor:
            in_flight[0] += 1
            try:
                return await s.submit(x)
            finally:
                in_flight[0] -= 1

        outs = await asyncio.gather(*(request(x) for x in ids(20)))
        assert [o.item() for o in outs] == [10.0 * i for i in range(20)]
        await s.stop()

    asyncio.run(main())
    assert all(t.startswith("inference") for t in rec.threads)
    assert len(rec.calls) < 20  # batched, not one by one on the loop


def test_raw_inputs_are_prepared_in_the_inference_thread_and_a_bad_one_fails_alone():
    """submit_to_prepare: `prepare` runs beside the batch's pass, off the event loop; its info
    comes back with the output row, and an input it rejects fails only its own request."""
    rec = Recorder(delay=0.005)
    prepared_in: list[str] = []

    def prepare(i: int) -> tuple[str, torch.Tensor]:
        prepared_in.append(threading.current_thread().name)
        if i == 13:
            raise ValueError("unlucky input")
        return f"info {i}", torch.full((1, 3), float(i))

    batch_sizes: list[int] = []

    async def main():
        s = await started(rec, max_batch_size=8, stats=BatchStats(on_batch=lambda n, w, c: batch_sizes.append(n)))
        outs = await asyncio.gather(*(s.submit_to_prepare(i, prepare) for i in range(30)), return_exceptions=True)
        with pytest.raises(ValueError):  # a batch with nothing left to run
            await s.submit_to_prepare(13, prepare)
        await s.stop()
        return outs

    outs = asyncio.run(main())
    for i, out in enumerate(outs):
        if i == 13:
            assert isinstance(out, ValueError)
            continue
        info, row = out
        assert info == f"info {i}" and row.shape == (1, 1) and row.item() == 10 * i
    assert all(t.startswith("inference") for t in prepared_in)
    assert sum(rec.calls) == 29 and max(rec.calls) > 1
    assert batch_sizes == rec.calls  # metrics count the rows a pass ran, not refused inputs


def test_a_lone_raw_input_is_prepared_on_the_event_loop():
    rec = ThreadRecorder()

    async def main():
        s = await started(rec, is_alone=lambda: True)
        where = []

        def prepare(i: int) -> tuple[None, torch.Tensor]:
            where.append(threading.current_thread().name)
            return None, torch.full((1, 3), float(i))

        info, out = await s.submit_to_prepare(4, prepare)
        assert info is None and out.item() == 40
        assert where == rec.threads == [threading.current_thread().name]
        await s.stop()

    asyncio.run(main())
