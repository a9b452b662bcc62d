"""Adaptive micro-batching: many concurrent requests, one forward pass.

Requests enqueue their input rows; one loop takes everything queued (up to
`max_batch_size` rows), runs a single forward pass in a worker thread, and hands each
request back its own rows. A lone request is never made to wait; only when several are
already queued does the loop wait up to `max_wait` for more to fill the batch. While a
pass runs, new requests queue up and form the next batch on their own.

When the caller is the only request the process is serving (`is_alone`), its one image runs
right away on the event loop: there is nothing to batch it with, and the two thread
hops would cost a third of a 28 x 28 prediction's latency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from convlens.app.core.errors import Overloaded

log = logging.getLogger(__name__)
T = TypeVar("T")


Prepare = Callable[[Any], tuple[Any, torch.Tensor]]  # an input -> (info, its rows)


def _as_rows(x: torch.Tensor) -> tuple[None, torch.Tensor]:
    return None, x


@dataclass
class _Job:
    x: Any  # what `prepare` turns into this request's rows
    rows: int
    prepare: Prepare
    future: asyncio.Future[tuple[Any, torch.Tensor]]
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Hooks for metrics; no-ops by default so the scheduler does not depend on them."""

    on_batch: Callable[[int, float, float], None] = lambda size, wait_s, compute_s: None
    on_depth: Callable[[int], None] = lambda depth: None


class BatchScheduler:
    def __init__(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        max_batch_size: int = 64,
        max_wait: float = 0.002,
        max_queue: int = 512,
        retry_after_s: int = 1,
        stats: BatchStats | None = None,
        is_alone: Callable[[], bool] = lambda: False,
    ) -> None:
        self.fn = fn
        self.is_alone = is_alone
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.stats = stats or BatchStats()
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._rows = 0  # rows waiting, for the bound
        self._task: asyncio.Task[None] | None = None
        self._carry: _Job | None = None
        self._busy = False  # a pass is running in the executor
        self._closing = False
        # one thread: torch parallelises inside the pass; two passes would fight for cores
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    @property
    def depth(self) -> int:
        return self._rows

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="batch-scheduler")

    async def stop(self) -> None:
        """Finish all queued work, then stop the loop."""
        self._closing = True
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def submit(self, x: torch.Tensor) -> torch.Tensor:
        """Queue the rows of one request and wait for their outputs."""
        return (await self._submit(x, len(x), _as_rows))[1]

    async def submit_to_prepare(
        self, raw: Any, prepare: Callable[[Any], tuple[T, torch.Tensor]]
    ) -> tuple[T, torch.Tensor]:
        """Queue one input that `prepare` turns into (info, one row) in the inference
        thread, just before the pass; returns (info, output row). Preparing a batch's
        inputs back to back there costs less than one at a time between other work on the
        event loop; an exception from `prepare` fails this input alone."""
        return await self._submit(raw, 1, prepare)

    async def _submit(self, x: Any, rows: int, prepare: Prepare) -> tuple[Any, torch.Tensor]:
        if self._closing or self._task is None:
            raise Overloaded("the server is shutting down", self.retry_after_s)
        if self._rows + rows > self.max_queue:
            raise Overloaded(
                f"inference queue is full ({self._rows} images waiting); retry shortly",
                self.retry_after_s,
            )
        if rows == 1 and self._idle():
            # let requests that arrived with this one reach the scheduler (or at least
            # start) first: only then does `is_alone` tell a lone request from the first of many
            await asyncio.sleep(0)
            if self._idle() and self.is_alone():
                return self._run_inline(x, prepare)
        job = _Job(x, rows, prepare, asyncio.get_running_loop().create_future())
        self._rows += rows
        self.stats.on_depth(self._rows)
        self._queue.put_nowait(job)
        return await job.future

    def _idle(self) -> bool:
        return not self._busy and self._carry is None and self._queue.empty()

    def _run_inline(self, x: Any, prepare: Prepare) -> tuple[Any, torch.Tensor]:
        started = time.perf_counter()
        info, rows = prepare(x)  # an exception here is this request's alone
        out = self._forward(rows)
        self.stats.on_batch(len(rows), 0.0, time.perf_counter() - started)
        return info, out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fn(x)
        if len(out) != len(x):
            raise RuntimeError(f"model returned {len(out)} outputs for {len(x)} inputs")
        return out

    async def _next_batch(self, first: _Job) -> tuple[list[_Job], bool]:
        """Gather jobs behind `first`; returns them and whether the stop marker was seen."""
        jobs, rows = [first], first.rows
        deadline = time.perf_counter() + self.max_wait
        while rows < self.max_batch_size:
            if not self._queue.empty():
                job = self._queue.get_nowait()
            elif len(jobs) > 1 and self.max_wait > 0:
                # several requests arrived together: more are likely on their way
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                break
            if job is None:
                return jobs, True
            if rows + job.rows > self.max_batch_size:
                self._carry = job  # too big to join: it opens the next batch
                break
            jobs.append(job)
            rows += job.rows
        return jobs, False

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while True:
            first: _Job | None
            if self._carry is not None:
                first, self._carry = self._carry, None
            elif stopping and self._queue.empty():
                return
            else:
                first = await self._queue.get()
                if first is None:
                    if self._queue.empty():
                        return
                    stopping = True
                    continue
            jobs, saw_stop = await self._next_batch(first)
            stopping = stopping or saw_stop
            await self._run(loop, jobs)

    def _compute(self, jobs: list[_Job]) -> tuple[list[Any], int]:
        """In the inference thread: prepare what needs it, one pass, each job its result
        (or the exception that failed it alone), and how many rows the pass ran."""
        results: list[Any] = [None] * len(jobs)
        infos: list[Any] = [None] * len(jobs)
        xs, live = [], []
        for i, j in enumerate(jobs):
            try:
                infos[i], x = j.prepare(j.x)
            except Exception as e:  # handed to the request it belongs to
                results[i] = e
                continue
            xs.append(x)
            live.append(i)
        if not live:
            return results, 0
        out = self._forward(xs[0] if len(xs) == 1 else torch.cat(xs))
        row = 0
        for i in live:
            results[i] = infos[i], out[row : row + jobs[i].rows]
            row += jobs[i].rows
        return results, len(out)

    async def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        started = time.perf_counter()
        n_rows = sum(j.rows for j in jobs)
        self._rows -= n_rows
        self.stats.on_depth(self._rows)
        wait = started - min(j.enqueued for j in jobs)
        self._busy = True
        try:
            results, ran = await loop.run_in_executor(self._executor, self._compute, jobs)
        except Exception as e:  # a failing batch fails its own requests, not the loop
            log.exception("inference batch of %d failed", n_rows)
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(e)
            return
        finally:
            self._busy = False
        if ran:
            self.stats.on_batch(ran, wait, time.perf_counter() - started)
        for j, result in zip(jobs, results, strict=True):
            if j.future.done():  # the client may have gone away
                continue
            if isinstance(result, Exception):
                j.future.set_exception(result)
            else:
                j.future.set_result(result)
