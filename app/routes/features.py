"""Intermediate feature maps, as numbers and as PNG grids; the preprocessed input."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app.deps import PredictorDep, ServiceDep, SettingsDep
from app.errors import UnknownLayer
from app.inference import ms, prepare, to_prediction
from app.predictor import Predictor, to_tensor
from app.render import NORMALIZATION, feature_grid_png, input_png
from app.routes.docs import IMAGE_BODY, UPLOAD_ERRORS, errors
from app.schemas import FeatureMapsResponse, InputImage, LayerActivation, Timing
from app.uploads import read_upload

router = APIRouter(prefix="/v1", tags=["feature maps"])

PNG = {200: {"content": {"image/png": {}}, "description": "a PNG picture"}}
Norm = Annotated[Literal["layer", "channel"], Query(description="scale colours per layer or per channel")]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _signed(layer_type: str) -> bool:
    return layer_type in ("Conv2d", "BatchNorm2d")


def _unknown(predictor: Predictor, what: str) -> UnknownLayer:
    return UnknownLayer(f"unknown layer(s) {what}; choose from {', '.join(predictor.feature_layers)}")


def resolve_layers(predictor: Predictor, layers: str | None) -> list[str]:
    """Comma-separated names -> checked, de-duplicated list in the order given."""
    if not layers:
        return predictor.default_layers
    names = list(dict.fromkeys(n.strip() for n in layers.split(",") if n.strip()))
    unknown = [n for n in names if n not in predictor.feature_layers]
    if unknown or not names:
        raise _unknown(predictor, ", ".join(unknown) or repr(layers))
    return names


def _round(a: np.ndarray) -> list:  # type: ignore[type-arg]
    return np.round(a, 4).tolist()


@router.post(
    "/feature-maps",
    response_model=FeatureMapsResponse,
    responses={**UPLOAD_ERRORS, **errors(404)},
    openapi_extra=IMAGE_BODY,
)
async def feature_maps(
    request: Request,
    service: ServiceDep,
    layers: Annotated[
        str | None, Query(description="comma-separated layer names; default: every conv, ReLU and pool layer")
    ] = None,
    values: Annotated[bool, Query(description="include the activation values")] = True,
    png: Annotated[bool, Query(description="embed each layer's PNG grid (and the input) as a data URI")] = False,
    norm: Norm = "layer",
) -> FeatureMapsResponse:
    """The prediction plus every conv/ReLU/pool layer's activations for one image."""
    settings, predictor, metrics = service.settings, service.predictor, service.metrics
    names = resolve_layers(predictor, layers)
    start = time.perf_counter()
    upload = await read_upload(request)
    pre, t_pre = await prepare(upload.data, settings)
    t0 = time.perf_counter()
    x = to_tensor(pre.pixels)
    probs, acts = await asyncio.gather(service.scheduler.submit(x), run_in_threadpool(predictor.features, x, names))
    t_inf = time.perf_counter() - t0
    types = predictor.layer_types

    def build() -> tuple[list[LayerActivation], InputImage]:
        out = []
        for name in names:
            a = acts[name][0].numpy()
            out.append(
                LayerActivation(
                    name=name,
                    type=types[name],
                    shape=list(a.shape),
                    min=float(a.min()),
                    max=float(a.max()),
                    values=_round(a) if values else None,
                    png=data_uri(feature_grid_png(a, _signed(types[name]), norm == "channel")) if png else None,
                )
            )
        image = InputImage(
            shape=[1, 28, 28], values=_round(pre.pixels), png=data_uri(input_png(pre.pixels)) if png else None
        )
        return out, image

    layer_rows, image = await run_in_threadpool(build)
    timing = Timing(preprocess_ms=ms(t_pre), inference_ms=ms(t_inf), total_ms=ms(time.perf_counter() - start))
    prediction = to_prediction(probs[0], pre, predictor.version, timing, metrics)
    return FeatureMapsResponse(prediction=prediction, input_image=image, normalization=NORMALIZATION, layers=layer_rows)


@router.post(
    "/feature-maps/{layer}.png",
    response_class=Response,
    responses={**PNG, **UPLOAD_ERRORS, **errors(404)},
    openapi_extra=IMAGE_BODY,
)
async def feature_map_png(
    layer: str, request: Request, settings: SettingsDep, predictor: PredictorDep, norm: Norm = "layer"
) -> Response:
    """A PNG grid of every channel of one layer for one image (colours: see /v1/feature-maps)."""
    if layer not in predictor.feature_layers:
        raise _unknown(predictor, layer)
    upload = await read_upload(request)
    pre, _ = await prepare(upload.data, settings)
    signed = _signed(predictor.layer_types[layer])

    def render() -> bytes:
        acts = predictor.features(to_tensor(pre.pixels), [layer])
        return feature_grid_png(acts[layer][0].numpy(), signed, norm == "channel")

    return Response(await run_in_threadpool(render), media_type="image/png")


@router.post("/preprocessed.png", response_class=Response, responses={**PNG, **UPLOAD_ERRORS}, openapi_extra=IMAGE_BODY)
async def preprocessed_png(request: Request, settings: SettingsDep) -> Response:
    """The 28 x 28 input the network sees for this image, enlarged 8x (white ink on black)."""
    upload = await read_upload(request)
    pre, _ = await prepare(upload.data, settings)
    return Response(await run_in_threadpool(input_png, pre.pixels), media_type="image/png")
