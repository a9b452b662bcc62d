"""The request core every protocol shares: bytes -> preprocess -> model -> plain results.

Nothing here knows HTTP: protocol adapters (`app/api/*`) turn these results and the
domain errors into their own wire format.

The event loop only reads an upload's header. A small image is decoded and preprocessed
in the inference thread, right before the forward pass that reads it (or on the loop when
it is the only request in flight); a big one in the thread pool first.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image
from starlette.concurrency import run_in_threadpool

from convlens.app.config import Settings
from convlens.app.core import several
from convlens.app.core.admission import Gate
from convlens.app.core.errors import DomainError
from convlens.app.core.explain import Explainer, Method
from convlens.app.core.registry import ModelRegistry
from convlens.app.core.served_model import ServedModel, split_answer, to_tensor
from convlens.app.core.shift import all_shifts, cosine_to_first, offsets
from convlens.app.core.verdict import Judge, Verdict
from convlens.app.imaging.preprocess import (
    INLINE_BYTES,
    Preprocessed,
    is_cheap,
    open_image,
    preprocess,
    preprocess_image,
)
from convlens.app.serving.metrics import ServiceMetrics
from convlens.model.net import NUM_CLASSES


@dataclass(frozen=True)
class Service:
    """Everything a request needs, made once per process by the lifespan."""

    settings: Settings
    metrics: ServiceMetrics
    models: ModelRegistry
    explainers: dict[str, Explainer]
    expensive: Gate  # admission for the endpoints that cost 10-100x a prediction
    reading: Gate  # admission for /v1/read: a page costs 100-1000x a prediction
    looks: Gate  # the reader's second look at flagged predictions (app/core/several.py)


@dataclass(frozen=True)
class Scored:
    """One preprocessed upload and what a model made of it."""

    pre: Preprocessed
    answer: torch.Tensor  # (10,) or (13,): a row of ServedModel.answer
    preprocess_s: float
    total_s: float
    digit: int
    verdict: Verdict | None = None  # None when the service runs without its verdict network
    judged: tuple[float, ...] | None = None  # the verdict network's three probabilities
    reading: str | None = None  # what the reader's second look read, when several_digits

    @classmethod
    def of(cls, pre: Preprocessed, row: torch.Tensor, t_pre: float, total: float, judge: Judge | None) -> Scored:
        """From one row of `ServedModel.answer`, with the verdict decided on its last three.
        The row becomes Python floats once: a torch call on a 0-d tensor costs microseconds,
        and a prediction made a dozen of them (docs/verdict.md, "Cost")."""
        values = row.tolist()
        probs = values[:NUM_CLASSES]
        judged = tuple(values[NUM_CLASSES:]) or None
        verdict = judge.decide(judged) if judge is not None and judged is not None else None
        return cls(pre, row, t_pre, total, max(range(NUM_CLASSES), key=probs.__getitem__), verdict, judged)

    @property
    def probabilities(self) -> torch.Tensor:
        return split_answer(self.answer)[0]


async def _scored(
    pre: Preprocessed,
    row: torch.Tensor,
    t_pre: float,
    start: float,
    img: Image.Image | bytes,
    model: ServedModel,
    service: Service,
) -> Scored:
    """A prediction and its verdict, settled by the reader's second look when the verdict
    flags it, counted in the metrics."""
    scored = Scored.of(pre, row, t_pre, time.perf_counter() - start, model.judge)
    if service.settings.second_look and several.flagged(scored.verdict):
        if isinstance(img, bytes):
            img = open_image(img, service.settings.max_pixels)
        look = await several.look(img, scored.verdict, model, service.looks, service.models.cuts)
        scored = replace(scored, verdict=look.verdict, reading=look.reading, total_s=time.perf_counter() - start)
    service.metrics.count_prediction(model.name, scored.digit, scored.verdict)
    return scored


async def open_upload(data: bytes, settings: Settings) -> Image.Image:
    """The upload's header, checked; even that is read off the loop for a big upload."""
    if len(data) > INLINE_BYTES:
        return await run_in_threadpool(open_image, data, settings.max_pixels)
    return open_image(data, settings.max_pixels)


async def preprocess_upload(data: bytes, service: Service) -> tuple[Preprocessed, float]:
    """The 28 x 28 input for an upload, for the endpoints that need its pixels themselves
    (all of them expensive: a big upload is preprocessed at their low priority)."""
    start = time.perf_counter()
    img = await open_upload(data, service.settings)
    # a 28 x 28 digit is done before a thread could even pick it up
    pre = preprocess_image(img) if is_cheap(data, img) else await service.expensive.run(preprocess_image, img)
    return pre, time.perf_counter() - start


def _preprocess_in_batch(img: Image.Image) -> tuple[tuple[Preprocessed, float], torch.Tensor]:
    """Runs in the inference thread, beside the other images of the batch."""
    start = time.perf_counter()
    pre = preprocess_image(img)
    return (pre, time.perf_counter() - start), to_tensor(pre.pixels)


async def score_upload(data: bytes, service: Service, model: ServedModel) -> Scored:
    """Small images (the usual upload) are decoded and preprocessed in the inference
    thread, just before the pass that reads them; bigger ones first in the thread pool,
    so that a photo's decode never holds up the other requests of its batch."""
    assert model.scheduler is not None
    start = time.perf_counter()
    img = await open_upload(data, service.settings)
    t_open = time.perf_counter() - start
    if is_cheap(data, img):
        (pre, t_pre), probs = await model.scheduler.submit_to_prepare(img, _preprocess_in_batch)
    else:
        pre = await run_in_threadpool(preprocess_image, img)
        t_pre = time.perf_counter() - start - t_open
        probs = await model.scheduler.submit(to_tensor(pre.pixels))
    return await _scored(pre, probs[0], t_pre + t_open, start, img, model, service)


def _preprocess_all(datas: list[bytes], max_pixels: int) -> list[Preprocessed | DomainError]:
    out: list[Preprocessed | DomainError] = []
    for data in datas:
        try:
            out.append(preprocess(data, max_pixels))
        except DomainError as e:
            out.append(e)
    return out


@dataclass(frozen=True)
class ScoredBatch:
    results: list[Scored | DomainError]  # in upload order; every Scored has the batch's timings
    preprocess_s: float
    total_s: float


async def score_uploads(data: list[bytes], service: Service, model: ServedModel) -> ScoredBatch:
    """Several uploads in one forward pass; a bad image fails only its own slot."""
    assert model.scheduler is not None
    start = time.perf_counter()
    pres = await run_in_threadpool(_preprocess_all, data, service.settings.max_pixels)
    t_pre = time.perf_counter() - start
    good = [p for p in pres if isinstance(p, Preprocessed)]
    probs = await model.scheduler.submit(to_tensor([p.pixels for p in good])) if good else None
    results: list[Scored | DomainError] = []
    row = 0
    for pre, upload in zip(pres, data, strict=True):
        if isinstance(pre, DomainError):
            results.append(pre)
            continue
        assert probs is not None
        # one second look at a time: a batch of flagged uploads waits its turn in the gate
        results.append(await _scored(pre, probs[row], t_pre, start, upload, model, service))
        row += 1
    return ScoredBatch(results, t_pre, time.perf_counter() - start)


async def score_ink_maps(
    pixels: np.ndarray, service: Service, model: ServedModel
) -> tuple[torch.Tensor, list[Verdict] | None]:
    """(N, 28, 28) ink maps in [0, 1], used as given (no preprocessing) -> (N, 10)
    probabilities and their verdicts, through the model's micro-batcher like every other
    prediction."""
    scheduler = model.scheduler
    assert scheduler is not None
    x = to_tensor(list(pixels.astype(np.float32)))
    # in chunks of a batch, so a 256-image tensor shares passes with other requests
    step = scheduler.max_batch_size
    parts = await asyncio.gather(*(scheduler.submit(x[i : i + step]) for i in range(0, len(x), step)))
    probs, judged = split_answer(torch.cat(parts))
    judge = model.judge
    verdicts = [judge.decide(j) for j in judged.tolist()] if judge is not None and judged is not None else None
    for i, digit in enumerate(probs.argmax(1).tolist()):
        service.metrics.count_prediction(model.name, digit, verdicts[i] if verdicts else None)
    return probs, verdicts


@dataclass(frozen=True)
class Activations:
    scored: Scored
    layers: dict[str, np.ndarray]  # name -> (C, H, W) of the one image


async def activations(data: bytes, service: Service, model: ServedModel, names: list[str]) -> Activations:
    """The prediction (through the batcher, as /v1/predict gives it) and the float32
    network's activations of the named layers, computed side by side."""
    assert model.scheduler is not None
    start = time.perf_counter()
    pre, t_pre = await preprocess_upload(data, service)
    x = to_tensor(pre.pixels)
    probs, acts = await asyncio.gather(model.scheduler.submit(x), service.expensive.run(model.features, x, names))
    scored = await _scored(pre, probs[0], t_pre, start, data, model, service)
    return Activations(scored, {name: acts[name][0].numpy() for name in names})


@dataclass(frozen=True)
class Explained:
    scored: Scored
    target: int
    heatmap: np.ndarray  # (28, 28) in [0, 1]


async def explain_upload(
    data: bytes, service: Service, model: ServedModel, target: int | None, method: Method
) -> Explained:
    """The prediction and a heat map of the evidence for `target` (default: the digit)."""
    assert model.scheduler is not None
    explainer = service.explainers[model.name]
    explainer.check(method)
    start = time.perf_counter()
    pre, t_pre = await preprocess_upload(data, service)
    x = to_tensor(pre.pixels)
    row = (await model.scheduler.submit(x))[0]
    chosen = int(split_answer(row)[0].argmax()) if target is None else target
    heat = await service.expensive.run(explainer.heatmap, x, chosen, method)
    return Explained(await _scored(pre, row, t_pre, start, data, model, service), chosen, heat)


@dataclass(frozen=True)
class ShiftRun:
    model: ServedModel
    probabilities: torch.Tensor  # (n_shifts, 10), in offsets() order
    conv_cosine: list[float] | None  # first conv output vs unshifted, per shift
    pool_cosine: list[float] | None  # last pool output vs unshifted, per shift


async def shift_experiment(
    data: bytes, service: Service, max_shift: int
) -> tuple[Preprocessed, list[tuple[int, int]], list[ShiftRun]]:
    """Every model on every shifted copy of the upload's 28 x 28 input."""
    pre, _ = await preprocess_upload(data, service)
    grid = offsets(max_shift)
    x = to_tensor(all_shifts(pre.pixels, max_shift))
    centre = grid.index((0, 0))

    async def run(model: ServedModel) -> ShiftRun:
        assert model.scheduler is not None
        probs = split_answer(await model.scheduler.submit(x))[0]
        if not model.is_cnn:
            return ShiftRun(model, probs, None, None)
        first_conv = next(n for n in model.feature_layers if model.kinds[n] == "conv")
        last_pool = [n for n in model.feature_layers if model.kinds[n] == "pool"][-1]
        acts = await service.expensive.run(model.features, x, [first_conv, last_pool])
        conv, pool = acts[first_conv], acts[last_pool]
        return ShiftRun(model, probs, cosine_to_first(conv, conv[centre]), cosine_to_first(pool, pool[centre]))

    runs = await asyncio.gather(*(run(m) for m in service.models))
    return pre, grid, list(runs)
