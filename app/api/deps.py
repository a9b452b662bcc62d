"""Typed dependencies: handlers take these and never dig in request.state.

They are `async def` on purpose: FastAPI runs a sync dependency in the thread pool, and
four thread hops per request for attribute lookups cost more than the whole forward pass.
Handlers take the one `ServiceDep` (and `ModelDep` where a model runs): FastAPI resolves
every dependency anew for each request; under load four of them cost 9 % of the event
loop's time. The hottest route, /v1/predict, reads both itself (see app/api/v1/predict.py).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader

from convlens.app.config import Settings
from convlens.app.core.errors import Unauthorized
from convlens.app.core.pipeline import Service
from convlens.app.core.served_model import ServedModel
from convlens.app.serving.metrics import ServiceMetrics


async def _service(request: Request) -> Service:
    return request.state.service


ModelName = Annotated[
    str | None, Query(description="the model to run (see /v1/models); default: the service's default model")
]


async def _model(request: Request, model: ModelName = None) -> ServedModel:
    """The model a request names in `?model=` (404 unknown_model), else the default."""
    return request.state.service.models.get(model)


async def _settings(request: Request) -> Settings:
    return request.state.service.settings


async def _metrics(request: Request) -> ServiceMetrics:
    return request.state.service.metrics


ServiceDep = Annotated[Service, Depends(_service)]
ModelDep = Annotated[ServedModel, Depends(_model)]


async def _expensive_slot(request: Request) -> AsyncIterator[None]:
    async with request.state.service.expensive.slot():
        yield


# on the routes that cost 10-100x a prediction: bounded concurrency, else 503
EXPENSIVE = Depends(_expensive_slot)
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(_metrics)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the key set in CONVLENS_API_KEY")


async def require_api_key(settings: SettingsDep, key: Annotated[str | None, Depends(_api_key_header)]) -> None:
    expected = settings.api_key
    assert expected is not None  # installed only when a key is configured
    if key is None or not secrets.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("missing or wrong X-API-Key header")
