import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, scalar_dtypes
from PIL import Image

from benchmarks.harness import encode, png_bytes, png_with_header
from convlens.app.api.errors import status_of
from convlens.app.core.errors import (
    BlankImage,
    DomainError,
    EmptyImage,
    ImageTooLarge,
    UnreadableImage,
    UnsupportedMediaType,
)
from convlens.app.imaging.preprocess import preprocess, preprocess_array
from convlens.model.uploads import ink_box

MAX_PIXELS = 50_000_000


def run(data: bytes) -> np.ndarray:
    return preprocess(data, MAX_PIXELS).pixels


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    idx = np.arange(a.shape[0])
    return float(a.sum(1) @ idx / a.sum()), float(a.sum(0) @ idx / a.sum())


def test_mnist_digits_pass_essentially_unchanged(mnist_test):
    diffs = [np.abs(preprocess_array(x)[0] - x / 255).max() for x in mnist_test.images[:300]]
    # the only changes: a <1 % contrast stretch, and a 1 px re-centring for a few digits
    assert np.mean(np.array(diffs) <= 2 / 255) >= 0.97


def test_mnist_png_through_bytes_equals_array_path(mnist_test):
    x = mnist_test.images[0]
    np.testing.assert_array_equal(run(png_bytes(x)), preprocess_array(x)[0])


def test_dark_ink_on_white_is_inverted_to_mnist(mnist_test):
    x = mnist_test.images[3]
    pre = preprocess(png_bytes(255 - x), MAX_PIXELS)
    assert pre.inverted
    np.testing.assert_allclose(pre.pixels, preprocess_array(x)[0], atol=2 / 255)


def test_enlarged_off_centre_digit_is_cropped_fitted_and_centred(mnist_test):
    x = mnist_test.images[5]
    big = Image.fromarray(255 - x).resize((280, 280), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (900, 500), 255)
    canvas.paste(big, (600, 20))
    out = run(encode(canvas.convert("RGB"), "JPEG", quality=85))
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)  # 20 px box (+1 for rounding)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6
    # and it still looks like the original digit (up to where a 1 px rounding puts it)
    ref = preprocess_array(x)[0]
    best = max(
        np.corrcoef(np.roll(out, (dy, dx), (0, 1)).ravel(), ref.ravel())[0, 1]
        for dy in range(-2, 3)
        for dx in range(-2, 3)
    )
    assert best > 0.9


@pytest.mark.parametrize("ink", [(0, 0, 0), (255, 255, 255), (20, 60, 200)])
def test_transparent_png_with_dark_or_light_ink(mnist_test, ink):
    x = mnist_test.images[1]
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = x
    out = run(png_bytes(rgba, "RGBA"))
    np.testing.assert_allclose(out, preprocess_array(x)[0], atol=0.02)


def test_exif_orientation_is_honoured(mnist_test):
    x = mnist_test.images[7]
    ref = preprocess_array(x)[0]
    # stored rotated; orientation 6 says "rotate 90 clockwise to display"
    stored = Image.fromarray(x).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = run(encode(stored, "JPEG", quality=95, exif=exif))
    # upright is clearly the closest orientation
    errors = [np.abs(np.rot90(out, k) - ref).mean() for k in range(4)]
    assert errors[0] < 0.8 * min(errors[1:]), errors


def test_sixteen_bit_cmyk_palette_and_gif(mnist_test):
    x = mnist_test.images[2]
    ref = preprocess_array(x)[0]
    sixteen = png_bytes(x.astype(np.uint16) * 257)
    cmyk = encode(Image.fromarray(255 - x).convert("CMYK"), "JPEG", quality=95)
    pal = Image.fromarray(255 - x).convert("P")
    pal.info["transparency"] = 255
    frames = [Image.fromarray(x).convert("P"), Image.fromarray(np.zeros_like(x)).convert("P")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert np.abs(run(sixteen) - ref).max() < 0.01
    assert np.abs(run(cmyk) - ref).mean() < 0.03
    assert np.abs(run(encode(pal, "PNG")) - ref).mean() < 0.03
    assert np.abs(run(gif) - ref).max() < 0.01  # first frame, not the black second one


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyImage),
        (b"\x00\x01 not an image at all", UnreadableImage),
        (png_with_header(50_000, 50_000), ImageTooLarge),
        (png_with_header(40, 40), UnreadableImage),  # truncated pixel data
        (encode(Image.new("L", (28, 28)), "ICO"), UnsupportedMediaType),
        (png_bytes(np.zeros((28, 28), np.uint8)), BlankImage),
        (png_bytes(np.full((50, 30), 255, np.uint8)), BlankImage),
    ],
    ids=["empty", "random", "50k-header", "truncated", "ico", "black", "white"],
)
def test_bad_inputs_raise_named_errors(data, error):
    with pytest.raises(error):
        run(data)


def test_truncated_png_and_jpeg(mnist_test):
    x = mnist_test.images[0]
    for data in (png_bytes(x), encode(Image.fromarray(x), "JPEG")):
        with pytest.raises(UnreadableImage):
            run(data[: len(data) // 2])


def test_faint_ink_only_is_not_a_crash():
    """Found by Hypothesis: noisy paper whose only 'ink' is faint everywhere."""
    a = np.full((8, 30), 903, dtype=np.int16)
    a[0, 0], a[6, 9], a[7, 10] = -3198, 0, 0
    try:
        out, _ = preprocess_array(a)
    except BlankImage:
        return
    assert out.shape == (28, 28) and np.isfinite(out).all()


@pytest.mark.parametrize("contrast", [0.08, 0.2])
def test_a_faint_but_visible_digit_is_not_refused(mnist_test, contrast):
    x = mnist_test.images[4].astype(np.float32) / 255
    grey = 0.6 - contrast * x  # light grey pencil on grey paper
    out, inverted = preprocess_array(grey)
    assert inverted
    np.testing.assert_allclose(out, preprocess_array(mnist_test.images[4])[0], atol=0.05)


def test_uniform_pictures_are_blank():
    for value in (0.0, 0.5, 1.0):
        with pytest.raises(BlankImage):
            preprocess_array(np.full((40, 30), value, np.float32))
    with pytest.raises(BlankImage):
        preprocess_array(np.full((40, 30), 0.5, np.float32) + np.float32(0.04) * (np.arange(30) % 2))


@settings(max_examples=150, deadline=None)
@given(arrays(dtype=scalar_dtypes(), shape=array_shapes(min_dims=0, max_dims=3, max_side=60)))
def test_any_array_gives_a_finite_28x28_or_a_documented_error(a):
    assert_28x28_or_4xx(a)


def assert_28x28_or_4xx(a: np.ndarray) -> None:
    try:
        out, _ = preprocess_array(a)
    except DomainError as e:
        assert 400 <= status_of(e) < 500
        return
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_any_random_picture_size(h, w, seed):
    a = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    try:
        out = run(png_bytes(a))
    except BlankImage:
        return
    assert out.shape == (28, 28) and np.isfinite(out).all()


@settings(max_examples=100, deadline=None)
@given(arrays(np.float32, st.integers(1, 300), elements=st.floats(0, 1, width=32)), st.floats(0, 100))
def test_median_and_percentile_are_numpys(a, q):
    """The partition-based shortcuts give what np.median / np.percentile give."""
    from convlens.app.imaging.preprocess import _median, _percentile

    assert _median(a) == pytest.approx(float(np.median(a)), abs=1e-6)
    assert _percentile(a, q) == pytest.approx(float(np.percentile(a, q)), abs=1e-6)


def _page(x: np.ndarray) -> np.ndarray:
    """The MNIST digit as dark ink, 5x, on a white page with room around it (uint8)."""
    big = np.asarray(Image.fromarray(255 - x).resize((140, 140), Image.Resampling.BICUBIC))
    return np.pad(big, ((30, 50), (60, 20)), constant_values=255)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("sides", ["left", "top+right", "all four"])
def test_a_desk_or_frame_along_the_edges_is_not_read_as_ink(mnist_test, sides):
    x = mnist_test.images[7]
    page = _page(x)
    framed = page.copy()
    if sides in ("left", "all four"):
        framed[:, :18] = 60
    if sides in ("top+right", "all four"):
        framed[:12] = 60
        framed[:, -9:] = 60
    if sides == "all four":
        framed[-12:] = 60
    expected = run(png_bytes(page))
    got = run(encode(Image.fromarray(framed).convert("RGB"), "JPEG", quality=90))
    assert correlation(got, expected) > 0.95


def test_an_mnist_digit_pasted_on_a_light_page_is_read_white_on_black(mnist_test):
    x = mnist_test.images[11]
    page = np.full((300, 260), 245, np.uint8)
    page[40:208, 30:198] = np.asarray(Image.fromarray(x).resize((168, 168), Image.Resampling.NEAREST))
    pre = preprocess(png_bytes(page), MAX_PIXELS)
    assert not pre.inverted  # the digit's own page is black: its ink is the white
    assert correlation(pre.pixels, preprocess_array(x)[0]) > 0.9


def test_a_bar_along_a_tight_crop_stays_part_of_the_digit():
    seven = np.full((60, 40), 255, np.uint8)
    seven[:8] = 0  # the bar fills the top rows from edge to edge
    for y in range(8, 60):  # the stem runs down from its right end, with no paper line between
        x = int(38 - (y - 8) * 0.45)
        seven[y, max(x - 4, 0) : x + 1] = 0
    out = run(png_bytes(seven))
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    top = out[rows[0] : rows[0] + 3, cols[0] : cols[-1] + 1]
    assert top.mean(1).max() > 0.8  # the bar is still the top of the digit, edge to edge


def test_a_solid_bar_is_a_digit_not_a_mat():
    one = np.full((80, 60), 255, np.uint8)
    one[10:70, 25:35] = 0
    out = run(png_bytes(one))
    assert (out > 0.5).sum() >= 20 * 2  # a 1, at 20 px high


def test_paper_lit_from_one_side_without_noise_is_not_read_as_ink(mnist_test):
    page = _page(mnist_test.images[7])
    ramp = np.linspace(0.55, 1.0, page.shape[1])[None, :]
    lit = (page * ramp).astype(np.uint8)  # a rendered gradient: no noise at all
    assert correlation(run(png_bytes(lit)), run(png_bytes(page))) > 0.95


def test_a_small_rimmed_square_is_not_taken_for_a_page():
    dot = np.full((64, 64), 255, np.uint8)
    dot[30:33, 30:33] = 0
    dot[31, 31] = 255  # a hole: rimmed on all four sides, but nothing fits inside
    assert run(png_bytes(dot)).max() > 0.5


@st.composite
def blocky_pictures(draw: st.DrawFn) -> np.ndarray:
    """Canvases of solid bands, blocks and rings: the shapes the mat search looks at."""
    h, w = draw(st.integers(32, 160)), draw(st.integers(32, 160))
    a = np.full((h, w), draw(st.integers(0, 255)), np.uint8)
    for _ in range(draw(st.integers(1, 6))):
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        y1, x1 = draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))
        a[y0:y1, x0:x1] = draw(st.integers(0, 255))
        if draw(st.booleans()):  # hollow it: a ring, or a block with a hole
            t = draw(st.integers(1, 4))
            a[y0 + t : y1 - t, x0 + t : x1 - t] = draw(st.integers(0, 255))
    return a


@settings(max_examples=300, deadline=None)
@given(blocky_pictures())
def test_bands_blocks_and_rings_give_a_28x28_or_a_documented_error(a):
    assert_28x28_or_4xx(a)


def _scan(mnist_test, side: int = 10, i: int = 3) -> np.ndarray:
    """A low-resolution scan: MNIST digit i's ink box squeezed into side x side px."""
    box = Image.fromarray(ink_box(mnist_test.images[i], 0))
    return np.asarray(box.resize((side, side), Image.Resampling.BOX))


@pytest.mark.parametrize("k", [2, 3, 5, 12])
def test_a_scan_zoomed_without_smoothing_is_read_on_its_own_grid(mnist_test, k):
    scan = _scan(mnist_test)
    zoomed = Image.fromarray(255 - scan).resize((10 * k, 10 * k), Image.Resampling.NEAREST)
    np.testing.assert_allclose(run(encode(zoomed, "PNG")), run(png_bytes(255 - scan)), atol=1e-5)


@pytest.mark.parametrize("size", [(25, 25), (34, 47), (47, 21)])
def test_a_zoom_by_a_fraction_is_read_like_the_scan(mnist_test, size):
    scan = _scan(mnist_test)
    zoomed = Image.fromarray(scan).resize(size, Image.Resampling.NEAREST)
    np.testing.assert_allclose(run(encode(zoomed, "PNG")), run(png_bytes(scan)), atol=1e-5)


def test_a_picture_with_rows_of_its_own_is_not_reduced(mnist_test):
    from convlens.app.imaging.preprocess import native_grid

    x = mnist_test.images[0].astype(np.float32) / 255
    assert native_grid(x) is x
    doubled = np.repeat(np.repeat(x, 2, 0), 2, 1)
    doubled[30] = doubled[31] * 0.5  # one row of its own, across the digit
    assert native_grid(doubled) is doubled
    page = np.ones((100, 90), np.float32)
    page[7:91, 10:94] = np.repeat(np.repeat(x, 3, 0), 3, 1)[:, :80]  # a zoomed tile pasted off the grid
    assert native_grid(page) is page


@pytest.mark.parametrize("resample", [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC])
def test_a_big_frame_filling_scan_is_not_taken_for_shaded_paper(mnist_test, resample):
    """8 px scans filling their frame, enlarged smoothly to 64 and to 160 px: from 128 px
    the shading model may run. A digit covering half an edge made that edge's median ink
    (uneven light), and the ramps along the edges read as noise; either way the strokes
    were taken for shadow and subtracted. Of these 20, the two sizes agreed on 4 (bilinear)
    and 5 (bicubic); with either fix alone at most 11; now 13 and 16. Most of the rest
    cover a whole edge, which still reads as uneven light (docs/preprocessing.md)."""
    agree = 0
    for i in range(20):
        scan = 255 - _scan(mnist_test, 8, i)
        small, big = (run(encode(Image.fromarray(scan).resize((s, s), resample), "PNG")) for s in (64, 160))
        agree += correlation(small, big) > 0.95
    assert agree >= 12
