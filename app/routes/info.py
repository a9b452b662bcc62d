"""What the service is and whether it is well: model card, health, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import MetricsDep, PredictorDep
from app.errors import UnknownLayer
from app.render import feature_grid_png
from app.routes.docs import errors
from app.schemas import Health, LayerRow, ModelCard, Readiness, TrainingSummary

router = APIRouter(tags=["service"])


@router.get("/v1/model", response_model=ModelCard)
def model_card(predictor: PredictorDep) -> ModelCard:
    """The model card: architecture, layer table, parameter count, test accuracy, version."""
    card = predictor.card
    training = card.get("training", {})
    metrics = card.get("metrics", {})
    return ModelCard(
        name=card.get("name", "convlens"),
        version=predictor.version,
        description=card.get("description"),
        created=card.get("created"),
        architecture=predictor.model.config.to_dict(),
        layers=[
            LayerRow(name=r.name, type=r.type, output_shape=r.output_shape, parameters=r.parameters)
            for r in predictor.layers
        ],
        parameters=sum(r.parameters for r in predictor.layers),
        feature_layers=predictor.feature_layers,
        test_accuracy=metrics.get("test_accuracy"),
        per_class_accuracy=metrics.get("per_class_accuracy"),
        confusion_matrix=metrics.get("confusion_matrix"),
        weights_sha256=card["weights"]["sha256"],
        serving_precision=predictor.precision,
        training=TrainingSummary(
            **{k: training.get(k) for k in ("command", "seed", "epochs", "best_epoch", "seconds")},
            history=training.get("history", []),
        ),
        data=card.get("data", {}),
        environment=card.get("environment", {}),
    )


@router.get(
    "/v1/model/filters/{layer}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "a PNG picture"}, **errors(404)},
)
def filters_png(layer: str, predictor: PredictorDep) -> Response:
    """The learned 3x3 filters of a conv layer whose input is one channel (conv1), as a
    PNG grid: blue negative, white 0, red positive weights, scaled by the largest |weight|."""
    weights = predictor.filters(layer)
    if weights is None:
        raise UnknownLayer(
            f"no single-input conv layer {layer!r}; filters are drawn for {', '.join(predictor.filter_layers)}"
        )
    return Response(feature_grid_png(weights, signed=True), media_type="image/png")


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready"}})
async def readyz(request: Request) -> Response:
    """Readiness: the model is loaded and warmed up."""
    service = getattr(request.state, "service", None)
    predictor = service.predictor if service is not None else None
    if predictor is None or not predictor.ready:
        return JSONResponse(Readiness(status="starting").model_dump(), status_code=503)
    return JSONResponse(Readiness(status="ready", model_version=predictor.version).model_dump())


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(m: MetricsDep) -> Response:
    """Prometheus metrics: requests and latency by endpoint and status, digits, batching."""
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
