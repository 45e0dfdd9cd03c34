"""The demo page in a real headless Chromium (Debian's, driven by Playwright): restore, compare, download, errors.
Screenshots go to $MPRNET_SHOTS (default /tmp/serve-shots)."""

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a real browser, 20 s in all: make test-slow and CI run it
pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from mprnet.demo import sample_photos  # noqa: E402
from mprnet.io import read_image  # noqa: E402
from mprnet.serve import Settings, create_app  # noqa: E402
from mprnet.serve.server import serving  # noqa: E402

from test_serve_api import encode, tiny_settings  # noqa: E402

SHOTS = Path(os.environ.get("MPRNET_SHOTS", "/tmp/serve-shots"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 30_000
sync_api.expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    settings = tiny_settings(tmp_path_factory.mktemp("browser-models"), example_size=96)
    with serving(create_app(Settings(**{**vars(settings)}))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(request.url))
    page.goto(url)
    page.wait_for_selector("input[name=task]")
    yield page
    context.close()
    assert problems == [], "the page had script errors or failed requests"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_upload_restore_compare_and_download(page, tmp_path):
    photo = tmp_path / "chelsea.png"
    photo.write_bytes(encode(sample_photos(96)["chelsea"]))
    page.check("input[name=task][value=denoise]")
    page.set_input_files("#file", str(photo))
    assert "chelsea.png" in page.inner_text("#file-info")
    with page.expect_response("**/api/jobs") as started, page.expect_response("**/result") as fetched:
        page.click("#run")  # a job, followed until its result is fetched
    assert started.value.status == 202 and fetched.value.status == 200
    page.wait_for_selector("#result:not([hidden])")
    sync_api.expect(page.locator("#after")).to_have_js_property("naturalWidth", 96)
    assert page.is_hidden("#error")
    assert "mprnet (denoise)" in page.inner_text("#timing")
    page.fill("#slider", "30")
    assert page.eval_on_selector("#compare", "box => box.style.getPropertyValue('--split')") == "30%"
    page.hover("#compare", position={"x": 100, "y": 100})
    shot(page, "restored")
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "chelsea-restored.png"
    assert read_image(saved).pixels.shape == (96, 96, 3)


def test_example_with_reference_shows_psnr(page):
    page.check("input[name=task][value=derain]")
    page.click(".examples button >> nth=1")
    sync_api.expect(page.locator("#run")).to_be_enabled()
    page.click("#run")
    page.wait_for_selector("#metrics:not([hidden])")
    psnr_in = float(page.inner_text("#psnr-in"))
    assert 5 < psnr_in < 40
    assert page.inner_text("#psnr-gain").endswith("dB")
    shot(page, "example")


def test_unreadable_file_shows_a_plain_error(page, tmp_path):
    bad = tmp_path / "holiday.png"
    bad.write_text("these are notes, not a picture")
    page.set_input_files("#file", str(bad))
    page.click("#run")
    page.wait_for_selector("#error:not([hidden])")
    message = page.inner_text("#error")
    assert message.startswith("Could not restore this image: image: not a readable image")
    assert "Traceback" not in message
    assert page.is_hidden("#result") and page.is_enabled("#run")
    shot(page, "error")


def test_method_needing_sigma_shows_its_field(page):
    page.check("input[name=task][value=denoise]")
    assert page.is_hidden("#sigma-row")
    assert page.inner_text("#method option >> nth=0") == "MPRNet (blind)"  # the network, by its architecture's name
    page.select_option("#method", "dct")
    assert page.is_visible("#sigma-row") and page.is_hidden("#kernel-row")
    assert "DCT" in page.inner_text("#method-summary")
    assert np.isclose(float(page.input_value("#sigma")), 25)


def test_examples_still_being_prepared_are_announced_then_shown(browser, tmp_path, monkeypatch):
    from mprnet.serve import catalogue

    ready = threading.Event()
    real_make = catalogue.Examples._make

    def slow_make(self):
        ready.wait(20)
        return real_make(self)

    monkeypatch.setattr(catalogue.Examples, "_make", slow_make)
    settings = tiny_settings(tmp_path, example_size=32)
    with serving(create_app(Settings(**vars(settings)))) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("input[name=task]")
        box = page.locator("#examples")
        sync_api.expect(box).to_contain_text("Preparing the examples")
        assert "No examples" not in box.inner_text()
        ready.set()
        sync_api.expect(page.locator(".examples button")).to_have_count(3)
        context.close()


def test_auto_says_what_it_found_and_returns_a_clean_photo_unchanged(browser, tmp_path):
    from test_auto import degraded, save

    noisy = save(degraded("denoise", 30, size=128), tmp_path / "noisy.png")
    clean = save(degraded("clean", None, photo="chelsea", size=128), tmp_path / "clean.png")  # coffee is soft at 128 px
    with serving(create_app(Settings(tile=0, example_size=96, isolate_jobs=False))) as url:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.goto(url)
        page.check("input[name=task][value=auto]")
        for task in ("denoise", "deblur", "derain"):  # every task's examples, to see what auto makes of them
            sync_api.expect(page.locator(f".examples button:has-text('({task})')")).not_to_have_count(0)
        page.click(".examples button:has-text('(derain)') >> nth=0")
        sync_api.expect(page.locator("#run")).to_be_enabled()
        page.click("#run")
        sync_api.expect(page.locator("#decision")).to_contain_text("Auto chose derain (")
        assert page.is_visible("#metrics")
        found = {}
        for photo in (noisy, clean):
            page.set_input_files("#file", str(photo))
            page.click("#run")
            sync_api.expect(page.locator("#timing")).to_contain_text(f"({'denoise' if photo is noisy else 'clean'})")
            found[photo.name] = page.inner_text("#decision")
            shot(page, f"auto-{photo.stem}")
        with page.expect_download() as download:
            page.click("#download")
        returned = read_image(Path(download.value.path())).pixels
        context.close()
    assert found["noisy.png"].startswith("Auto chose denoise (") and found["noisy.png"].endswith("% sure).")
    assert found["clean.png"].startswith("The photo looks clean (") and "returned unchanged" in found["clean.png"]
    assert np.array_equal(returned, read_image(clean).pixels)


def test_auto_says_when_the_photos_sharp_kernel_overrules_the_classifiers_blur(browser, tmp_path, monkeypatch):
    import mprnet.diagnose
    from mprnet.models.degradation_classifier import CLASSES

    from test_auto import save

    monkeypatch.setattr(mprnet.diagnose, "combine_crops", lambda log_probabilities: dict(zip(CLASSES, (0, 0, 1, 0))))
    sharp = save(sample_photos(256)["coffee"], tmp_path / "sharp.png")
    with serving(create_app(Settings(tile=0, example_size=32, isolate_jobs=False))) as url:
        page = browser.new_page()
        page.goto(url)
        page.check("input[name=task][value=auto]")
        page.set_input_files("#file", str(sharp))
        page.click("#run")
        sync_api.expect(page.locator("#timing")).to_contain_text("(clean)")
        said = page.inner_text("#decision")
        page.close()
    assert said.startswith("It looked blurred (100% sure), but the blur kernel") and "returned unchanged" in said
