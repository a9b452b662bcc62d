"""Digit prediction for one image or a batch (the /v1 adapter over the request core)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import ModelDep, ServiceDep
from app.errors import ApiError
from app.pipeline import predict_upload, predict_uploads
from app.routes.openapi import BATCH_BODY, IMAGE_BODY, UPLOAD_ERRORS, errors
from app.schemas import BatchItem, BatchResponse, ErrorDetail, Prediction
from app.uploads import read_upload, read_uploads

router = APIRouter(prefix="/v1", tags=["predict"])


@router.post(
    "/predict", response_model=Prediction, responses={**UPLOAD_ERRORS, **errors(404)}, openapi_extra=IMAGE_BODY
)
async def predict(request: Request, service: ServiceDep, model: ModelDep) -> Prediction:
    """Predict the digit in one image (a photo, a drawing, or an MNIST digit)."""
    upload = await read_upload(request)
    return await predict_upload(upload.data, service, model)


@router.post(
    "/predict/batch", response_model=BatchResponse, responses={**UPLOAD_ERRORS, **errors(404)}, openapi_extra=BATCH_BODY
)
async def predict_batch(request: Request, service: ServiceDep, model: ModelDep) -> BatchResponse:
    """Predict several images in one forward pass; a bad image fails only its own slot."""
    uploads = await read_uploads(request, service.settings.max_batch_images)
    results, timing = await predict_uploads([u.data for u in uploads], service, model)
    items = [
        BatchItem(index=i, filename=upload.filename, error=ErrorDetail(code=r.code, message=r.message))
        if isinstance(r, ApiError)
        else BatchItem(index=i, filename=upload.filename, prediction=r)
        for i, (upload, r) in enumerate(zip(uploads, results, strict=True))
    ]
    return BatchResponse(
        model=model.name,
        model_version=model.version,
        count=len(items),
        succeeded=sum(1 for r in results if not isinstance(r, ApiError)),
        results=items,
        timing=timing,
    )
