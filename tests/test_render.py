"""Feature maps and inputs as pictures: colours, grid layout, overlays."""

import io

import numpy as np
from PIL import Image

from convlens.app.imaging.render import (
    DIVERGING,
    GAP,
    GAP_RGB,
    SEQUENTIAL,
    TILE,
    colorize,
    feature_grid_png,
    grid,
    heatmap_png,
    input_png,
)


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_signed_maps_are_white_at_zero_and_coloured_by_sign():
    maps = np.array([[[-2.0, 0.0, 2.0]]], np.float32)
    rgb = colorize(maps, signed=True)[0, 0]
    assert (rgb[0] == DIVERGING[0]).all() and (rgb[2] == DIVERGING[255]).all()
    assert tuple(rgb[1]) == tuple(DIVERGING[128])  # 0 -> the middle of the map: near white
    assert rgb[1].min() > 230


def test_unsigned_maps_scale_per_layer_or_per_channel():
    maps = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 4.0)]).astype(np.float32)
    per_layer = colorize(maps, signed=False)
    per_channel = colorize(maps, signed=False, per_channel=True)
    assert (per_layer[1] == SEQUENTIAL[255]).all() and (per_layer[0] == SEQUENTIAL[64]).all()
    assert (per_channel[0] == SEQUENTIAL[255]).all() and (per_channel[1] == SEQUENTIAL[255]).all()
    assert (colorize(np.zeros((1, 2, 2), np.float32), signed=False) == SEQUENTIAL[0]).all()  # no 0/0


def test_grid_is_near_square_with_gaps_and_upscaled_tiles():
    tiles = np.zeros((5, 7, 7, 3), np.uint8)
    out = grid(tiles)
    k = TILE // 7  # 16
    assert out.shape == (2 * 7 * k + GAP, 3 * 7 * k + 2 * GAP, 3)  # 5 channels: 3 columns, 2 rows
    assert tuple(out[7 * k, 0]) == GAP_RGB  # the gap between rows
    assert tuple(out[-1, -1]) == GAP_RGB  # the sixth, empty cell


def test_pngs_decode_to_the_documented_sizes():
    assert decode(feature_grid_png(np.random.default_rng(0).normal(size=(4, 13, 13)), True)).shape == (
        210,
        210,
        3,
    )  # 2 x 104 + gap
    pixels = np.zeros((28, 28), np.float32)
    pixels[10:18, 12:16] = 1
    img = decode(input_png(pixels))
    assert img.shape == (224, 224, 3) and img[100, 110, 0] == 255 and img[0, 0, 0] == 0


def test_heatmap_overlay_shows_heat_where_it_is_and_the_input_elsewhere():
    pixels = np.zeros((28, 28), np.float32)
    pixels[5:20, 5:20] = 1
    heat = np.zeros((28, 28), np.float32)
    heat[10, 10] = 1
    img = decode(heatmap_png(pixels, heat)).astype(int)
    assert tuple(img[10 * 8 + 4, 10 * 8 + 4]) == tuple(SEQUENTIAL[255])  # full heat: the map's colour
    grey = img[6 * 8, 6 * 8]
    assert grey[0] == grey[1] == grey[2] > 50  # ink without heat: dimmed grey
    assert tuple(img[0, 0]) == (0, 0, 0)
