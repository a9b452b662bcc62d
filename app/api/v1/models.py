"""The served models: their cards (layer tables, parameters, metrics) and conv1's filters."""

from __future__ import annotations

from fastapi import APIRouter, Response

from convlens.app.api.deps import ModelDep, ServiceDep
from convlens.app.api.openapi import errors
from convlens.app.api.v1.cards import cuts_card, model_card, verdict_card
from convlens.app.api.v1.schemas import ModelCard, ModelList
from convlens.app.core.errors import UnknownLayer
from convlens.app.imaging.render import feature_grid_png

router = APIRouter(tags=["models"])


@router.get("/v1/model", response_model=ModelCard, responses=errors(404))
def default_model_card(model: ModelDep) -> ModelCard:
    """The default model's card (or `?model=`'s): architecture, layer table, parameter
    count, test accuracy, version."""
    return model_card(model)


@router.get("/v1/models", response_model=ModelList)
def list_models(service: ServiceDep) -> ModelList:
    """Every served model's card, which one answers when a request names none, and the
    cards of the verdict network and of the reader's cut network."""
    judge, cuts = service.models.judge, service.models.cuts
    return ModelList(
        default=service.models.default,
        models=[model_card(m) for m in service.models],
        verdict=verdict_card(judge) if judge is not None else None,
        cuts=cuts_card(cuts) if cuts is not None else None,
    )


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
