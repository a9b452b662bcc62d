"""Production entry point (the Docker image runs this): uvicorn with N worker processes.

    PORT=8000 WEB_CONCURRENCY=2 python -m convlens.app.serve

With more than one worker, Prometheus runs in multiprocess mode so /metrics from any
worker reports the totals of all of them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import Any

import uvicorn

from convlens.app.config import Settings, get_settings
from convlens.app.core.registry import ModelRegistry
from convlens.app.serving.transport import CoalescingHttpToolsProtocol
from convlens.app.serving.workers import Supervisor, WorkerConfig, reuseport_available
from convlens.model.checkpoint import CheckpointError

APP = "convlens.app.main:app"


def free_port(host: str) -> int:
    """For port 0 with several workers: they must all bind the same port, so pick it here."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_weights(settings: Settings) -> None:
    """Refuse to start with one clear line, before uvicorn prints tracebacks per worker."""
    try:
        ModelRegistry.load(settings)
    except CheckpointError as e:
        print(f"convlens: cannot start: {e}", file=sys.stderr)  # noqa: T201
        sys.exit(1)


def _exit_cleanly(signum: int, _frame: object) -> None:
    # uvicorn drains, restores this handler and re-raises the signal it caught; without
    # it the process would die by SIGTERM (-15) instead of exiting 0 after a clean drain
    sys.exit(0)


def main() -> None:
    settings = get_settings()
    check_weights(settings)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    port, workers = settings.port, settings.workers  # 2 workers x 1 torch thread: see docs
    # PROMETHEUS_MULTIPROC_DIR is prometheus_client's own switch: it reads it itself, so the
    # workers inherit it from this process's environment
    if workers > 1 and settings.metrics_dir is None:
        path = os.path.join(tempfile.gettempdir(), f"convlens-metrics-{port}")
        shutil.rmtree(path, ignore_errors=True)  # stale files would be counted again
        os.makedirs(path)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    options: dict[str, Any] = {
        "proxy_headers": True,
        "http": CoalescingHttpToolsProtocol,
        "access_log": settings.access_log,
        "log_level": settings.log_level,
    }
    if workers > 1 and settings.reuseport and reuseport_available():
        logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(message)s")
        config = WorkerConfig(APP, settings.host, port or free_port(settings.host), settings.grace_seconds, options)
        sys.exit(Supervisor(config, workers).run())
    grace: Any = settings.grace_seconds  # typed int by uvicorn; it waits any number of seconds
    uvicorn.run(APP, host=settings.host, port=port, workers=workers, timeout_graceful_shutdown=grace, **options)


if __name__ == "__main__":
    main()
