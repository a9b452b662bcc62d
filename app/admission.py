"""Bounded concurrency for the expensive endpoints, so they cannot starve cheap ones.

Feature maps, explanations and shift experiments cost 10-100x a prediction. Each
process runs at most `limit` of them at once and lets `queue` more wait; beyond that a
request is answered 503 with Retry-After at once, and predictions and health checks keep
the CPU they need.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.errors import Overloaded


class Gate:
    def __init__(self, limit: int, queue: int, retry_after_s: int) -> None:
        self.limit, self.queue, self.retry_after_s = limit, queue, retry_after_s
        self._slots = asyncio.Semaphore(limit)
        self.active = 0
        self.waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.active + self.waiting >= self.limit + self.queue:
            raise Overloaded(
                f"{self.active} expensive requests running and {self.waiting} waiting; retry shortly",
                {"Retry-After": str(self.retry_after_s)},
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
