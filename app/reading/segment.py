"""A page's ink -> lines -> words -> pieces small enough that every digit is one or more
of them, and the 28 x 28 picture of any run of pieces.

Over-segmentation: each connected stroke is a piece, and a stroke wider than a digit
(digits that touch) is cut further at the valleys of its column profile. Which pieces
belong together (a 5 drawn in two strokes, a digit cut in two) and which cut is right
is not decided here but by the network (`convlens.app.reading.decode`): this module only
offers the candidates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from convlens.app.core.errors import BlankImage
from convlens.app.imaging.preprocess import centre, fit

Judge = Callable[[np.ndarray], float]
INK_LEVEL = 0.35  # a pixel is a stroke's when its ink is above this
MIN_AREA = 6  # fewer pixels than this: a speck
MAX_COMPONENTS = 3000  # more than this on one page (a carpet, a photo): the biggest are read
FLAT = 8.0  # a stroke this many times wider than tall is a rule, an underline, a page edge
MIN_HEIGHT = 8  # digits shorter than this (working pixels) are not read
SAME_LINE = 0.5  # a stroke joins a line whose band covers this share of its height
DETACHED = 0.3  # a small stroke this share of the digit height above or below a line joins it
SPECK = 0.25  # strokes smaller than this share of the line's digit height on both sides are dots
WORD_GAP = 0.75  # a gap wider than this share of the digit height starts a new number
SPLIT_WIDTH = 0.7  # strokes wider than this share of the digit height may be several digits
MIN_PIECE = 0.12  # cuts are at least this share of the digit height apart
FINE_WIDTH = 1.5  # strokes wider than this share of the digit height are cut finely (see _pieces_of) ...
SUSPECT = 0.5  # ... and narrower ones the cut network gives less than this of being one digit whole
STEP = 0.25  # ... at its valleys and every this share of the digit height
SEAM_REACH = 0.25  # a cut may wander this share of the digit height from its column
VALLEY = 0.6  # a cut's column holds at most this share of the ink of the columns beside it
MAX_GROUP = 6  # a digit is at most this many pieces
MAX_DIGIT_WIDTH = 1.5  # ... and at most this many digit heights wide
CONTEXT = 1.5  # the cut network sees this many digit heights around a candidate
MAX_CANDIDATES = 6000  # runs of pieces scored per page; beyond it the page is read in part


@dataclass(frozen=True, eq=False)
class Piece:
    label: int  # the connected stroke it is part of
    x0: int  # the columns its region spans, x1 exclusive (working pixels)
    x1: int
    y0: int  # the rows its ink spans
    y1: int
    # for a piece of a cut stroke: per row of the stroke (from `top`), the columns
    # [lo, hi) that are its own; cuts follow the gaps between touching digits, not a column
    top: int = 0
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def mask(self, labels: np.ndarray, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """Its pixels within the window labels[y0 : y0 + h, x0 : x0 + w]."""
        own = labels[y0 : y0 + h, x0 : x0 + w] == self.label
        if self.lo is None or self.hi is None:
            return own
        rows = np.arange(y0, y0 + h) - self.top
        inside = (rows >= 0) & (rows < len(self.lo))
        lo = np.where(inside, self.lo[np.clip(rows, 0, len(self.lo) - 1)], 1 << 30)
        hi = np.where(inside, self.hi[np.clip(rows, 0, len(self.hi) - 1)], -1)
        cols = np.arange(x0, x0 + w)
        return own & (cols[None, :] >= lo[:, None]) & (cols[None, :] < hi[:, None])


@dataclass
class Word:
    """Pieces close together on one line, left to right: one number, or a label."""

    pieces: list[Piece]
    height: float  # the line's digit height


@dataclass
class Layout:
    labels: np.ndarray  # (h, w) int32 connected strokes, 0 = paper
    ink: np.ndarray
    lines: list[list[Word]] = field(default_factory=list)  # top to bottom
    truncated: bool = False


@dataclass(frozen=True)
class _Stroke:
    label: int
    y0: int
    y1: int
    x0: int
    x1: int
    area: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        return self.x1 - self.x0


def _strokes(ink: np.ndarray) -> tuple[np.ndarray, list[_Stroke], bool]:
    labels, n = ndimage.label(ink > INK_LEVEL, structure=np.ones((3, 3), bool))
    if n == 0:
        return labels, [], False
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    strokes = [
        _Stroke(i + 1, sl[0].start, sl[0].stop, sl[1].start, sl[1].stop, int(areas[i + 1]))
        for i, sl in enumerate(ndimage.find_objects(labels))
        if sl is not None and areas[i + 1] >= MIN_AREA
    ]
    strokes = [s for s in strokes if s.w < FLAT * s.h]
    truncated = len(strokes) > MAX_COMPONENTS
    if truncated:
        strokes = sorted(strokes, key=lambda s: -s.area)[:MAX_COMPONENTS]
    return labels, strokes, truncated


def _band(members: list[_Stroke]) -> tuple[float, float]:
    """A line's band: the median top and bottom of its taller strokes."""
    tall = max(s.h for s in members)
    core = [s for s in members if s.h >= 0.5 * tall]
    return float(np.median([s.y0 for s in core])), float(np.median([s.y1 for s in core]))


def _lines(strokes: list[_Stroke]) -> list[list[_Stroke]]:
    """Tallest strokes first: they set the bands the small ones (a 5's bar) fall into."""
    lines: list[list[_Stroke]] = []
    bands: list[tuple[float, float]] = []
    for s in sorted(strokes, key=lambda s: -s.h):
        best, best_overlap = -1, -np.inf
        for i, (top, bottom) in enumerate(bands):
            overlap = min(bottom, s.y1) - max(top, s.y0)
            joins = overlap >= SAME_LINE * min(s.h, bottom - top) or (best < 0 and _detached(s, lines[i], top, bottom))
            if joins and overlap > best_overlap:
                best, best_overlap = i, overlap
        if best < 0:
            lines.append([s])
            bands.append((s.y0, s.y1))
        else:
            lines[best].append(s)
            bands[best] = _band(lines[best])
    order = sorted(range(len(lines)), key=lambda i: sum(bands[i]))
    return [lines[i] for i in order]


def _detached(s: _Stroke, members: list[_Stroke], top: float, bottom: float) -> bool:
    """A small stroke just above or below a line's digits, over one of them: a 5's bar
    written apart from its body, a 7's crossbar."""
    height = bottom - top
    near = -DETACHED * height <= min(bottom, s.y1) - max(top, s.y0)
    return s.h < 0.5 * height and near and any(min(m.x1, s.x1) > max(m.x0, s.x0) for m in members)


def _height(members: list[_Stroke]) -> float:
    tall = max(s.h for s in members)
    return float(np.median([s.h for s in members if s.h >= 0.5 * tall]))


def _cuts(labels: np.ndarray, s: _Stroke, height: float) -> list[int]:
    """Columns where touching digits may part: the valleys of the stroke's column profile
    (its ink per column) that it rises well out of on both sides, as it does between two
    digits' bodies; not the level stretches of one slanted stroke."""
    profile = (labels[s.y0 : s.y1, s.x0 : s.x1] == s.label).sum(0).astype(np.float32)
    k = max(1, round(0.06 * height))
    smooth = np.convolve(profile, np.ones(k, np.float32) / k, mode="same")
    gap = max(2, round(MIN_PIECE * height))
    reach = max(gap, round(0.5 * height))
    valleys = []
    for x in range(gap, s.w - gap):
        left, right = smooth[max(0, x - reach) : x].max(), smooth[x + 1 : x + 1 + reach].max()
        if smooth[x] <= VALLEY * min(left, right):
            valleys.append(x)
    chosen: list[int] = []
    for x in sorted(valleys, key=lambda x: (smooth[x], x)):
        if all(abs(x - c) >= gap for c in chosen):
            chosen.append(x)
    return sorted(s.x0 + c for c in chosen)


def _seam(own: np.ndarray, c: int, reach: int) -> np.ndarray:
    """The path from top to bottom near column c (of the stroke's box) that crosses the
    least ink, moving at most one column a row: between two touching digits it slips
    through the gap where they meet; at a column it could not."""
    h, w = own.shape
    a, b = max(1, c - reach), min(w - 1, c + reach + 1)
    cost = own[:, a:b].astype(np.float32) + 0.01 * np.abs(np.arange(a, b) - c)[None, :] / max(reach, 1)
    acc = cost.copy()
    step = np.zeros((h, b - a), np.int8)
    for r in range(1, h):
        prev = acc[r - 1]
        left = np.concatenate([[np.inf], prev[:-1]])
        right = np.concatenate([prev[1:], [np.inf]])
        options = np.stack([left, prev, right])
        step[r] = options.argmin(0) - 1
        acc[r] += options.min(0)
    x = int(acc[-1].argmin())
    path = np.empty(h, np.int64)
    for r in range(h - 1, -1, -1):
        path[r] = a + x
        x += int(step[r, x])
    return path


def _pieces_of(page: Layout, s: _Stroke, height: float, judge: Judge | None) -> list[Piece]:
    """The stroke whole, or cut straight down at its valleys; a stroke that is not one
    digit is cut along seams, at its valleys and all along (digits that overlap leave no
    valley): one too wide to be one, or one that `judge` (the cut network) finds unlikely
    to be one digit whole. Cutting every wide stroke so finely cut wide single digits (a
    slanted 8) into two that each look like a digit."""
    labels = page.labels
    whole = Piece(s.label, s.x0, s.x1, s.y0, s.y1)
    if s.w <= SPLIT_WIDTH * height:
        return [whole]
    fine = s.w > FINE_WIDTH * height
    if not fine and judge is not None:
        pic = picture(page, [whole])
        fine = pic is not None and judge(np.concatenate([pic[None], context(page, [whole], height)])) < SUSPECT
    columns = _cuts(labels, s, height)
    if fine:
        step = max(2, round(STEP * height))
        columns = sorted({*columns, *range(s.x0 + step, s.x1 - step + 1, step)})
    if not columns:
        return [Piece(s.label, s.x0, s.x1, s.y0, s.y1)]
    own = labels[s.y0 : s.y1, s.x0 : s.x1] == s.label
    reach = max(2, round(SEAM_REACH * height))
    seams = [np.full(s.h, 0, np.int64)]
    for c in columns:
        path = _seam(own, c - s.x0, reach) if fine else np.full(s.h, c - s.x0, np.int64)
        seam = np.maximum(path, seams[-1])
        if np.abs(seam - seams[-1]).mean() >= 2:
            seams.append(seam)
    seams.append(np.full(s.h, s.w, np.int64))
    out = []
    for lo, hi in itertools.pairwise(seams):
        piece = Piece(s.label, s.x0 + int(lo.min()), s.x0 + int(hi.max()), s.y0, s.y1, s.y0, s.x0 + lo, s.x0 + hi)
        ys, xs = np.nonzero(piece.mask(labels, s.y0, s.x0, s.h, s.w))
        if ys.size:
            x0, x1 = s.x0 + int(xs.min()), s.x0 + int(xs.max()) + 1
            out.append(Piece(s.label, x0, x1, s.y0 + int(ys.min()), s.y0 + int(ys.max()) + 1, s.y0, piece.lo, piece.hi))
    return out


def _pieces(page: Layout, strokes: list[_Stroke], height: float, judge: Judge | None) -> list[Piece]:
    out = [p for s in strokes for p in _pieces_of(page, s, height, judge)]
    return sorted(out, key=lambda p: (p.x0 + p.x1, p.y0))


def _words(members: list[_Stroke], height: float) -> list[list[_Stroke]]:
    words: list[list[_Stroke]] = []
    right = -np.inf
    for s in sorted(members, key=lambda s: s.x0):
        if not words or s.x0 - right > WORD_GAP * height:
            words.append([])
        words[-1].append(s)
        right = max(right, s.x1)
    return words


def layout(ink: np.ndarray, judge: Judge | None = None, give_up_above: int | None = None) -> Layout:
    """`judge`: (3, 28, 28) candidate input -> P(exactly one digit), see `_pieces_of`.
    With more strokes than `give_up_above` nothing is read (an empty layout, truncated):
    for callers that expect a few digits, not a page."""
    labels, strokes, truncated = _strokes(ink)
    if give_up_above is not None and len(strokes) > give_up_above:
        return Layout(labels, ink, truncated=True)
    out = Layout(labels, ink, truncated=truncated)
    for members in _lines(strokes):
        height = _height(members)
        if height < MIN_HEIGHT:
            continue
        members = [s for s in members if max(s.h, s.w) >= SPECK * height]
        words = [Word(_pieces(out, w, height, judge), height) for w in _words(members, height)]
        out.lines.append([w for w in words if w.pieces])
    return out


def runs(word: Word) -> list[tuple[int, int]]:
    """The runs of pieces [i, j) that could be one digit."""
    out = []
    for i in range(len(word.pieces)):
        x0 = word.pieces[i].x0
        for j in range(i + 1, min(i + MAX_GROUP, len(word.pieces)) + 1):
            x1 = max(p.x1 for p in word.pieces[i:j])
            if j > i + 1 and x1 - x0 > MAX_DIGIT_WIDTH * word.height:
                break
            out.append((i, j))
    return out


def box(pieces: list[Piece]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the pieces' ink, working pixels, x1 and y1 exclusive."""
    return (
        min(p.x0 for p in pieces),
        min(p.y0 for p in pieces),
        max(p.x1 for p in pieces),
        max(p.y1 for p in pieces),
    )


def picture(layout: Layout, pieces: list[Piece]) -> np.ndarray | None:
    """The pieces' own ink (with its faint rim, but not a neighbour's ink reaching into
    their box), laid out as MNIST lays out a digit; None if they hold no clear ink."""
    h, w = layout.labels.shape
    x0, y0, x1, y1 = box(pieces)
    x0, y0, x1, y1 = max(x0 - 1, 0), max(y0 - 1, 0), min(x1 + 1, w), min(y1 + 1, h)
    mine = np.zeros((y1 - y0, x1 - x0), bool)
    for p in pieces:
        mine |= p.mask(layout.labels, y0, x0, y1 - y0, x1 - x0)
    mine |= ndimage.binary_dilation(mine) & (layout.labels[y0:y1, x0:x1] == 0)
    try:
        return centre(fit(np.where(mine, layout.ink[y0:y1, x0:x1], 0.0).astype(np.float32)))
    except BlankImage:
        return None


def context(layout: Layout, pieces: list[Piece], height: float) -> np.ndarray:
    """(2, 28, 28): the pieces' own ink and all other ink in a square 1.5 digit heights
    wide around them, at the line's scale rather than their own: what a picture laid out
    like an MNIST digit hides (that a "1" is only the stem of a 7, that more of the same
    stroke runs on beside it) is plain here."""
    x0, y0, x1, y1 = box(pieces)
    half = max(4, round(CONTEXT * height / 2))
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    top, left = cy - half, cx - half
    h, w = layout.labels.shape
    a, b, c, d = max(top, 0), max(left, 0), min(top + 2 * half, h), min(left + 2 * half, w)
    own = np.zeros((2 * half, 2 * half), bool)
    for p in pieces:
        own[a - top : c - top, b - left : d - left] |= p.mask(layout.labels, a, b, c - a, d - b)
    window = np.zeros((2 * half, 2 * half), np.float32)
    window[a - top : c - top, b - left : d - left] = layout.ink[a:c, b:d]
    own |= ndimage.binary_dilation(own) & (window <= INK_LEVEL)
    mine = np.where(own, window, 0.0)
    out = np.stack([_shrink(mine), _shrink(window - mine)])
    return out.astype(np.float32)


def _shrink(a: np.ndarray) -> np.ndarray:
    img = Image.fromarray(a.astype(np.float32), mode="F").resize((28, 28), Image.Resampling.BOX)
    return np.asarray(img, np.float32).clip(0, 1)
