"""Is the process alive, are its models ready, what has it done: for probes and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from convlens.app.api.deps import MetricsDep
from convlens.app.api.v1.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready"}})
async def readyz(request: Request) -> Response:
    """Readiness: every model is loaded and warmed up."""
    service = getattr(request.state, "service", None)
    if service is None or not service.models.ready:
        return JSONResponse(Readiness(status="starting").model_dump(), status_code=503)
    default = service.models.default_model
    return JSONResponse(
        Readiness(status="ready", model_version=default.version, models=list(service.models.models)).model_dump()
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(m: MetricsDep) -> Response:
    """Prometheus metrics: requests and latency by endpoint and status, digits, batching."""
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
