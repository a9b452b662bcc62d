"""Assemble the convlens app: lifespan (load model, start scheduler), middleware, routes.

uvicorn app.main:app
"""

from __future__ import annotations

import gc
import io
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from PIL import Image

from convlens.app.api.deps import require_api_key
from convlens.app.api.errors import install_error_handlers
from convlens.app.api.ops import health, page
from convlens.app.api.v1 import features, insight, models, predict, read
from convlens.app.api.v2 import routes as v2
from convlens.app.config import Settings, get_settings
from convlens.app.core.admission import Gate
from convlens.app.core.explain import Explainer
from convlens.app.core.pipeline import Service
from convlens.app.core.registry import ModelRegistry
from convlens.app.core.scheduler import BatchStats
from convlens.app.imaging.preprocess import preprocess
from convlens.app.serving.allocator import keep_freed_memory
from convlens.app.serving.limits import BodyLimitMiddleware, TimeoutMiddleware
from convlens.app.serving.metrics import MetricsMiddleware, ServiceMetrics

log = logging.getLogger("convlens")
NO_TELEMETRY = TelemetryConfig(tracing=False, metrics=False, logs=False, operation_spans=False)


def warm_up_preprocessing() -> None:
    """The first decode pays for codec and numpy set-up; pay it before the first user."""
    img = Image.new("L", (64, 48), 255)
    img.paste(0, (20, 10, 30, 40))
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        preprocess(buf.getvalue(), max_pixels=64 * 48)


async def start_models(settings: Settings, metrics: ServiceMetrics) -> ModelRegistry:
    """Load every model (CheckpointError propagates: start-up stops with its one-line
    message), give each its micro-batcher, warm it up and start it."""
    models = ModelRegistry.load(settings)
    for model in models:
        scheduler = model.make_scheduler(
            BatchStats(on_batch=metrics.observe_batch, on_depth=metrics.queue_depth.labels(model.name).set),
            max_batch_size=settings.max_batch_size,
            max_wait=settings.max_wait_ms / 1000,
            max_queue=settings.max_queue,
            retry_after_s=settings.retry_after_s,
            is_alone=lambda: metrics.in_flight == 1,
        )
        if settings.warmup:
            # the largest pass is a whole /v1/predict/batch request, if that is bigger
            took = model.warm_up(max(settings.max_batch_size, settings.max_images_per_request))
            log.info("model %s (%s) warmed up in %.0f ms", model.name, model.precision, 1e3 * took)
        else:
            model.skip_warm_up()
        await scheduler.start()
    return models


def tune_gc(settings: Settings) -> tuple[int, ...]:
    """Garbage collection for a server; returns the thresholds to restore."""
    if settings.gc_freeze:
        # torch, numpy and FastAPI leave ~200k long-lived objects; every full collection
        # walked them all (~100 ms, the p99 under load). Frozen, it sees only new ones.
        gc.collect()
        gc.freeze()
    thresholds = gc.get_threshold()
    if settings.gc_threshold:
        # with dozens of requests in flight, their live objects alone crossed Python's
        # 700-allocation trigger over and over: 40 us of collecting per request
        gc.set_threshold(settings.gc_threshold, *thresholds[1:])
    return thresholds


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = ServiceMetrics(multiprocess=settings.metrics_dir is not None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        torch.set_num_threads(settings.torch_threads)
        if settings.keep_freed_memory:
            keep_freed_memory()  # before loading: weights and warm-up allocate under the new rules
        models = await start_models(settings, metrics)
        if settings.warmup:
            warm_up_preprocessing()
        thresholds = tune_gc(settings)
        start = time.perf_counter()
        delay = settings.expensive_reject_delay_ms / 1000
        gate = Gate(settings.expensive_concurrency, settings.expensive_queue, settings.retry_after_s, delay)
        reading = Gate(settings.read_concurrency, settings.read_queue, settings.retry_after_s, delay)
        looks = Gate(settings.look_concurrency, settings.look_queue, settings.retry_after_s)
        try:
            explainers = {model.name: Explainer(model) for model in models}
            yield {"service": Service(settings, metrics, models, explainers, gate, reading, looks)}
        finally:
            for g in (gate, reading, looks):
                g.close()
            for model in models:  # queued inference finishes before the process exits
                assert model.scheduler is not None
                await model.scheduler.stop()
            if settings.gc_freeze:
                gc.unfreeze()
            gc.set_threshold(*thresholds)
            log.info("scheduler drained after %.1f s up", time.perf_counter() - start)

    # /docs and /redoc with Swagger UI and ReDoc from the installed package, not a CDN:
    # they work offline (an air-gapped cluster) and leak no visits
    app = FastAPIOffline(
        title="convlens",
        summary="Recognise handwritten digits and look inside the CNN that does it.",
        version="1.0.0",
        lifespan=lifespan,
        telemetry=None if settings.otel else NO_TELEMETRY,
    )
    install_error_handlers(app)
    # the key guard (and its OpenAPI security scheme) exists only when a key is configured
    guarded = [Depends(require_api_key)] if settings.api_key else []
    app.include_router(predict.router, dependencies=guarded)
    app.include_router(features.router, dependencies=guarded)
    app.include_router(insight.router, dependencies=guarded)
    app.include_router(read.router, dependencies=guarded)
    app.include_router(v2.router, dependencies=guarded)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    # each add_middleware wraps what is there: ServiceMetrics, added last, is outermost and so
    # counts every response, the body limit's 413 and the timeout's 504 included
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_s)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


app = create_app()
