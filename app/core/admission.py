"""Bounded concurrency and low CPU priority for the expensive endpoints.

Feature maps, explanations and shift experiments cost 10-100x a prediction. Each
process runs at most `limit` of them at once and lets `queue` more wait (a waiting
request costs no CPU); beyond that a request is answered 503 with Retry-After, after a
short pause (`reject_delay_s`): clients that retry at once, ignoring Retry-After, would
otherwise turn refusals into a storm that costs as much CPU as the HTTP floor's full rate
(measured: 11,000 refusals a second left predictions a tenth of their throughput).
Their heavy work (activations, attributions, pictures, megabytes of JSON) runs in the
gate's own threads at the lowest CPU priority (nice 19), so predictions and health
checks, at normal priority, take the cores first whenever both want them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from convlens.app.core.errors import Overloaded

T = TypeVar("T")
LOWEST_PRIORITY = 19


def _lower_priority() -> None:
    """Linux schedules threads one by one: nice this worker thread alone."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)


class Gate:
    def __init__(self, limit: int, queue: int, retry_after_s: int, reject_delay_s: float = 0.0) -> None:
        self.limit, self.queue, self.retry_after_s = limit, queue, retry_after_s
        self.reject_delay_s = reject_delay_s
        self._slots = asyncio.Semaphore(limit)
        self.active = 0
        self.waiting = 0
        self._executor = ThreadPoolExecutor(limit, thread_name_prefix="expensive", initializer=_lower_priority)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in one of the gate's low-priority threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    @property
    def full(self) -> bool:
        return self.active + self.waiting >= self.limit + self.queue

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.full:
            if self.reject_delay_s:
                await asyncio.sleep(self.reject_delay_s)  # costs no CPU; slows a retry storm
            raise Overloaded(
                f"{self.active} expensive requests running and {self.waiting} waiting; retry shortly",
                self.retry_after_s,
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._slots.release()
