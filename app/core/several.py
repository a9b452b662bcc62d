"""Several digits in one upload: the reader's second look at a prediction the verdict flags.

The verdict network sees the upload as the digit network does, squeezed into 20 px, where
three typed digits are a thin strip it often calls `not_a_digit`. When it flags an upload
(any verdict but `digit`), the number reader reads the upload itself; if it surely finds
one number of two or more digits the verdict becomes `several_digits` and the answer says
what it read. A `digit` verdict is never looked at again (that would cost every prediction a page read),
and the second look only moves a flagged upload between the flagged verdicts: it cannot
make anything a digit.

The look runs on a copy at most LOOK_SIDE pixels on its longer side, in a gate of its own
(`CONVLENS_LOOK_CONCURRENCY`, `CONVLENS_LOOK_QUEUE`), at low priority, apart from the
pages of /v1/read; when that gate is full the network's verdict stands unread, so a
prediction is never refused, nor held up behind page photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from convlens.app.core.admission import Gate
from convlens.app.core.errors import DomainError, Overloaded
from convlens.app.core.reader import Reading, read, read_here
from convlens.app.core.served_model import ServedModel
from convlens.app.core.verdict import Verdict
from convlens.app.reading.cuts import CutScorer

LOOK_SIDE = 512  # a flagged upload is read at most this big: 2-4 digits stay 40+ px tall
LOOK_STROKES = 30  # more strokes than this is a texture or a page, not a number: not read
MIN_DIGITS = 2
# one number becomes `several_digits` only when its digits are read this surely (geometric
# mean) and are not all 1s (what stripes and hatching read as); tuning split, see docs/verdict.md
SURE = 0.95


@dataclass(frozen=True)
class Look:
    verdict: Verdict | None
    reading: str | None  # the numbers read, space-separated, when the verdict is several_digits


def flagged(verdict: Verdict | None) -> bool:
    return verdict is not None and verdict != "digit"


def _a_number(reading: Reading) -> bool:
    if len(reading.numbers) != 1 or len(reading.numbers[0].digits) < MIN_DIGITS:
        return False
    number = reading.numbers[0]
    sure = math.exp(sum(math.log(max(d.confidence, 1e-9)) for d in number.digits) / len(number.digits))
    return sure >= SURE and set(number.text) != {"1"}


def settle(verdict: Verdict | None, reading: Reading | None) -> Look:
    """The verdict after the reader's look (None: it did not look). One number of two or
    more digits, read surely, makes it `several_digits`; anything else keeps the network's
    verdict. A `several_digits` verdict says what was read whenever that is two digits or
    more."""
    if reading is None or reading.truncated or not flagged(verdict):
        return Look(verdict, None)
    text = " ".join(n.text for n in reading.numbers)
    if _a_number(reading):
        return Look("several_digits", text)
    digits = sum(len(n.digits) for n in reading.numbers)
    return Look(verdict, text if verdict == "several_digits" and digits >= MIN_DIGITS else None)


async def look(
    img: Image.Image, verdict: Verdict | None, model: ServedModel, gate: Gate, cuts: CutScorer | None
) -> Look:
    """The served path: skipped, not refused, when `gate` has no room."""
    if not flagged(verdict) or gate.full:
        return Look(verdict, None)
    try:
        async with gate.slot():
            return settle(verdict, await read(img, model, gate, cuts, LOOK_SIDE, LOOK_STROKES))
    except Overloaded:  # filled up since `full` was asked
        return Look(verdict, None)
    except DomainError:  # the upload was already read once; a look never fails a prediction
        return Look(verdict, None)


def look_here(img: Image.Image, verdict: Verdict | None, model: ServedModel, cuts: CutScorer | None) -> Look:
    """The same look in the calling thread: the CLI and the benchmarks."""
    if not flagged(verdict):
        return Look(verdict, None)
    return settle(verdict, read_here(img, model, cuts, LOOK_SIDE, LOOK_STROKES))
