"""The request pipeline as plain async functions: bytes -> preprocess -> model -> schema.

Small uploads are preprocessed inline (cheaper than a thread hop), big ones in the
thread pool; the forward pass runs in the batch scheduler.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.metrics import Metrics
from app.predictor import Predictor, to_tensor
from app.preprocess import INLINE_BYTES, Preprocessed, finish, is_cheap, open_image, preprocess
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


async def prepare(data: bytes, settings: Settings) -> tuple[Preprocessed, float]:
    start = time.perf_counter()
    if len(data) > INLINE_BYTES:  # even the header of a big upload is read off the loop
        pre = await run_in_threadpool(preprocess, data, settings.max_pixels)
    else:
        img = open_image(data, settings.max_pixels)
        # a 28 x 28 digit is done before a thread could even pick it up
        pre = finish(img) if is_cheap(data, img) else await run_in_threadpool(finish, img)
    return pre, time.perf_counter() - start


async def predict_one(data: bytes, service: Service) -> Prediction:
    start = time.perf_counter()
    pre, t_pre = await prepare(data, service.settings)
    t0 = time.perf_counter()
    probs = await service.scheduler.submit(to_tensor(pre.pixels))
    t_inf = time.perf_counter() - t0
    timing = Timing(preprocess_ms=ms(t_pre), inference_ms=ms(t_inf), total_ms=ms(time.perf_counter() - start))
    return to_prediction(probs[0], pre, service.predictor.version, timing, service.metrics)
