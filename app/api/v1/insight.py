"""Why a digit was chosen, and the article's shift claim tested on an upload (/v1 adapter)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response

from convlens.app.api.deps import EXPENSIVE, ModelDep, ServiceDep
from convlens.app.api.openapi import IMAGE_BODY, PNG, UPLOAD_ERRORS, errors
from convlens.app.api.uploads import read_upload
from convlens.app.api.v1.convert import to_prediction
from convlens.app.api.v1.schemas import Explanation, ShiftExperiment, ShiftModelResult, ShiftResult
from convlens.app.core.explain import Method
from convlens.app.core.pipeline import Explained, Service, ShiftRun, explain_upload, shift_experiment
from convlens.app.core.served_model import ServedModel
from convlens.app.imaging.render import heatmap_png

router = APIRouter(prefix="/v1", tags=["insight"], dependencies=[EXPENSIVE])

Target = Annotated[
    int | None, Query(ge=0, le=9, description="the digit whose evidence to show; default: the predicted one")
]
MethodQuery = Annotated[
    Method,
    Query(description="gradcam (last conv block; CNNs only), saliency (input gradients), occlusion (every model)"),
]
MaxShift = Annotated[int, Query(ge=0, le=6, description="largest shift in pixels, in x and in y")]


async def _json(service: Service, body: Explanation | ShiftExperiment) -> Response:
    return Response(await service.expensive.run(body.model_dump_json), media_type="application/json")


def _round(a: np.ndarray) -> list[Any]:
    return np.round(a, 4).tolist()


async def _explained(
    request: Request, service: Service, model: ServedModel, target: int | None, method: Method
) -> Explained:
    upload = await read_upload(request)
    return await explain_upload(upload.data, service, model, target, method)


@router.post(
    "/explain", response_model=Explanation, responses={**UPLOAD_ERRORS, **errors(404)}, openapi_extra=IMAGE_BODY
)
async def explain(
    request: Request, service: ServiceDep, model: ModelDep, target: Target = None, method: MethodQuery = "gradcam"
) -> Response:
    """Which pixels of the input the network used for its answer, as a 28 x 28 heat map in
    [0, 1] on the grid of the input it saw (see `method`). gradcam on an MLP: 400."""
    done = await _explained(request, service, model, target, method)
    prediction = to_prediction(done.scored, model)
    body = Explanation(
        model=model.name,
        digit=prediction.digit,
        target=done.target,
        method=method,
        heatmap=_round(done.heatmap),
        prediction=prediction,
        input_image=_round(done.scored.pre.pixels),
    )
    return await _json(service, body)


@router.post(
    "/explain.png",
    response_class=Response,
    responses={**PNG, **UPLOAD_ERRORS, **errors(404)},
    openapi_extra=IMAGE_BODY,
)
async def explain_png(
    request: Request, service: ServiceDep, model: ModelDep, target: Target = None, method: MethodQuery = "gradcam"
) -> Response:
    """The heat map of /v1/explain laid over the enlarged 28 x 28 input (8x, 224 px)."""
    done = await _explained(request, service, model, target, method)
    png = await service.expensive.run(heatmap_png, done.scored.pre.pixels, done.heatmap)
    return Response(png, media_type="image/png")


@router.post("/experiments/shift", response_model=ShiftExperiment, responses=UPLOAD_ERRORS, openapi_extra=IMAGE_BODY)
async def shift(request: Request, service: ServiceDep, max_shift: MaxShift = 4) -> Response:
    """Every model's prediction for the input moved by every (dx, dy) up to `max_shift`
    pixels (zero fill, on the 28 x 28 the network saw), `stable` = the share that keeps
    the unshifted digit; for CNNs also how similar the first conv and the last pool
    outputs stay."""
    upload = await read_upload(request)
    pre, grid, runs = await shift_experiment(upload.data, service, max_shift)
    models = [shift_result(run, grid) for run in runs]
    return await _json(service, ShiftExperiment(max_shift=max_shift, input_image=_round(pre.pixels), models=models))


def _rounded(values: list[float] | None, i: int | None = None) -> float | None:
    """One cosine (or, without `i`, their mean) to 6 places; None for the MLP."""
    if values is None:
        return None
    return round(float(np.mean(values)) if i is None else values[i], 6)


def shift_result(run: ShiftRun, grid: list[tuple[int, int]]) -> ShiftModelResult:
    """One model's answers to every shifted copy, in the /v1 wire format."""
    conf, digits = run.probabilities.max(dim=1)
    base = int(digits[grid.index((0, 0))])
    rows = [
        ShiftResult(
            dx=dx,
            dy=dy,
            digit=int(digits[i]),
            confidence=round(float(conf[i]), 6),
            conv_cosine=_rounded(run.conv_cosine, i),
            pool_cosine=_rounded(run.pool_cosine, i),
        )
        for i, (dx, dy) in enumerate(grid)
    ]
    return ShiftModelResult(
        model=run.model.name,
        parameters=sum(r.parameters for r in run.model.layers),
        digit=base,
        stable=round(float((digits == base).float().mean()), 6),
        mean_conv_cosine=_rounded(run.conv_cosine),
        mean_pool_cosine=_rounded(run.pool_cosine),
        shifts=rows,
    )
