"""A page's printed lines: rules, squares and margins, photographed a little askew.

`preprocess.remove_rules` only takes out exactly level lines; a page photographed at a
tilt of a degree or two keeps its rules, and the network sees a lattice with a digit in
it (held out: 60 % of the digits on a ruled page turned by up to 4 degrees were read
right, 99.85 % once its lines are lifted), or reads an empty page as a 1, a 7 or a 4.
Here a line is paper when it runs straight across at least 80 % of the picture, at a tilt
of up to 4 degrees, and is thin against the picture's other side. Lines are found on a
copy max-pooled to WORK px, then fitted and taken out at full resolution, keeping the ink
of any stroke that crosses them.

Lines are taken out when the page is ruled: two or more rules thin as printed ones are,
or rules both across and down. A lone line may be a digit's bar (a 7 cropped tight), and
a 1 is a single line down: it stays, unless nothing but specks is left without it, and
then the upload is blank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

WORK = 256  # lines are looked for on a copy max-pooled to this longer side
INK = 0.3  # ink above this is a stroke (preprocess.CLEAR)
FAINT = 0.05  # a line is followed down to this: light falling off fades it, a stroke never
SPAN = 0.8  # a paper line is inked along this share of its way across the picture ...
THIN = 0.08  # ... and is at most this share of the other side thick (and at least 3 px allowed)
MAX_TILT = 4.0  # degrees a photographed page may be askew
RULE, RULE_SHARE = 3, 0.03  # a printed rule is at most this thick (px, share of the picture)
SPECK = 0.001  # what is left may be specks up to this share of the picture (JPEG, line ends)
EIGHT = np.ones((3, 3), dtype=bool)


def _factor(shape: tuple[int, ...]) -> int:
    return -(-max(shape) // WORK)


def _pooled(a: np.ndarray, k: int) -> np.ndarray:
    """Max-pooled by k (a 1 px line stays a line); slice by slice, which is many times
    faster than a reduction over a reshaped array's strided axes."""
    if k == 1:
        return a
    h, w = a.shape
    padded = np.zeros((-(-h // k) * k, -(-w // k) * k), dtype=a.dtype)
    padded[:h, :w] = a
    rows = padded[0::k].copy()
    for i in range(1, k):
        np.maximum(rows, padded[i::k], out=rows)
    out = rows[:, 0::k].copy()
    for i in range(1, k):
        np.maximum(out, rows[:, i::k], out=out)
    return out


def _level_lines(faint: np.ndarray) -> np.ndarray:
    """Lines across the picture (left to right, tilted up to MAX_TILT), labelled. Each tilt
    shears the columns so that its lines lie level; a line is a run of sheared rows each
    inked (faintly) along SPAN of its way across the picture, at most THIN thick. Sheared
    rows start above and below the picture, for lines that cross only a corner. Tilts are
    half a pixel's drift across the picture apart, so every line lies within a quarter
    pixel of level at one of them. Rows are counted per inked pixel, not per pixel of the
    picture: a page is mostly paper."""
    h, w = faint.shape
    thick = max(3, round(THIN * h))
    step = min(MAX_TILT, np.degrees(np.arctan(0.5 / w)))
    tilts = np.radians(np.arange(-MAX_TILT, MAX_TILT + step / 2, step))
    # pixel (y, x) lies on sheared row y - shift[t, x] (+ m, to index from 0)
    shift = np.round(np.tan(tilts)[:, None] * np.arange(w)).astype(np.int32)
    m = int(np.ceil(w * np.tan(np.radians(MAX_TILT))))
    n_rows = h + 2 * m
    t_index = np.arange(len(tilts), dtype=np.int32)[:, None]
    fy, fx = np.nonzero(faint)
    sheared = fy.astype(np.int32) + m - shift[:, fx]  # [t, i]: the sheared row of faint pixel i
    inked = np.bincount((sheared + t_index * n_rows).ravel(), minlength=len(tilts) * n_rows)
    inked = inked.reshape(len(tilts), n_rows)
    # a tilted line may leave through the top or bottom: its way is measured inside
    # way[t, r] = columns whose shift lies in [-r, h - r): from each tilt's count of shifts
    counts = np.bincount((t_index * (2 * m + 1) + shift + m).ravel(), minlength=len(tilts) * (2 * m + 1))
    below = np.concatenate([np.zeros((len(tilts), 1), int), counts.reshape(len(tilts), -1).cumsum(1)], 1)
    r = np.arange(n_rows) - m
    way = below[:, np.clip(h - r + m, 0, 2 * m + 1)] - below[:, np.clip(-r + m, 0, 2 * m + 1)]
    across = (inked >= SPAN * way) & (way >= 2)
    runs, n = ndimage.label(across, np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]]))
    if not n:
        return np.zeros(faint.shape, np.int32)
    thin = np.bincount(runs.ravel()) <= thick
    thin[0] = False
    # and the rows on either side of a line: its staircase rims
    chosen = ndimage.binary_dilation(thin[runs], np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=bool).T)
    hit = chosen[t_index, sheared].any(0)
    found = np.zeros_like(faint)
    found[fy[hit], fx[hit]] = True
    # one line is found at several neighbouring tilts, with the lines down the page that
    # cross it: lines are the joined pixels of runs along it (the crossings are 1 px wide)
    along = ndimage.binary_opening(found, np.ones((1, 3), dtype=bool))
    labels = ndimage.label(ndimage.binary_dilation(along, EIGHT), EIGHT)[0]
    return np.where(found, labels, 0).astype(np.int32)


@dataclass(frozen=True)
class Line:
    """A line across the picture at full resolution: row = offset + slope * column, over
    columns x0 to x1, `thick` px of ink."""

    offset: float
    slope: float
    x0: int
    x1: int
    thick: float


def _fit(ink: np.ndarray, coarse: np.ndarray, k: int) -> list[Line]:
    """Each pooled line's course and thickness at full resolution. The pooled pixels give
    its course to within k px; in a window that wide around it, each column's ink gives the
    line's centre, and the columns it crosses alone (where no stroke crosses it, so it is
    no thicker than usual) give the fitted line."""
    h, w = ink.shape
    lines = []
    py, px = np.nonzero(coarse)
    ids = coarse[py, px]
    for i in range(1, int(coarse.max()) + 1):
        y, x = py[ids == i], px[ids == i]
        if np.ptp(x) < 1:
            continue
        slope, offset = np.polyfit(x, y, 1)
        span = np.bincount(x - x.min())
        reach = int(np.ceil(k * (float(np.median(span[span > 0])) / 2 + 1)))
        cols = np.arange(k * int(x.min()), min(w, k * (int(x.max()) + 1)))
        centre = k * offset + slope * (cols - (k - 1) / 2) + (k - 1) / 2
        rows = np.round(centre).astype(int)[:, None] + np.arange(-reach, reach + 1)
        inked = (ink[np.clip(rows, 0, h - 1), cols[:, None]] > FAINT) & (rows >= 0) & (rows < h)
        count = inked.sum(1)
        if not count.any():
            continue
        thick = float(np.percentile(count[count > 0], 20))  # strokes along it only add
        alone = (count > 0) & (count <= 1.5 * thick + 1)
        if alone.sum() < 2 or np.ptp(cols[alone]) == 0:
            continue
        mid = (inked * rows).sum(1)[alone] / count[alone]
        slope, offset = np.polyfit(cols[alone], mid, 1)
        lines.append(Line(float(offset), float(slope), int(cols[0]), int(cols[-1]), thick))
    return lines


def _erase(ink: np.ndarray, across: list[Line], down: list[Line]) -> np.ndarray:
    """`ink` without the lines: inside each line's band a pixel keeps only the ink beside
    the band, so a stroke crossing a line stays whole."""
    out = ink.copy()
    _erase_into(out, across)
    _erase_into(out.T, down)
    return out


def _erase_into(out: np.ndarray, lines: list[Line]) -> None:
    h = out.shape[0]
    for line in lines:
        cols = np.arange(line.x0, line.x1 + 1)
        centre = line.offset + line.slope * cols
        half = line.thick / 2 + 1
        top = np.clip(np.ceil(centre - half).astype(int), 0, h)
        bottom = np.clip(np.floor(centre + half).astype(int), -1, h - 1)  # inclusive
        above = np.where(top > 0, out[np.maximum(top - 1, 0), cols], 0)
        below = np.where(bottom < h - 1, out[np.minimum(bottom + 1, h - 1), cols], 0)
        rows = top[:, None] + np.arange(int((bottom - top).max(initial=-1)) + 1)
        keep = rows <= bottom[:, None]
        r, c = rows[keep], np.broadcast_to(cols[:, None], rows.shape)[keep]
        beside = np.broadcast_to(np.maximum(above, below)[:, None], rows.shape)[keep]
        out[r, c] = np.minimum(out[r, c], beside)


def _specks_only(ink: np.ndarray, k: int) -> bool:
    mask = _pooled(ink, k) > INK
    if not mask.any():
        return True
    sizes = np.bincount(ndimage.label(mask, EIGHT)[0].ravel())[1:]
    return int(sizes.max()) <= max(4, SPECK * mask.size)


def lift_lines(ink: np.ndarray) -> tuple[np.ndarray, bool]:
    """The ink map without the page's printed lines, and whether it held nothing else."""
    k = _factor(ink.shape)
    pooled = _pooled(ink, k)
    if not (pooled > INK).any() or min(pooled.shape) < 8:
        return ink, False
    faint = pooled > FAINT
    across = _fit(ink, _level_lines(faint), k)
    down = _fit(ink.T, _level_lines(faint.T), k)
    if len(down) == 1 and not across:
        down = []  # a 1 is a single line down
    if not across and not down:
        return ink, False
    # a page's printed lines are thin as a rule is; on a page that has such lines, a
    # thicker one is a stroke along them (a 1 beside a line of the squares)
    rules = [ln for ln in across if ln.thick <= max(RULE, RULE_SHARE * ink.shape[0])]
    columns = [ln for ln in down if ln.thick <= max(RULE, RULE_SHARE * ink.shape[1])]
    if rules or columns:
        across, down = rules, columns
    bare = _erase(ink, across, down)
    blank = _specks_only(bare, k)
    if len(rules) < 2 and not (rules and columns) and len(columns) < 2:
        return ink, blank  # what stays is the digit, and a lone line may be its bar
    return bare, blank
