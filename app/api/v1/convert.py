"""Core results in the /v1 wire format."""

from __future__ import annotations

import numpy as np

from convlens.app.api.v1.schemas import InputInfo, Prediction, Timing, VerdictScores
from convlens.app.core.pipeline import Scored
from convlens.app.core.served_model import ServedModel


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def timing(scored: Scored) -> Timing:
    return Timing(
        preprocess_ms=ms(scored.preprocess_s),
        inference_ms=ms(scored.total_s - scored.preprocess_s),
        total_ms=ms(scored.total_s),
    )


def verdict_scores(scored: Scored) -> VerdictScores | None:
    if scored.judged is None:
        return None
    digit, not_a_digit, several = (round(v, 6) for v in scored.judged)
    return VerdictScores(digit=digit, not_a_digit=not_a_digit, several_digits=several)


def to_prediction(scored: Scored, model: ServedModel) -> Prediction:
    p = scored.probabilities.numpy().astype(np.float64)  # numpy: a tenth of torch's per-op cost on 10 numbers
    p /= p.sum()  # float32 softmax sums to 1 +- 1e-7; make the JSON sum exact-ish
    digit = int(p.argmax())
    pre = scored.pre
    return Prediction(
        digit=digit,
        confidence=float(p[digit]),
        probabilities=p.tolist(),
        verdict=scored.verdict,
        verdict_scores=verdict_scores(scored),
        reading=scored.reading,
        model=model.name,
        model_version=model.version,
        input=InputInfo(width=pre.width, height=pre.height, format=pre.format, inverted=pre.inverted),
        timing=timing(scored),
    )
