"""Digit prediction for one image or a batch."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.deps import ServiceDep
from app.errors import ApiError
from app.inference import ms, predict_one, to_prediction
from app.predictor import to_tensor
from app.preprocess import Preprocessed, preprocess
from app.routes.docs import BATCH_BODY, IMAGE_BODY, UPLOAD_ERRORS
from app.schemas import BatchItem, BatchResponse, ErrorDetail, Prediction, Timing
from app.uploads import read_upload, read_uploads

router = APIRouter(prefix="/v1", tags=["predict"])


@router.post("/predict", response_model=Prediction, responses=UPLOAD_ERRORS, openapi_extra=IMAGE_BODY)
async def predict(request: Request, service: ServiceDep) -> Prediction:
    """Predict the digit in one image (a photo, a drawing, or an MNIST digit)."""
    upload = await read_upload(request)
    return await predict_one(upload.data, service)


def _preprocess_all(datas: list[bytes], max_pixels: int) -> list[Preprocessed | ApiError]:
    out: list[Preprocessed | ApiError] = []
    for data in datas:
        try:
            out.append(preprocess(data, max_pixels))
        except ApiError as e:
            out.append(e)
    return out


@router.post("/predict/batch", response_model=BatchResponse, responses=UPLOAD_ERRORS, openapi_extra=BATCH_BODY)
async def predict_batch(request: Request, service: ServiceDep) -> BatchResponse:
    """Predict several images in one forward pass; a bad image fails only its own slot."""
    settings, predictor, metrics = service.settings, service.predictor, service.metrics
    start = time.perf_counter()
    uploads = await read_uploads(request, settings.max_batch_images)
    pres = await run_in_threadpool(_preprocess_all, [u.data for u in uploads], settings.max_pixels)
    t_pre = time.perf_counter() - start
    good = [p for p in pres if isinstance(p, Preprocessed)]
    t0 = time.perf_counter()
    probs = await service.scheduler.submit(to_tensor([p.pixels for p in good])) if good else None
    t_inf = time.perf_counter() - t0
    timing = Timing(preprocess_ms=ms(t_pre), inference_ms=ms(t_inf), total_ms=ms(time.perf_counter() - start))
    results, row = [], 0
    for i, (upload, pre) in enumerate(zip(uploads, pres, strict=True)):
        item = BatchItem(index=i, filename=upload.filename)
        if isinstance(pre, ApiError):
            item.error = ErrorDetail(code=pre.code, message=pre.message)
        else:
            assert probs is not None
            item.prediction = to_prediction(probs[row], pre, predictor.version, timing, metrics)
            row += 1
        results.append(item)
    return BatchResponse(
        model_version=predictor.version, count=len(results), succeeded=len(good), results=results, timing=timing
    )
