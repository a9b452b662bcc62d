"""The request pipeline as plain async functions: bytes -> preprocess -> model -> schema.

The event loop only reads an upload's header. A small image is decoded and preprocessed
in the inference thread, right before the forward pass that reads it (or on the loop when
it is the only request in flight); a big one in the thread pool first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.metrics import Metrics
from app.predictor import Predictor, to_tensor
from app.preprocess import INLINE_BYTES, Preprocessed, finish, is_cheap, open_image
from app.scheduler import BatchScheduler
from app.schemas import InputInfo, Prediction, Timing


@dataclass(frozen=True)
class Service:
    """Everything a prediction needs, made once per process by the lifespan."""

    settings: Settings
    metrics: Metrics
    predictor: Predictor
    scheduler: BatchScheduler


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def to_prediction(
    probs: torch.Tensor, pre: Preprocessed, version: str, timing: Timing, metrics: Metrics | None
) -> Prediction:
    p = probs.numpy().astype(np.float64)  # numpy: a tenth of torch's per-op cost on 10 numbers
    p /= p.sum()  # float32 softmax sums to 1 +- 1e-7; make the JSON sum exact-ish
    digit = int(p.argmax())
    if metrics is not None:
        metrics.predictions.labels(str(digit)).inc()
    return Prediction(
        digit=digit,
        confidence=float(p[digit]),
        probabilities=p.tolist(),
        model_version=version,
        input=InputInfo(width=pre.width, height=pre.height, format=pre.format, inverted=pre.inverted),
        timing=timing,
    )


async def _open(data: bytes, settings: Settings) -> Image.Image:
    """The upload's header, checked; even that is read off the loop for a big upload."""
    if len(data) > INLINE_BYTES:
        return await run_in_threadpool(open_image, data, settings.max_pixels)
    return open_image(data, settings.max_pixels)


async def prepare(data: bytes, settings: Settings) -> tuple[Preprocessed, float]:
    """Preprocess one upload for the endpoints that need its pixels themselves."""
    start = time.perf_counter()
    img = await _open(data, settings)
    # a 28 x 28 digit is done before a thread could even pick it up
    pre = finish(img) if is_cheap(data, img) else await run_in_threadpool(finish, img)
    return pre, time.perf_counter() - start


def _prepare(img: Image.Image) -> tuple[tuple[Preprocessed, float], torch.Tensor]:
    """Runs in the inference thread, beside the other images of the batch."""
    start = time.perf_counter()
    pre = finish(img)
    return (pre, time.perf_counter() - start), to_tensor(pre.pixels)


async def predict_one(data: bytes, service: Service) -> Prediction:
    """Small images (the usual upload) are decoded and preprocessed in the inference
    thread, just before the pass that reads them; bigger ones first in the thread pool,
    so that a photo's decode never holds up the other requests of its batch."""
    start = time.perf_counter()
    img = await _open(data, service.settings)
    t_open = time.perf_counter() - start
    if is_cheap(data, img):
        (pre, t_pre), probs = await service.scheduler.submit_raw(img, _prepare)
    else:
        pre = await run_in_threadpool(finish, img)
        t_pre = time.perf_counter() - start - t_open
        probs = await service.scheduler.submit(to_tensor(pre.pixels))
    t_pre += t_open
    total = time.perf_counter() - start
    timing = Timing(preprocess_ms=ms(t_pre), inference_ms=ms(total - t_pre), total_ms=ms(total))
    return to_prediction(probs[0], pre, service.predictor.version, timing, service.metrics)
