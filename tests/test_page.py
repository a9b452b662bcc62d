"""The web page in real headless Chromium against a real uvicorn process."""

import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks.harness import ROOT, png_bytes, running_server
from benchmarks.pages import pages

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("CONVLENS_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
OUTPUT = ROOT / "test-output"


@pytest.fixture(scope="module")
def server():
    with running_server({"WEB_CONCURRENCY": "1"}) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(90_000)  # a loaded CI machine answers feature maps slowly, not wrongly
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server.url + "/")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def draw_seven(pg) -> None:
    box = pg.locator("#pad").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    strokes = [[(0.25, 0.22), (0.45, 0.22), (0.72, 0.22)], [(0.72, 0.22), (0.62, 0.45), (0.52, 0.65), (0.45, 0.82)]]
    for stroke in strokes:
        pg.mouse.move(x0 + stroke[0][0] * w, y0 + stroke[0][1] * h)
        pg.mouse.down()
        for fx, fy in stroke[1:]:
            pg.mouse.move(x0 + fx * w, y0 + fy * h, steps=8)
        pg.mouse.up()


def test_draw_a_digit_and_see_prediction_and_feature_maps(page, server):
    card = httpx.get(server.url + "/v1/model").json()
    expected = {r["name"]: r["output_shape"] for r in card["layers"] if r["name"].startswith(("conv", "relu", "pool"))}
    page.wait_for_function("document.querySelector('#card-summary').textContent.includes('parameters')")
    assert f"{card['parameters']:,}" in page.text_content("#card-summary")
    assert f"predicts in {card['serving_precision']}" in page.text_content("#card-summary")
    assert page.locator("#layers tbody tr").count() == len(card["layers"])
    page.wait_for_function("document.querySelector('#filters-img').complete")
    assert page.locator("#filters-img").evaluate("img => img.naturalWidth") > 0
    assert "learned 3×3 filters of conv1" in page.text_content("#filters-caption")

    draw_seven(page)
    page.wait_for_timeout(300)  # the debounce after the last stroke
    page.wait_for_function("document.body.dataset.busy === '0'")
    assert page.text_content("#digit") == "7"
    figures = page.locator("#maps figure")
    assert figures.count() == len(expected)
    for i in range(figures.count()):
        fig = figures.nth(i)
        name = fig.get_attribute("data-layer")
        assert "×".join(map(str, expected[name])) in fig.text_content()
        assert fig.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    walk = page.text_content("#walk")
    assert "conv1" in walk and "pool2" in walk
    assert page.locator("#bars li").count() == 10
    assert page.locator("#seen-img").evaluate("img => img.naturalWidth") == 224
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "page-after-drawing.png"), full_page=True)

    page.locator("#maps figure img").first.click()
    assert page.locator("#zoom").evaluate("d => d.open")
    assert "channel" in page.text_content("#zoom-title")
    page.keyboard.press("Escape")


def test_model_switch_why_overlay_and_shift_panel(page, server):
    cards = httpx.get(server.url + "/v1/models").json()["models"]
    page.wait_for_function("document.querySelectorAll('#model option').length === 3")
    assert page.locator("#compare tbody tr").count() == len(cards)
    for card in cards:  # parameter counts of the MLP and the CNNs side by side
        assert f"{card['parameters']:,}" in page.text_content("#compare")
    draw_seven(page)
    page.wait_for_timeout(300)
    page.wait_for_function("document.body.dataset.busy === '0'")
    page.wait_for_function("!document.querySelector('#why').hidden && document.querySelector('#why-img').complete")
    assert page.locator("#why-img").evaluate("img => img.naturalWidth") == 224
    assert page.text_content("#why-caption").startswith(f"Why {page.text_content('#digit')}?")
    panels = page.locator("#shifts figure")
    assert panels.count() == 3
    assert panels.first.locator(".shift-grid span").count() == 49
    assert "% of shifts keep" in panels.first.text_content()

    page.select_option("#model", "article")
    page.wait_for_function("document.querySelector('#card-summary').textContent.startsWith('article')")
    page.wait_for_function("document.body.dataset.busy === '0'")
    page.wait_for_function("document.querySelector('#walk').textContent.includes('pool2 32×5×5')")
    walk = page.text_content("#walk")
    assert "conv1 16×26×26" in walk and "pool1 16×13×13" in walk and "conv2 32×11×11" in walk
    assert page.locator("#layers tbody tr").count() == 8

    page.select_option("#model", "mlp")
    page.wait_for_function("document.querySelector('#card-summary').textContent.startsWith('mlp')")
    page.wait_for_function("document.querySelector('#walk').textContent.includes('no conv or pool layers')")
    page.wait_for_function("document.body.dataset.busy === '0'")
    assert page.locator("#maps figure").count() == 0
    assert page.locator("#filters").is_hidden()
    page.wait_for_function("document.querySelector('#why-caption').textContent.includes('occlusion')")


def test_upload_an_image_file(page, mnist_test, tmp_path):
    path = tmp_path / "digit.png"
    path.write_bytes(png_bytes(255 - mnist_test.images[0]))  # dark ink on white, as a scan
    page.set_input_files("#file", str(path))
    page.wait_for_function("/^[0-9]$/.test(document.querySelector('#digit').textContent)")
    page.wait_for_function("document.body.dataset.busy === '0'")
    assert page.text_content("#digit") == str(mnist_test.labels[0])
    assert page.locator("#verdict-note").is_hidden()  # a digit needs no note


def test_a_picture_that_is_not_a_digit_is_said_so_plainly(page, tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)))
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#verdict-note:not([hidden])")
    assert "does not look like a digit" in page.text_content("#verdict-note")


def test_several_digits_are_named_and_pointed_to_the_reader(page, mnist_test, tmp_path):
    row = np.concatenate([255 - mnist_test.images[i][:, 3:25] for i in (0, 1, 2)], axis=1)
    big = Image.fromarray(np.pad(row, 16, constant_values=255)).resize((4 * 98, 4 * 60))
    path = tmp_path / "number.png"
    big.save(path)
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#verdict-note:not([hidden])")
    note = page.text_content("#verdict-note")
    want = "".join(str(int(mnist_test.labels[i])) for i in (0, 1, 2))
    assert f"I see several digits: {want}." in note and "Read a photo" in note, note


def test_read_a_photo_shows_boxes_numbers_and_a_digit_inside_the_network(page, server, mnist_test, tmp_path):
    sheet = pages("ordinary", 1, (mnist_test.images, mnist_test.labels), seed=11)[0]
    path = tmp_path / "page.png"
    path.write_bytes(sheet.data)
    expected = [
        n["text"] for n in httpx.post(server.url + "/v1/read", files={"file": ("p.png", sheet.data)}).json()["numbers"]
    ]
    assert expected
    page.set_input_files("#read-file", str(path))
    page.wait_for_function(f"document.querySelectorAll('#read-numbers li').length === {len(expected)}")
    page.wait_for_function("document.body.dataset.reading === '0'")
    assert [t.strip() for t in page.locator("#read-numbers .number").all_text_contents()] == expected
    assert f"{len(expected)} numbers read" in page.text_content("#read-status")
    assert page.locator("#read-canvas").evaluate("c => c.width") == min(960, sheet.width)
    first = page.locator("#read-numbers li").first.locator("button").first
    first.click()
    page.wait_for_function(f"document.querySelector('#digit').textContent === '{expected[0][0]}'")
    page.wait_for_function("document.body.dataset.busy === '0'")
    assert page.locator("#maps figure").count() > 0
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "page-read-a-photo.png"), full_page=True)


def test_api_errors_are_shown_in_words(page, tmp_path):
    path = tmp_path / "notes.png"
    path.write_bytes(b"this is not an image")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#error:not([hidden])")
    text = page.text_content("#error")
    assert "Could not analyse the image" in text and "cannot decode" in text


def test_keyboard_reaches_the_controls_and_small_screens_fit(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    pg.goto(server.url + "/")
    focused = set()
    for _ in range(6):
        pg.keyboard.press("Tab")
        focused.add(pg.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert {"clear", "file"} <= focused
    overflow = pg.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "page scrolls sideways on a phone"
    context.close()


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")])
def test_api_docs_work_with_every_outside_request_blocked(browser, server, path, ready):
    context = browser.new_context()
    pg = context.new_page()
    outside: list[str] = []

    def only_local(route):
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    pg.route("**/*", only_local)
    failed: list[str] = []
    pg.on("requestfailed", lambda r: failed.append(r.url))
    pg.goto(server.url + path)
    pg.wait_for_selector(ready, timeout=20_000)
    text = pg.text_content("body")
    for operation in ("/v1/predict", "/v1/explain", "/v2/models/{name}/infer"):
        assert operation in text or operation.replace("{name}", "") in text, operation
    # ReDoc's bundle fetches its "powered by" logo from its CDN; blocked, the page is whole
    cosmetic = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    assert set(outside) <= cosmetic and set(failed) <= cosmetic, (outside, failed)
    if path == "/docs":
        assert not outside
    context.close()
