"""Do no harm: the judge (`mprnet.no_harm`) tells from the photo alone whether a restoration helped, the image
pipeline (`mprnet.pipeline.restore_image`) keeps the input where it did not under `--task auto` and warns where the
task was chosen by hand, says its decision before the work, and `--task auto` leaves alone photos too smooth to
tell blur in."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from mprnet import pipeline
from mprnet.checkpoint import BUNDLED_MODELS_TRUTH
from mprnet.cli import main
from mprnet.degrade import GaussianNoise, seeded_rng
from mprnet.demo import sample_photos
from mprnet.diagnose import BLUR_DETAIL, CLASSES, Diagnosis, detail
from mprnet.io import ImageData
from mprnet.no_harm import judge
from mprnet.restorers import AutoRestorer
from mprnet.tasks import make_degradation

SIZE = 256


@pytest.fixture(scope="module")
def clean():
    return sample_photos(SIZE)["coffee"]


def softened(pixels, sigma=1.5):
    return gaussian_filter(pixels, (sigma, sigma, 0)).astype(np.float32)


def degraded(pixels, task, level, seed=0):
    return np.clip(make_degradation(task, level)(pixels, seeded_rng(seed, task))[0], 0, 1).astype(np.float32)


def test_a_restoration_that_gives_back_the_clean_photo_helped(clean):
    assert judge("denoise", degraded(clean, "denoise", 25), clean).helped
    assert judge("deblur", degraded(clean, "deblur", 21), clean).helped
    assert judge("derain", degraded(clean, "derain", "medium"), clean).helped


def test_a_restoration_that_makes_a_clean_photo_softer_did_harm_and_says_why(clean):
    verdict = judge("deblur", clean, softened(clean))
    assert not verdict.helped and verdict.score < 0 and verdict.reason == "deblurring would have made it softer"
    assert not judge("denoise", clean, softened(clean, 1.0)).helped
    assert not judge("derain", clean, softened(clean, 1.0)).helped
    assert verdict.record() == {"helped": False, "score": round(verdict.score, 3), "reason": verdict.reason}


def test_a_denoiser_that_smooths_away_detail_but_not_noise_did_harm(clean):
    noisy = np.clip(GaussianNoise(sigma=5)(clean, seeded_rng(1, "faint"))[0], 0, 1).astype(np.float32)
    assert not judge("denoise", noisy, softened(noisy, 2.0)).helped


class WorseModel:
    """A stand-in for a bundled network that makes every photo softer."""

    name, title, kind, summary, needs, uses = "mprnet", "worse", "network", "makes photos worse", (), ()

    def __init__(self, task):
        self.task = task
        self.calls = []

    def __call__(self, image, progress=None, **known):
        self.calls.append(image.shape)
        return softened(image, 2.0)


@pytest.fixture
def worse_auto(monkeypatch):
    """Task auto that diagnoses every photo as blurred and deblurs it with `WorseModel`."""
    blurred = Diagnosis(dict(zip(CLASSES, (0.01, 0.01, 0.97, 0.01))), 1.0, kernel_peak=0.05)
    monkeypatch.setattr(AutoRestorer, "decide", lambda self, image, check_blur=True: blurred)
    model = WorseModel("deblur")
    monkeypatch.setattr(AutoRestorer, "restorer_for", lambda self, task, image=None: model)
    return model


def test_under_task_auto_a_result_that_is_not_better_is_dropped_for_the_input(clean, worse_auto):
    said = []
    image = ImageData(clean)
    restored = pipeline.restore_image(
        image, AutoRestorer(), announce=lambda line: said.append((line, worse_auto.calls[:]))
    )
    assert restored.left_alone and restored.image is image and restored.method is None
    assert restored.warning == "left alone: deblurring would have made it softer"
    assert said == [(said[0][0], [])] and said[0][0].startswith("deblur (")  # said before the work started
    assert worse_auto.calls and restored.record()["judged"]["helped"] is False


def test_a_task_chosen_by_hand_stands_but_carries_the_warning(clean):
    model = WorseModel("deblur")
    restored = pipeline.restore_image(ImageData(clean), model)
    assert not restored.left_alone and restored.method == "mprnet"
    assert restored.warning == "warning: deblurring would have made it softer"
    assert np.abs(restored.image.pixels - clean).max() > 0.05


def test_restore_auto_keeps_the_file_byte_for_byte_and_says_why(tmp_path, clean, worse_auto, capsys):
    source = tmp_path / "sharp.png"
    Image.fromarray(np.round(clean * 255).astype(np.uint8)).save(source)
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    assert main(["restore", str(source), "--task", "auto", "-o", str(out), "--report", str(report)]) == 0
    assert (out / "sharp.png").read_bytes() == source.read_bytes()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{source}: deblur (")
    assert f"{source}: left alone: deblurring would have made it softer" in printed
    entry = json.loads(report.read_text())
    assert entry["method"] is None and entry["judged"]["helped"] is False
    assert entry["warning"] == "left alone: deblurring would have made it softer"


def test_a_photo_too_smooth_to_tell_blur_in_is_left_alone(clean):
    sky = np.broadcast_to(np.linspace(0.3, 0.7, SIZE, dtype=np.float32)[:, None, None], (SIZE, SIZE, 3)).copy()
    assert detail(sky) < BLUR_DETAIL < detail(clean)
    odds = dict(zip(CLASSES, (0.01, 0.01, 0.97, 0.01)))
    smooth = Diagnosis(odds, 0.0, detail=detail(sky))
    assert smooth.smooth and smooth.decision == "unsure" and smooth.task is None
    assert "too little detail to tell blur" in smooth.summary() and smooth.record()["detail"] < BLUR_DETAIL
    assert Diagnosis(odds, 0.0, detail=detail(clean), kernel_peak=0.05).decision == "deblur"


def _words(text: str) -> str:
    return " ".join(text.split())


def test_what_the_bundled_models_do_is_said_up_front_in_the_readme_the_models_command_and_the_page(capsys):
    readme = Path(__file__).resolve().parents[1] / "README.md"
    first_screen = "\n".join(readme.read_text().splitlines()[:30])
    assert _words(BUNDLED_MODELS_TRUTH) in _words(first_screen)
    assert main(["models"]) == 0
    assert _words(BUNDLED_MODELS_TRUTH) in _words(capsys.readouterr().out)
    static = Path(pipeline.__file__).parent / "serve" / "static"
    assert 'id="truth"' in (static / "index.html").read_text()
    assert '$("truth").textContent = catalogue.bundled_models' in (static / "app.js").read_text()


def test_the_server_keeps_the_upload_under_task_auto_and_says_why(tmp_path, clean, worse_auto):
    httpx = pytest.importorskip("httpx")
    from mprnet.serve import Settings, create_app
    from mprnet.serve.server import serving

    from test_serve_api import decode, encode

    upload = np.round(clean * 255) / 255
    app = create_app(Settings(tile=0, example_size=32, isolate_jobs=False))  # jobs in this process, as patched
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/api/restore", files={"image": ("sharp.png", encode(upload))}, data={"task": "auto"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Method"] == "none" and answer.headers["X-Judged"] == "not better"
    assert answer.headers["X-Warning"] == "left alone: deblurring would have made it softer"
    assert np.array_equal(decode(answer.content, ".png").pixels, upload.astype(np.float32))


@pytest.mark.slow  # 5 s: two servers: make test-slow and CI run it
def test_the_server_gives_gray_photos_the_gray_method_only_for_its_bundled_model(tmp_path, clean):
    httpx = pytest.importorskip("httpx")
    from mprnet.io import to_gray
    from mprnet.serve import Settings, create_app
    from mprnet.serve.server import serving

    from test_serve_api import encode, tiny_settings

    gray = np.clip(to_gray(clean[:64, :64]) + np.random.default_rng(3).normal(0, 0.1, (64, 64, 1)), 0, 1)
    upload = {"image": ("gray.png", encode(gray.astype(np.float32)))}
    methods = {}
    for name, settings in (("bundled", Settings(tile=0, example_size=32)), ("given", tiny_settings(tmp_path))):
        with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
            answer = client.post("/api/restore", files=upload, data={"task": "denoise"})
        assert answer.status_code == 200, answer.text
        methods[name] = answer.headers["X-Method"]
    assert methods == {"bundled": "msdct", "given": "mprnet"}


def test_the_judges_trees_read_its_measures_in_their_order_and_a_stale_file_is_refused(tmp_path, monkeypatch):
    from mprnet import no_harm
    from mprnet.errors import MprnetError

    shipped = no_harm.trees()
    assert all(shipped[task]["features"] == no_harm.feature_names(task) for task in no_harm.FEATURES)
    column = no_harm.feature_names("denoise").index("noise_before")
    stump = {"feature": [column, -2, -2], "split": [np.log1p(5.0), 0, 0], "left": [1, -1, -1], "right": [2, -1, -1]}
    model = {task: {**shipped[task], "trees": [], "bias": 0.0} for task in shipped}
    model["denoise"] = {**model["denoise"], "trees": [{**stump, "value": [0, -1.0, 2.0]}], "threshold": 0.5}
    monkeypatch.setattr(no_harm, "trees", lambda: model)
    measures = dict.fromkeys(no_harm.FEATURES["denoise"], 0.0)
    assert no_harm.score("denoise", {**measures, "noise_before": 10.0}) == pytest.approx(0.05 * 2.0 - 0.5)
    assert no_harm.score("denoise", {**measures, "noise_before": 1.0}) == pytest.approx(0.05 * -1.0 - 0.5)
    monkeypatch.undo()
    stale = {task: {**entry, "features": entry["features"][:-1]} for task, entry in shipped.items()}
    (tmp_path / "no_harm.json").write_text(json.dumps(stale))
    monkeypatch.setattr(no_harm, "MODEL", tmp_path / "no_harm.json")
    no_harm.trees.cache_clear()
    with pytest.raises(MprnetError, match="fitted on other measures"):
        no_harm.trees()
    monkeypatch.undo()
    no_harm.trees.cache_clear()
