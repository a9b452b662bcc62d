"""Every number on a page: the /v1 adapter over the reader (`app/core/reader.py`)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from convlens.app.api.deps import ModelDep, ServiceDep
from convlens.app.api.openapi import IMAGE_BODY, UPLOAD_ERRORS, errors
from convlens.app.api.uploads import read_upload
from convlens.app.api.v1.convert import ms
from convlens.app.api.v1.schemas import ReadDigit, ReadNumber, ReadResponse, ReadTiming
from convlens.app.core import reader
from convlens.app.core.pipeline import open_upload
from convlens.app.core.served_model import ServedModel

router = APIRouter(prefix="/v1", tags=["read"])


@router.post("/read", response_model=ReadResponse, responses={**UPLOAD_ERRORS, **errors(404)}, openapi_extra=IMAGE_BODY)
async def read(request: Request, service: ServiceDep, model: ModelDep) -> ReadResponse:
    """Read every handwritten number in a photo or scan: each digit with its box, numbers in reading order."""
    upload = await read_upload(request)
    async with service.reading.slot():
        img = await open_upload(upload.data, service.settings)
        reading = await reader.read(img, model, service.reading, service.models.cuts)
    service.metrics.count_reading(model.name, len(reading.numbers), sum(len(n.digits) for n in reading.numbers))
    return to_response(reading, model)


def to_response(reading: reader.Reading, model: ServedModel) -> ReadResponse:
    numbers = [
        ReadNumber(
            text=n.text,
            confidence=round(n.confidence, 6),
            box=list(n.box),
            digits=[
                ReadDigit(
                    digit=d.digit,
                    confidence=round(d.confidence, 6),
                    box=list(d.box),
                    probabilities=[round(float(p), 6) for p in d.probabilities],
                )
                for d in n.digits
            ],
        )
        for n in reading.numbers
    ]
    return ReadResponse(
        numbers=numbers,
        width=reading.width,
        height=reading.height,
        format=reading.format,
        truncated=reading.truncated,
        candidates=reading.candidates,
        model=model.name,
        model_version=model.version,
        timing=ReadTiming(
            segment_ms=ms(reading.prepare_s),
            inference_ms=ms(reading.total_s - reading.prepare_s),
            total_ms=ms(reading.total_s),
        ),
    )
