"""Worker processes that each own a listening socket (SO_REUSEPORT), so the kernel spreads
connections over them.

uvicorn's own multi-worker mode has every worker accept from one shared socket; whoever
wakes first takes a connection, and with keep-alive clients an unlucky burst leaves one
worker with every connection and the other idle for as long as they stay open (measured:
16 connections, one worker at 0.97 cores, the other at 0.00). With one socket per worker
bound to the same port, Linux hashes each new connection to one of them.

The supervisor starts the workers, restarts one that dies, and on SIGTERM or SIGINT
passes the signal on and waits for every worker to drain (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("convlens.workers")


@dataclass(frozen=True)
class WorkerConfig:
    app: str
    host: str
    port: int
    grace_seconds: float
    uvicorn_options: dict[str, Any]


def reuseport_available() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _exit_cleanly(signum: int, _frame: object) -> None:
    # uvicorn drains, restores this handler and re-raises the signal it caught: exit 0
    sys.exit(0)


def _worker(config: WorkerConfig) -> None:
    import uvicorn

    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    sock = bind(config.host, config.port)
    server = uvicorn.Server(
        uvicorn.Config(
            config.app,
            timeout_graceful_shutdown=config.grace_seconds,  # type: ignore[arg-type]  # it waits any float
            **config.uvicorn_options,
        )
    )
    server.run(sockets=[sock])


class Supervisor:
    def __init__(self, config: WorkerConfig, workers: int) -> None:
        self.config = config
        self.n = workers
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list[BaseProcess] = []
        self.stopping = False

    def _spawn(self) -> BaseProcess:
        proc = self.ctx.Process(target=_worker, args=(self.config,), name="convlens-worker")
        proc.start()
        return proc

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for proc in self.procs:
            if proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signum)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.procs = [self._spawn() for _ in range(self.n)]
        log.info("%d workers on %s:%d, one SO_REUSEPORT socket each", self.n, self.config.host, self.config.port)
        while not self.stopping:
            for i, proc in enumerate(self.procs):
                if not proc.is_alive() and not self.stopping:
                    log.warning("worker %s exited with %s; starting another", proc.pid, proc.exitcode)
                    self.procs[i] = self._spawn()
            time.sleep(0.2)
        deadline = time.monotonic() + self.config.grace_seconds + 5
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        # killed by the signal itself: a worker still starting up, before it set its
        # handlers and so before it bound its socket; it held no connection
        clean = (0, -signal.SIGTERM, -signal.SIGINT)
        failed = [(p.pid, p.exitcode) for p in self.procs if p.exitcode not in clean]
        if failed:
            log.warning("workers that did not exit cleanly (pid, exit code): %s", failed)
        return 1 if failed else 0
