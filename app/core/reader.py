"""Reading every number on a page: the request core of /v1/read.

upload -> page ink (`reading.page`) -> lines, words, pieces (`reading.segment`) -> every
run of pieces that could be a digit, scored in the model's own micro-batcher beside the
other predictions -> the best grouping of each word (`reading.decode`) -> numbers in
reading order, boxes in the upload's pixels. The page work runs in the read gate's
low-priority thread, so a burst of big photos waits there, not in front of /v1/predict.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from convlens.app.core.admission import Gate
from convlens.app.core.scheduler import BatchScheduler
from convlens.app.core.served_model import ServedModel, split_answer, to_tensor
from convlens.app.core.verdict import Judge
from convlens.app.reading import decode, segment
from convlens.app.reading.cuts import CutScorer
from convlens.app.reading.page import READ_SIDE, Page, read_page

Box = tuple[int, int, int, int]
WORD_DOUBT = 0.05  # a word of digits whose geometric mean verdict P(digit) is below this is dropped


@dataclass(frozen=True)
class ReadDigit:
    digit: int
    confidence: float
    probabilities: np.ndarray  # (10,)
    box: Box  # upload pixels, x1 and y1 exclusive


@dataclass(frozen=True)
class ReadNumber:
    text: str
    confidence: float  # the product of its digits' confidences
    digits: list[ReadDigit]

    @property
    def box(self) -> Box:
        boxes = np.array([d.box for d in self.digits])
        return (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))


@dataclass(frozen=True)
class Reading:
    numbers: list[ReadNumber]
    width: int
    height: int
    format: str
    truncated: bool  # the page had more ink than is read in one request; what was read is here
    candidates: int  # runs of pieces the network scored
    prepare_s: float
    total_s: float


@dataclass
class Prepared:
    """A page cut into candidates, before any network has seen it."""

    page: Page
    layout: segment.Layout
    runs: list[list[tuple[int, int]]]  # per word (in reading order): its runs with a picture
    pictures: np.ndarray  # (N, 28, 28), the runs of every word in that order
    truncated: bool
    one: np.ndarray | None = None  # (N,) the cut network's probability that each is one digit

    @property
    def words(self) -> list[segment.Word]:
        return [w for line in self.layout.lines for w in line]


def prepare(
    img: Image.Image, cuts: CutScorer | None = None, side: int = READ_SIDE, give_up_above: int | None = None
) -> Prepared:
    """The page's runs of pieces and their pictures, ready for the digit network, each
    already judged by the cut network. `side`, `give_up_above`: see `read`."""
    page = read_page(img, side)
    judge = (lambda x: float(cuts.one_digit(x[None])[0])) if cuts is not None else None
    layout = segment.layout(page.ink, judge, give_up_above)
    runs: list[list[tuple[int, int]]] = []
    pictures: list[np.ndarray] = []
    contexts: list[np.ndarray] = []
    truncated = layout.truncated
    for word in (w for line in layout.lines for w in line):
        mine: list[tuple[int, int]] = []
        if len(pictures) < segment.MAX_CANDIDATES:
            for i, j in segment.runs(word):
                pic = segment.picture(layout, word.pieces[i:j])
                if pic is not None:
                    mine.append((i, j))
                    pictures.append(pic)
                    if cuts is not None:
                        contexts.append(
                            np.concatenate([pic[None], segment.context(layout, word.pieces[i:j], word.height)])
                        )
        else:
            truncated = True
        runs.append(mine)
    stacked = np.stack(pictures) if pictures else np.zeros((0, 28, 28), np.float32)
    one = cuts.one_digit(np.stack(contexts)) if cuts is not None and contexts else None
    return Prepared(page, layout, runs, stacked, truncated, one)


def _box(page: Page, work: Box) -> Box:
    x0, y0, x1, y1 = work
    s = page.scale
    return (
        min(int(x0 * s), page.width - 1),
        min(int(y0 * s), page.height - 1),
        min(max(int(np.ceil(x1 * s)), int(x0 * s) + 1), page.width),
        min(max(int(np.ceil(y1 * s)), int(y0 * s) + 1), page.height),
    )


def _writing(runs: Iterable[decode.Scored]) -> bool:
    """Whether a word read as two or more digits is more likely writing (a label beside a
    number): the verdict network doubts its digits, taken together, more than WORD_DOUBT.
    (Asked of single digits too, it dropped real ones it doubts: a thick marker 8.)"""
    doubts = [math.log(max(float(r.judged[0]), 1e-6)) for r in runs if r.judged is not None]
    return bool(doubts) and sum(doubts) / len(doubts) < math.log(WORD_DOUBT)


def kept(runs: list[decode.Scored], judge: Judge | None) -> list[bool]:
    """Which runs of a word's best path are read as digits. A word of one digit goes when
    the verdict head calls it not a digit; a longer word only as a whole, when its digits
    together are doubted (`_writing`). Dropping the doubted digits of a longer word one by
    one left the rest of a label as digits and took real digits out of numbers."""
    if len(runs) == 1:
        (s,) = runs
        doubted = (
            judge is not None and s.judged is not None and judge.decide(torch.from_numpy(s.judged)) == "not_a_digit"
        )
        return [not doubted]
    return [not _writing(runs)] * len(runs)


def assemble(prep: Prepared, probs: np.ndarray, judged: np.ndarray | None, judge: Judge | None) -> list[ReadNumber]:
    """The best grouping of each word, less the runs `kept` leaves out."""
    numbers: list[ReadNumber] = []
    row = 0
    for word, runs in zip(prep.words, prep.runs, strict=True):
        scored = {}
        for k, (i, j) in enumerate(runs):
            _, y0, _, y1 = segment.box(word.pieces[i:j])
            judged_k = judged[row + k] if judged is not None else None
            one = float(prep.one[row + k]) if prep.one is not None else None
            scored[i, j] = decode.Scored(probs[row + k], judged_k, (y1 - y0) / word.height, one)
        row += len(runs)
        digits = []
        path = decode.best_path(len(word.pieces), scored)
        for run, keep in zip(path, kept([scored[run] for run in path], judge), strict=True):
            if keep:
                s = scored[run]
                d = int(s.probabilities.argmax())
                box = _box(prep.page, segment.box(word.pieces[run[0] : run[1]]))
                digits.append(ReadDigit(d, float(s.probabilities[d]), s.probabilities, box))
        if digits:
            text = "".join(str(d.digit) for d in digits)
            numbers.append(ReadNumber(text, float(np.prod([d.confidence for d in digits])), digits))
    return numbers


async def read(
    img: Image.Image,
    model: ServedModel,
    gate: Gate,
    cuts: CutScorer | None,
    side: int = READ_SIDE,
    give_up_above: int | None = None,
) -> Reading:
    """The page work runs in `gate`'s low-priority thread; the network passes in the
    model's scheduler, at normal priority, batched with everything else. The page is read
    at most `side` pixels on its longer side; with more strokes than `give_up_above`,
    nothing is read (truncated)."""
    scheduler = model.scheduler
    assert scheduler is not None
    start = time.perf_counter()
    prep = await gate.run(prepare, img, cuts, side, give_up_above)
    t_segment = time.perf_counter() - start
    probs, judged = await _score(prep, scheduler)
    return _reading(prep, probs, judged, model.judge, t_segment, start)


async def _score(prep: Prepared, scheduler: BatchScheduler) -> tuple[np.ndarray, np.ndarray | None]:
    if not len(prep.pictures):
        return np.zeros((0, 10), np.float32), None
    x = to_tensor(list(prep.pictures))
    step = scheduler.max_batch_size
    parts = await asyncio.gather(*(scheduler.submit(x[i : i + step]) for i in range(0, len(x), step)))
    return _split(torch.cat(parts))


def _split(out: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    p, j = split_answer(out)
    return p.float().numpy(), (j.float().numpy() if j is not None else None)


def read_here(
    img: Image.Image,
    model: ServedModel,
    cuts: CutScorer | None,
    side: int = READ_SIDE,
    give_up_above: int | None = None,
) -> Reading:
    """The same reading in the calling thread, without a scheduler: the CLI's local mode
    and the benchmarks."""
    start = time.perf_counter()
    prep = prepare(img, cuts, side, give_up_above)
    t_segment = time.perf_counter() - start
    if len(prep.pictures):
        probs, judged = _split(model.answer(to_tensor(list(prep.pictures))))
    else:
        probs, judged = np.zeros((0, 10), np.float32), None
    return _reading(prep, probs, judged, model.judge, t_segment, start)


def _reading(
    prep: Prepared, probs: np.ndarray, judged: np.ndarray | None, judge: Judge | None, t_prep: float, start: float
) -> Reading:
    page = prep.page
    numbers = assemble(prep, probs, judged, judge)
    return Reading(
        numbers,
        page.width,
        page.height,
        page.format,
        prep.truncated,
        len(prep.pictures),
        t_prep,
        time.perf_counter() - start,
    )
