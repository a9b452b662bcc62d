"""Intermediate feature maps, as numbers and as PNG grids; the preprocessed input."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response

from convlens.app.api.deps import EXPENSIVE, ModelDep, ServiceDep
from convlens.app.api.openapi import IMAGE_BODY, PNG, UPLOAD_ERRORS, errors
from convlens.app.api.uploads import read_upload
from convlens.app.api.v1.convert import to_prediction
from convlens.app.api.v1.schemas import FeatureMapsResponse, InputImage, LayerActivation
from convlens.app.core.errors import UnknownLayer
from convlens.app.core.pipeline import Activations, activations, preprocess_upload
from convlens.app.core.served_model import ServedModel, to_tensor
from convlens.app.imaging.render import NORMALIZATION, feature_grid_png, input_png

router = APIRouter(prefix="/v1", tags=["feature maps"])

Norm = Annotated[Literal["layer", "channel"], Query(description="scale colours per layer or per channel")]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _unknown(model: ServedModel, what: str) -> UnknownLayer:
    if not model.feature_layers:
        return UnknownLayer(f"unknown layer(s) {what}: model {model.name!r} has no conv or pool layers")
    return UnknownLayer(f"unknown layer(s) {what}; {model.name!r} has {', '.join(model.feature_layers)}")


def resolve_layers(model: ServedModel, layers: str | None) -> list[str]:
    """Comma-separated names -> checked, de-duplicated list in the order given."""
    if not layers:
        return model.default_layers
    names = list(dict.fromkeys(n.strip() for n in layers.split(",") if n.strip()))
    unknown = [n for n in names if n not in model.feature_layers]
    if unknown or not names:
        raise _unknown(model, ", ".join(unknown) or repr(layers))
    return names


def _round(a: np.ndarray) -> list[Any]:
    return np.round(a, 4).tolist()


@router.post(
    "/feature-maps",
    response_model=FeatureMapsResponse,
    responses={**UPLOAD_ERRORS, **errors(404)},
    openapi_extra=IMAGE_BODY,
    dependencies=[EXPENSIVE],
)
async def feature_maps(
    request: Request,
    service: ServiceDep,
    model: ModelDep,
    layers: Annotated[
        str | None, Query(description="comma-separated layer names; default: every conv, ReLU and pool layer")
    ] = None,
    values: Annotated[bool, Query(description="include the activation values")] = True,
    png: Annotated[bool, Query(description="embed each layer's PNG grid (and the input) as a data URI")] = False,
    norm: Norm = "layer",
) -> Response:
    """The prediction plus every conv/ReLU/pool layer's activations for one image."""
    names = resolve_layers(model, layers)
    upload = await read_upload(request)
    acts = await activations(upload.data, service, model, names)
    body = await service.expensive.run(feature_maps_body, acts, model, values, png, norm == "channel")
    # megabytes of JSON with png=true: serialised off the event loop, inside the slot
    return Response(await service.expensive.run(body.model_dump_json), media_type="application/json")


def feature_maps_body(
    acts: Activations, model: ServedModel, values: bool, png: bool, per_channel: bool
) -> FeatureMapsResponse:
    """The response of /v1/feature-maps: rounding and drawing, run in the expensive slot."""
    layers = []
    for name, a in acts.layers.items():
        grid = data_uri(feature_grid_png(a, model.signed_output(name), per_channel)) if png else None
        layers.append(
            LayerActivation(
                name=name,
                type=model.layer_types[name],
                shape=list(a.shape),
                min=float(a.min()),
                max=float(a.max()),
                values=_round(a) if values else None,
                png=grid,
            )
        )
    pixels = acts.scored.pre.pixels
    image = InputImage(shape=[1, 28, 28], values=_round(pixels), png=data_uri(input_png(pixels)) if png else None)
    prediction = to_prediction(acts.scored, model)
    return FeatureMapsResponse(prediction=prediction, input_image=image, normalization=NORMALIZATION, layers=layers)


@router.post(
    "/feature-maps/{layer}.png",
    response_class=Response,
    responses={**PNG, **UPLOAD_ERRORS, **errors(404)},
    openapi_extra=IMAGE_BODY,
    dependencies=[EXPENSIVE],
)
async def feature_map_png(
    layer: str, request: Request, service: ServiceDep, model: ModelDep, norm: Norm = "layer"
) -> Response:
    """A PNG grid of every channel of one layer for one image (colours: see /v1/feature-maps)."""
    if layer not in model.feature_layers:
        raise _unknown(model, layer)
    upload = await read_upload(request)
    pre, _ = await preprocess_upload(upload.data, service)
    signed = model.signed_output(layer)

    def render() -> bytes:
        acts = model.features(to_tensor(pre.pixels), [layer])
        return feature_grid_png(acts[layer][0].numpy(), signed, norm == "channel")

    return Response(await service.expensive.run(render), media_type="image/png")


@router.post("/preprocessed.png", response_class=Response, responses={**PNG, **UPLOAD_ERRORS}, openapi_extra=IMAGE_BODY)
async def preprocessed_png(request: Request, service: ServiceDep) -> Response:
    """The 28 x 28 input the network sees for this image, enlarged 8x (white ink on black)."""
    upload = await read_upload(request)
    pre, _ = await preprocess_upload(upload.data, service)
    return Response(await service.expensive.run(input_png, pre.pixels), media_type="image/png")
