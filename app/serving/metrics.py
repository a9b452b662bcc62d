"""Prometheus metrics: requests by endpoint and status, predictions by digit, batching.

Each app gets its own registry (tests build many apps). With PROMETHEUS_MULTIPROC_DIR
set (`Settings.metrics_dir`), prometheus_client writes values to files shared by all worker processes and
/metrics aggregates them, so any worker answers for all.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess  # the workers share their values in files (Settings.metrics_dir)
        self.in_flight = 0  # requests this process is serving now (the scheduler asks)
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("convlens_http_requests", "HTTP requests", ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram(
            "convlens_http_request_duration_seconds",
            "HTTP request latency",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter("convlens_predictions", "Predicted digits by model", ["model", "digit"], registry=r)
        self.verdicts = Counter(
            "convlens_verdicts",
            "Predictions by verdict (digit, not_a_digit, several_digits)",
            ["model", "verdict"],
            registry=r,
        )
        self.read = Counter(
            "convlens_read", "What /v1/read found: pages, numbers and digits", ["model", "kind"], registry=r
        )
        self.batch_size = Histogram(
            "convlens_inference_batch_size", "Images per forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_wait = Histogram(
            "convlens_inference_wait_seconds",
            "Time a batch's oldest request queued",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_compute = Histogram(
            "convlens_inference_compute_seconds",
            "Time per batch in the inference thread: decoding its small uploads, then the forward pass",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "convlens_inference_queue_depth",
            "Images waiting for inference, by model",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )

    def count_prediction(self, model: str, digit: int, verdict: str | None = None) -> None:
        self.predictions.labels(model, str(digit)).inc()
        if verdict is not None:
            self.verdicts.labels(model, verdict).inc()

    def count_reading(self, model: str, numbers: int, digits: int) -> None:
        self.read.labels(model, "pages").inc()
        self.read.labels(model, "numbers").inc(numbers)
        self.read.labels(model, "digits").inc(digits)

    def observe_batch(self, size: int, wait_s: float, compute_s: float) -> None:
        self.batch_size.observe(size)
        self.batch_wait.observe(wait_s)
        self.batch_compute.observe(compute_s)

    def exposition(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware overhead); labels by route template, not raw path,
    so /v1/feature-maps/conv1.png and /conv2.png share one series."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight -= 1
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            self.metrics.latency.labels(endpoint, method).observe(time.perf_counter() - start)
