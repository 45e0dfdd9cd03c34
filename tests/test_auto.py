"""`--task auto`: the bundled degradation classifier, its decisions, `mprnet restore --task auto`, `mprnet inspect`
and `mprnet.restore(image, task="auto")`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet import kernel_probe
from mprnet.cli import main
from mprnet.degrade import GaussianNoise, seeded_rng
from mprnet.demo import sample_photos
from mprnet.diagnose import (
    CONFIDENCE,
    KERNEL_CROPS,
    SHARP_KERNEL,
    Diagnosis,
    crop_kernel_peaks,
    crops,
    diagnose,
    kernel_peak,
    load_classifier,
)
from mprnet.io import to_gray
from mprnet.metrics import psnr
from mprnet.models.degradation_classifier import CLASSES, PATCH
from mprnet.restorers import AutoRestorer, get_restorer
from mprnet.tasks import make_degradation
from mprnet.train.classifier import DegradationExamples, clean_as_cameras_make, noise_level


def degraded(task, level, photo="coffee", size=160, seed=0, gray=False):
    """The sample photo degraded for the task at the level; with `gray`, a one-channel black-and-white photo."""
    clean = sample_photos(size)[photo]
    if gray:
        clean = to_gray(clean)
    if task == "clean":
        return clean
    return np.clip(make_degradation(task, level)(clean, seeded_rng(seed, task, photo))[0], 0, 1).astype(np.float32)


def noisy_rain(size=160):
    rainy = degraded("derain", "medium", size=size)
    return np.clip(GaussianNoise(sigma=15)(rainy, seeded_rng(1, "noisy rain"))[0], 0, 1).astype(np.float32)


def save(pixels, path):
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)
    return path


def test_the_bundled_classifier_is_small_and_loads():
    network = load_classifier()
    assert sum(p.numel() for p in network.parameters()) < 300_000
    assert mprnet.diagnose.WEIGHTS.stat().st_size < 2e6


@pytest.mark.parametrize(
    "task, level", [("clean", None), ("denoise", 30), ("deblur", 21), ("derain", "heavy"), ("derain", "light")]
)
def test_the_classifier_tells_the_degradations_apart(task, level):
    diagnosis = diagnose(degraded(task, level))
    assert diagnosis.decision == task, diagnosis.summary()


@pytest.mark.parametrize("task, level", [("clean", None), ("denoise", 10), ("denoise", 25), ("derain", "light")])
def test_the_classifier_tells_the_degradations_of_black_and_white_photos_apart(task, level):
    """A gray photo's noise is the same in the three channels: the classifier once took it for clean."""
    diagnosis = diagnose(degraded(task, level, gray=True))
    assert diagnosis.decision == task, diagnosis.summary()


def test_the_noise_level_estimate_follows_sigma():
    clean = sample_photos(192)["astronaut"]
    estimates = [
        diagnose(np.clip(GaussianNoise(sigma=sigma)(clean, seeded_rng(1, sigma))[0], 0, 1)).noise_sigma
        for sigma in (10, 40)
    ]
    assert abs(estimates[0] - 10) < 5 and abs(estimates[1] - 40) < 8


def test_gaussian_examples_teach_the_sigma_drawn_and_other_noise_what_it_added():
    bright = np.full((64, 64, 3), 0.97, dtype=np.float32)
    noisy, params = GaussianNoise(sigma=40)(bright, seeded_rng(0))
    clipped = np.clip(noisy, 0, 1) - bright
    assert 255 * clipped.std() < 30 and noise_level(clipped, params) == 40.0  # clipping hides much of sigma 40
    assert noise_level(np.full((4, 4, 3), 0.02), {"type": "camera"}) == pytest.approx(0.0)
    assert noise_level(np.array([0.0, 0.04]), {"type": "camera"}) == pytest.approx(255 * 0.02)


def test_clean_examples_are_made_as_cameras_make_photos_and_are_repeatable():
    photo = sample_photos(128)["coffee"]
    made = [clean_as_cameras_make(photo, seeded_rng(7, index)) for index in range(12)]
    assert all(image.shape == photo.shape and image.dtype == np.float32 for image in made)
    assert all(image.min() >= 0 and image.max() <= 1 for image in made)
    assert sum(np.array_equal(image, photo) for image in made) < 12  # most carry a trace of noise or JPEG artefacts
    assert np.array_equal(made[3], clean_as_cameras_make(photo, seeded_rng(7, 3)))


def test_training_examples_take_the_classes_in_turn_and_are_repeatable(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    save(sample_photos(128)["coffee"], folder / "coffee.png")
    examples = DegradationExamples(folder, 40, seed=3, gray_share=0.3)
    patches, labels, sigmas = examples.tensors()
    assert patches.shape == (40, 3, PATCH, PATCH) and labels.tolist() == [0, 1, 2, 3] * 10
    assert torch.equal(torch.round(patches * 255) / 255, patches)  # 8-bit values, as photos are stored
    noisy = labels == CLASSES.index("denoise")
    assert bool((sigmas[noisy] > 0).all()) and bool((sigmas[~noisy] == 0).all())
    gray = (patches == patches[:, :1]).flatten(1).all(1)
    assert 0 < int(gray.sum()) < 25 and bool((gray & noisy).any())  # some are black and white, their noise too
    assert torch.equal(examples[7][0], DegradationExamples(folder, 40, seed=3, gray_share=0.3)[7][0])
    assert not torch.equal(examples[7][0], DegradationExamples(folder, 40, seed=4, gray_share=0.3)[7][0])
    colour = DegradationExamples(folder, 40, seed=3).tensors()[0]
    assert not bool((colour == colour[:, :1]).flatten(1).all(1).any())


def test_crops_cover_the_image_at_full_resolution():
    image = np.random.default_rng(0).random((300, 500, 3), dtype=np.float32)
    found = crops(image)
    assert len(found) == 25 and all(crop.shape == (PATCH, PATCH, 3) for crop in found)
    assert np.array_equal(found[0], image[:PATCH, :PATCH]) and np.array_equal(found[-1], image[-PATCH:, -PATCH:])
    assert crops(image[:40, :50])[0].shape == (PATCH, PATCH, 3)  # small images are mirrored up to a patch


def test_below_the_confidence_threshold_the_decision_is_unsure():
    sure = Diagnosis({"clean": 0.1, "denoise": 0.8, "deblur": 0.05, "derain": 0.05}, 12.0)
    assert (sure.decision, sure.task) == ("denoise", "denoise") and "noise sigma about 12.0" in sure.summary()
    torn = Diagnosis(dict(zip(CLASSES, (0.1, CONFIDENCE - 0.01, 0.3, 0.01))), 3.0)
    assert (torn.decision, torn.task) == ("unsure", None)
    clean = Diagnosis(dict(zip(CLASSES, (0.9, 0.05, 0.03, 0.02))), 1.0)
    assert (clean.decision, clean.task) == ("clean", None)


def test_a_sharp_blur_kernel_overrules_the_classifiers_blur():
    odds = dict(zip(CLASSES, (0.01, 0.01, 0.97, 0.01)))
    soft = Diagnosis(odds, 0.0, kernel_peak=SHARP_KERNEL + 0.1)
    assert soft.sharp and (soft.decision, soft.task, soft.steps) == ("clean", None, [])
    assert "(sharp, at least" in soft.summary() and soft.record()["kernel_peak"] == round(SHARP_KERNEL + 0.1, 4)
    blurred = Diagnosis(odds, 0.0, kernel_peak=SHARP_KERNEL / 3)
    assert not blurred.sharp and blurred.decision == "deblur" and "blur kernel peak" in blurred.summary()
    assert Diagnosis(odds, 0.0).decision == "deblur" and "kernel_peak" not in Diagnosis(odds, 0.0).record()
    noisy = Diagnosis(dict(zip(CLASSES, (0.01, 0.97, 0.01, 0.01))), 20.0, kernel_peak=0.9)
    assert noisy.decision == "denoise"  # the kernel speaks to blur only


def test_the_kernel_peak_tells_a_sharp_photo_from_a_blurred_one():
    sharp = sample_photos(256)["coffee"]
    assert kernel_peak(sharp) >= SHARP_KERNEL
    assert kernel_peak(degraded("deblur", "linear", size=256)) < SHARP_KERNEL
    assert kernel_peak(degraded("deblur", 15, size=256)) < SHARP_KERNEL
    assert kernel_peak(sharp[:40, :40]) is None  # too small to tell
    assert diagnose(degraded("deblur", 21)).kernel_peak is not None and diagnose(sharp).kernel_peak is None
    assert diagnose(degraded("deblur", 21), check_blur=False).kernel_peak is None


def test_the_sharpest_of_the_most_textured_crops_speaks_for_the_photo(monkeypatch):
    """Camera shake blurs a whole photo alike, while a soft clean photo is sharp somewhere, if not in its most
    textured part (McMaster18's 15.png)."""
    blurred = degraded("deblur", "linear", photo="astronaut", size=256)
    faint = 0.5 + 0.25 * (sample_photos(256)["coffee"] - 0.5)  # sharp, but less textured than the blurred half
    part_blurred = np.concatenate([blurred, faint], axis=1)
    peaks = list(crop_kernel_peaks(part_blurred))
    assert len(peaks) == KERNEL_CROPS and peaks[0] < SHARP_KERNEL <= max(peaks) == kernel_peak(part_blurred)
    assert kernel_peak(np.concatenate([blurred, blurred], axis=1)) < SHARP_KERNEL
    estimated, estimate = [], kernel_probe.probe_kernel
    monkeypatch.setattr(kernel_probe, "probe_kernel", lambda *args: estimated.append(args) or estimate(*args))
    assert kernel_peak(sample_photos(256)["coffee"]) >= SHARP_KERNEL and len(estimated) == 1  # the first was sharp


@pytest.mark.slow
def test_the_calibration_script_weighs_one_crop_against_the_sharpest_of_several(tmp_path):
    script = Path(__file__).parents[1] / "scripts" / "calibrate_sharp_kernel.py"
    for name, photo in sample_photos(160).items():
        save(photo, tmp_path / f"{name}.png")
    done = subprocess.run([sys.executable, script, tmp_path, "--photos", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "the most textured crop alone" in done.stdout and f"sharpest of the {KERNEL_CROPS}" in done.stdout
    assert done.stdout.count("threshold leaving 5% of camera-blurred photos alone") == 2
    for folder in (tmp_path / "none", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        refused = subprocess.run([sys.executable, script, folder], capture_output=True, text=True)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr and str(folder) in refused.stderr


def test_the_second_look_at_a_denoised_photo_does_not_check_blur_that_no_step_would_undo(monkeypatch):
    checks = []

    def decide(self, image, check_blur=True):
        checks.append(check_blur)
        odds = (0.01, 0.97, 0.01, 0.01) if len(checks) == 1 else (0.01, 0.01, 0.97, 0.01)
        return Diagnosis(dict(zip(CLASSES, odds)), 20.0)

    monkeypatch.setattr(AutoRestorer, "decide", decide)
    get_restorer("auto")(degraded("denoise", 30, size=64))
    assert checks == [True, False]


def test_a_second_task_follows_only_where_another_degradation_is_found():
    def sure(task, sigma=0.0):
        return Diagnosis({name: 0.97 if name == task else 0.01 for name in CLASSES}, sigma)

    noisy = sure("denoise", 15.0)
    assert noisy.second_task(sure("derain")) == "derain"
    assert noisy.second_task(sure("clean")) is None and noisy.second_task(sure("denoise")) is None
    assert noisy.second_task(Diagnosis(dict(zip(CLASSES, (0.3, 0.3, 0.3, 0.1))), 0.0)) is None  # unsure
    # A denoised or derained photo looks soft: deblurring it again measured worse, so it never follows.
    assert noisy.second_task(sure("deblur")) is None and sure("derain").second_task(sure("deblur")) is None
    assert sure("deblur").second_task(sure("denoise")) is None
    assert noisy.followers == ("derain",) and sure("deblur").followers == () and sure("clean").followers == ()
    both = noisy.followed_by(sure("derain"))
    assert both.steps == ["denoise", "derain"] and both.decision == "denoise"
    assert "; then derain (97% sure)" in both.summary() and both.record()["then_probabilities"]["derain"] == 0.97
    assert noisy.followed_by(sure("clean")) == noisy and noisy.steps == ["denoise"] and sure("clean").steps == []


def test_a_task_that_nothing_may_follow_does_not_look_at_its_result_again(monkeypatch):
    looked = []

    def decide(self, image):
        looked.append(image.shape)
        return Diagnosis(dict(zip(CLASSES, (0.01, 0.01, 0.97, 0.01))), 0.0)

    monkeypatch.setattr(AutoRestorer, "decide", decide)
    blurry = degraded("deblur", "shake", size=64)
    restored = get_restorer("auto")(blurry)
    assert restored.shape == blurry.shape and not np.array_equal(restored, blurry) and len(looked) == 1


def test_api_auto_restores_a_noisy_photo_and_returns_a_clean_one_unchanged():
    clean = sample_photos(128)["chelsea"]
    noisy = np.clip(GaussianNoise(sigma=30)(clean, seeded_rng(3, "api"))[0], 0, 1).astype(np.float32)
    restored = mprnet.restore(noisy, task="auto")
    assert mprnet.metrics.psnr(restored, clean) > mprnet.metrics.psnr(noisy, clean) + 3
    assert np.array_equal(mprnet.restore(clean, task="auto"), clean)
    assert isinstance(get_restorer("auto"), AutoRestorer)
    with pytest.raises(mprnet.MprnetError, match="task auto picks the bundled models itself"):
        get_restorer("auto", method="bm3d")


def test_restore_auto_copies_a_clean_photo_byte_for_byte_and_reports_each_decision(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    clean = save(degraded("clean", None), photos / "clean.png")
    save(degraded("denoise", 30), photos / "noisy.png")
    save(noisy_rain(), photos / "noisy-rain.png")
    report = tmp_path / "decisions.jsonl"
    out = tmp_path / "out"
    assert main(["restore", str(photos), "--task", "auto", "-o", str(out), "--report", str(report)]) == 0
    assert (out / "clean.png").read_bytes() == clean.read_bytes()
    entries = {Path(entry["input"]).name: entry for entry in map(json.loads, report.read_text().splitlines())}
    assert entries["clean.png"]["decision"] == "clean" and entries["clean.png"]["task"] is None
    assert entries["noisy.png"]["decision"] == "denoise" and entries["noisy.png"]["noise_sigma"] > 15
    assert entries["noisy.png"]["steps"] == ["denoise"] and entries["clean.png"]["steps"] == []
    both = entries["noisy-rain.png"]
    assert both["steps"] == ["denoise", "derain"] and both["then_probabilities"]["derain"] > CONFIDENCE
    assert set(entries["noisy.png"]) == {
        "input",
        "output",
        "decision",
        "task",
        "steps",
        "confidence",
        "probabilities",
        "noise_sigma",
        "method",
        "judged",
        "warning",
        "seconds",
    }
    assert entries["noisy.png"]["method"] == "mprnet" and entries["clean.png"]["method"] is None
    assert entries["noisy.png"]["judged"]["helped"] and entries["noisy.png"]["warning"] == ""
    assert "judged" not in entries["clean.png"]  # nothing restored, nothing to judge
    printed = capsys.readouterr().out
    assert "noisy.png: denoise (" in printed and "clean.png: clean (" in printed
    assert "noisy-rain.png: then derain (" in printed
    assert (out / "noisy.png").read_bytes() != (photos / "noisy.png").read_bytes()


def save_gray(pixels, path):
    Image.fromarray(np.round(pixels[..., 0] * 255).astype(np.uint8), mode="L").save(path)
    return path


def test_a_continued_run_adds_to_its_report_and_overwrite_starts_it_anew(tmp_path):
    folder, report = tmp_path / "in", tmp_path / "decisions.jsonl"
    folder.mkdir()
    save(degraded("clean", None, size=64), folder / "a.png")
    arguments = ["restore", str(folder), "--task", "auto", "-o", str(tmp_path / "out"), "--report", str(report)]
    assert main(arguments) == 0
    save(degraded("clean", None, photo="chelsea", size=64), folder / "b.png")

    def reported() -> list[str]:
        return [Path(json.loads(line)["input"]).name for line in report.read_text().splitlines()]

    assert main(arguments) == 0 and reported() == ["a.png", "b.png"]  # a.png was skipped, its decision kept
    assert main([*arguments, "--overwrite"]) == 0 and reported() == ["a.png", "b.png"]


def test_restore_auto_denoises_a_black_and_white_photo_with_the_classic_gray_method(tmp_path, capsys):
    """The bundled denoiser learned colour noise only; until it learns gray photos, auto takes msdct for them."""
    clean = to_gray(sample_photos(160)["coffee"])
    noisy = save_gray(degraded("denoise", 25, gray=True), tmp_path / "gray.png")
    colour = save(degraded("denoise", 25), tmp_path / "colour.png")
    report, out = tmp_path / "decisions.jsonl", tmp_path / "out"
    assert main(["restore", str(noisy), str(colour), "--task", "auto", "-o", str(out), "--report", str(report)]) == 0
    entries = {Path(entry["input"]).name: entry for entry in map(json.loads, report.read_text().splitlines())}
    assert entries["gray.png"]["method"] == "msdct" and entries["colour.png"]["method"] == "mprnet"
    assert "gray.png: denoise (" in (printed := capsys.readouterr().out) and "restored with msdct" in printed
    with Image.open(noisy) as before, Image.open(out / "gray.png") as after:
        assert after.mode == "L"
        gain = [mprnet.metrics.psnr(np.asarray(image, np.float32)[..., None] / 255, clean) for image in (before, after)]
    assert gain[1] > gain[0] + 4


def test_restore_denoise_restores_a_black_and_white_photo_with_the_method_that_removes_its_noise(tmp_path, capsys):
    """The bundled denoiser has not learned gray photos: --task denoise gives them the task's gray method at the
    classifier's noise level, says so before the work, and leaves colour photos to the network."""
    clean = to_gray(sample_photos(64)["coffee"])
    gray = save_gray(degraded("denoise", 25, size=64, gray=True), tmp_path / "gray.png")
    colour = save(degraded("denoise", 25, size=64), tmp_path / "colour.png")
    assert main(["restore", str(gray), str(colour), "--task", "denoise", "-o", str(tmp_path / "out")]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "black and white" in line]
    assert len(said) == 1 and said[0].startswith(f"{gray}: black and white: restored with msdct at noise sigma")
    restored = np.asarray(Image.open(tmp_path / "out" / "gray.png"), dtype=np.float32)[..., None] / 255
    noisy = np.asarray(Image.open(gray), dtype=np.float32)[..., None] / 255
    assert psnr(restored, clean) > psnr(noisy, clean) + 5
    assert main(["restore", str(gray), "--method", "msdct", "--sigma", "25", "-o", str(tmp_path / "o2")]) == 0
    assert "black and white" not in capsys.readouterr().out


def test_a_bundled_model_that_learned_gray_photos_restores_them_itself(monkeypatch):
    from mprnet import restorers

    monkeypatch.setattr(restorers, "read_metadata", lambda path: {"recipe": json.dumps({"gray_share": 0.1})})
    assert restorers.learned_gray.__wrapped__("denoise")
    monkeypatch.setattr(restorers, "read_metadata", lambda path: {})
    assert not restorers.learned_gray.__wrapped__("denoise")
    monkeypatch.setattr(restorers, "learned_gray", lambda task: True)
    assert restorers.gray_method_for("denoise") is None


def test_restore_auto_leaves_an_unsure_photo_unchanged(tmp_path, monkeypatch, capsys):
    torn = Diagnosis(dict(zip(CLASSES, (0.3, 0.3, 0.3, 0.1))), 2.0)
    monkeypatch.setattr(AutoRestorer, "decide", lambda self, image: torn)
    source = save(degraded("deblur", 15), tmp_path / "blurry.png")
    assert main(["restore", str(source), "--task", "auto", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "blurry.png").read_bytes() == source.read_bytes()
    assert "blurry.png: unsure (" in capsys.readouterr().out


def test_restore_auto_leaves_alone_a_photo_it_takes_for_blurred_whose_kernel_is_sharp(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mprnet.diagnose, "combine_crops", lambda log_probabilities: dict(zip(CLASSES, (0, 0, 1, 0))))
    sharp = save(sample_photos(256)["coffee"], tmp_path / "sharp.png")
    blurred = save(degraded("deblur", "linear", size=256), tmp_path / "blurred.png")
    report, out = tmp_path / "decisions.jsonl", tmp_path / "out"
    assert main(["restore", str(sharp), str(blurred), "--task", "auto", "-o", str(out), "--report", str(report)]) == 0
    assert (out / "sharp.png").read_bytes() == sharp.read_bytes()
    assert (out / "blurred.png").read_bytes() != blurred.read_bytes()
    entries = {Path(entry["input"]).name: entry for entry in map(json.loads, report.read_text().splitlines())}
    assert entries["sharp.png"]["decision"] == "clean" and entries["sharp.png"]["kernel_peak"] >= SHARP_KERNEL
    assert entries["blurred.png"]["steps"] == ["deblur"] and entries["blurred.png"]["kernel_peak"] < SHARP_KERNEL
    printed = capsys.readouterr().out
    assert "sharp.png: clean (" in printed and "the blur is overruled" in printed and "blurred.png: deblur (" in printed


def test_restore_auto_reports_bad_files_and_bad_options(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert main(["restore", str(broken), "--task", "auto", "-o", str(tmp_path / "out")]) == 1
    assert "broken.png" in capsys.readouterr().err
    good = save(degraded("clean", None, size=64), tmp_path / "good.png")
    assert main(["restore", str(good), "--report", str(tmp_path / "r.jsonl"), "-o", str(tmp_path / "o")]) == 2
    assert "--report records the decisions of --task auto" in capsys.readouterr().err
    assert main(["restore", str(good), "--task", "auto", "--method", "bm3d", "-o", str(tmp_path / "o")]) == 2
    assert "leave out --weights and --method" in capsys.readouterr().err
    kept = good.read_bytes()
    for report in (tmp_path, good / "r.jsonl", good, tmp_path / "o" / "good.png"):
        assert main(["restore", str(good), "--task", "auto", "-o", str(tmp_path / "o"), "--report", str(report)]) == 2
        err = capsys.readouterr().err
        assert f"--report {report}" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert good.read_bytes() == kept and not (tmp_path / "o").exists()  # the photo intact, nothing written


def test_inspect_prints_the_decision_without_restoring(tmp_path, capsys):
    rainy = save(degraded("derain", "heavy"), tmp_path / "rainy.png")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    assert main(["inspect", str(rainy)]) == 0
    assert capsys.readouterr().out.startswith(f"{rainy}: derain (")
    assert main(["inspect", "--json", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[0])["decision"] == "derain" and "broken.jpg" in captured.err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.jpg", "rainy.png"]  # nothing written


@pytest.mark.slow  # 7 s: the bundled models through the server: make test-slow and CI run it
def test_the_server_offers_auto_with_its_bundled_models_and_says_what_it_decided(tmp_path):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from mprnet.io import read_image
    from mprnet.serve import Settings, create_app
    from mprnet.serve.server import serving

    app = create_app(Settings(tile=0, example_size=32, isolate_jobs=False))
    noisy = save(degraded("denoise", 30, size=160), tmp_path / "noisy.png")
    clean = save(degraded("clean", None, size=160), tmp_path / "clean.png")
    noisy_rainy = save(noisy_rain(), tmp_path / "noisy-rain.png")
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        tasks = [task["name"] for task in client.get("/api/models").json()["tasks"]]
        assert tasks[-1] == "auto" and set(tasks[:-1]) == {"denoise", "deblur", "derain"}
        answers = {
            path.name: client.post(
                "/api/restore", files={"image": (path.name, path.read_bytes())}, data={"task": "auto"}
            )
            for path in (noisy, clean, noisy_rainy)
        }
    restored = answers["noisy.png"]
    assert restored.status_code == 200 and restored.headers["X-Decision"] == "denoise"
    assert restored.headers["X-Task"] == "denoise" and restored.headers["X-Method"] == "mprnet"
    assert answers["noisy-rain.png"].headers["X-Task"] == "denoise+derain"
    unchanged = answers["clean.png"]
    assert unchanged.headers["X-Decision"] == "clean" and unchanged.headers["X-Method"] == "none"
    (tmp_path / "back.png").write_bytes(unchanged.content)
    assert np.array_equal(read_image(tmp_path / "back.png").pixels, read_image(clean).pixels)


def test_a_file_that_is_not_a_classifiers_weights_gets_a_clear_error(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not weights")
    with pytest.raises(mprnet.errors.CheckpointError, match=r"not a readable PyTorch checkpoint or \.safetensors file"):
        load_classifier(broken)
    with pytest.raises(mprnet.errors.CheckpointError, match="not a degradation classifier's weights"):
        load_classifier(mprnet.checkpoint.bundled_models()["denoise"])
