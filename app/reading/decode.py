"""Segmentation by recognition: of all ways to group a word's pieces into digits, the one
the network believes most.

A run of pieces scores log P(its best digit) + log P(one digit) (the cut network's
probability that the picture is a single digit, not part of one or two of them; without
that network, the verdict head's P(digit)). A bonus per digit read, to offset the sum's
preference for fewer, longer runs, was tried and split digits drawn in two strokes
(docs/reading.md). The picture is size-normalised, so the network cannot see that a run
is half as tall as its line's digits (the lower half of a slanted 1, a 7's bar): a run
that short is marked down. A piece may also be left out (a stray mark, a letter) at a
fixed cost. A cut through a stroke costs nothing more than any other boundary: a toll on
it (tried at 3 and 1) kept touching digits whole more often than it saved a digit from
being cut. The best path is a shortest path over piece boundaries, found by dynamic
programming in O(pieces x MAX_GROUP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FLOOR = 1e-6  # probabilities are floored before the log: one zero must not veto a path
SKIP = -9.0  # the score of leaving one piece unread
FULL_HEIGHT = 0.65  # a digit shorter than this share of its line's digit height ...
SHORT = -16.0  # ... scores up to this much less: it is likely a piece of one


@dataclass(frozen=True)
class Scored:
    """What the networks made of one run's picture."""

    probabilities: np.ndarray  # (10,)
    judged: np.ndarray | None  # (3,) digit, not a digit, several digits; None without a verdict network
    height: float = 1.0  # its ink's height as a share of the line's digit height
    one: float | None = None  # the cut network's probability that it is exactly one digit


def _one_digit(s: Scored) -> float:
    """The cut network's judgement; without it, the verdict network's P(digit)."""
    if s.one is not None:
        return max(s.one, FLOOR)
    return max(float(s.judged[0]), FLOOR) if s.judged is not None else 1.0


def run_score(s: Scored) -> float:
    best = max(float(s.probabilities.max()), FLOOR)
    one = _one_digit(s)
    short = SHORT * max(0.0, FULL_HEIGHT - s.height) / FULL_HEIGHT
    return math.log(best) + math.log(one) + short


def best_path(n: int, scored: dict[tuple[int, int], Scored]) -> list[tuple[int, int]]:
    """The runs [i, j) covering pieces 0..n-1 (some possibly skipped) with the highest
    total score; the skipped pieces are in no returned run."""
    best = [-math.inf] * (n + 1)
    back: list[tuple[int, bool]] = [(0, False)] * (n + 1)
    best[0] = 0.0
    ends: dict[int, list[tuple[int, float]]] = {}
    for (i, j), s in scored.items():
        ends.setdefault(j, []).append((i, run_score(s)))
    for j in range(1, n + 1):
        best[j], back[j] = best[j - 1] + SKIP, (j - 1, False)
        for i, score in ends.get(j, []):
            if best[i] + score > best[j]:
                best[j], back[j] = best[i] + score, (i, True)
    path = []
    j = n
    while j > 0:
        i, read = back[j]
        if read:
            path.append((i, j))
        j = i
    return path[::-1]
