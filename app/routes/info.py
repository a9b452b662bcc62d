"""What the service is and whether it is well: model card, health, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import MetricsDep, ModelDep, ServiceDep
from app.errors import UnknownLayer
from app.model_cards import model_card
from app.render import feature_grid_png
from app.routes.openapi import errors
from app.schemas import Health, ModelCard, ModelList, Readiness

router = APIRouter(tags=["service"])


@router.get("/v1/model", response_model=ModelCard, responses=errors(404))
def default_model_card(model: ModelDep) -> ModelCard:
    """The default model's card (or `?model=`'s): architecture, layer table, parameter
    count, test accuracy, version."""
    return model_card(model)


@router.get("/v1/models", response_model=ModelList)
def list_models(service: ServiceDep) -> ModelList:
    """Every served model's card, and which one answers when a request names none."""
    return ModelList(default=service.models.default, models=[model_card(m) for m in service.models])


@router.get("/v1/models/{name}", response_model=ModelCard, responses=errors(404))
def named_model_card(name: str, service: ServiceDep) -> ModelCard:
    """One model's card by name."""
    return model_card(service.models.get(name))


@router.get(
    "/v1/model/filters/{layer}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "a PNG picture"}, **errors(404)},
)
def filters_png(layer: str, model: ModelDep) -> Response:
    """The learned 3x3 filters of a conv layer whose input is one channel (conv1), as a
    PNG grid: blue negative, white 0, red positive weights, scaled by the largest |weight|."""
    weights = model.filters(layer)
    if weights is None:
        drawn = ", ".join(model.filter_layers) or "none of its layers"
        raise UnknownLayer(f"no single-input conv layer {layer!r} in {model.name!r}; filters are drawn for {drawn}")
    return Response(feature_grid_png(weights, signed=True), media_type="image/png")


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
