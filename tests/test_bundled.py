import json

import pytest
from PIL import Image

import mprnet
from mprnet.cli import main
from mprnet.demo import sample_photos
from mprnet.metrics import psnr

TASKS = ("deblur", "denoise", "derain")


def test_three_bundled_models_with_cards_within_the_size_budget():
    models = mprnet.bundled_models()
    assert set(TASKS) <= set(models)
    assert sum(models[task].stat().st_size for task in TASKS) <= 25e6
    for task in TASKS:
        model = mprnet.load_model(task)
        assert model.metadata["task"] == task and model.metadata["summary"]
        assert json.loads(model.metadata["steps"]) > 1000
        assert models[task].with_suffix(".md").exists()


def test_models_command_lists_them(capsys):
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{task} " in listed for task in TASKS)


def test_restore_works_out_of_the_box_on_a_rainy_photo(tmp_path):
    assert main(["demo", "--task", "derain", "--size", "96", "-o", str(tmp_path)]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert len(scores) == 3 and all(s["psnr_after"] > s["psnr_before"] + 3 for s in scores)
    figure = Image.open(tmp_path / "derain.png")
    assert figure.width > 3 * 96 and figure.height > 3 * 96


# The deblurring model was trained on blurred inputs only and sharpens clean photos a little (its card says so).
@pytest.mark.parametrize("task,least", [("deblur", 25), ("denoise", 30), ("derain", 30)])
def test_a_clean_photo_comes_back_nearly_unchanged(task, least):
    clean = sample_photos(96)["chelsea"]
    restored = mprnet.restore(clean, task=task)
    assert restored.shape == clean.shape
    assert psnr(restored, clean) > least


def test_demo_restores_real_photos_and_measures_them_without_references(tmp_path, capsys):
    import numpy as np

    from mprnet.degrade import GaussianNoise

    real = tmp_path / "real"
    for folder in ("noisy", "blurry"):
        (real / folder).mkdir(parents=True)
    clean = sample_photos(64)["coffee"]
    noisy = GaussianNoise(sigma=25)(clean, np.random.default_rng(0))[0]
    Image.fromarray((np.clip(noisy, 0, 1) * 255).round().astype("uint8")).save(real / "noisy" / "coffee.png")
    Image.fromarray((clean * 255).round().astype("uint8")).save(real / "blurry" / "sharp.png")
    out = tmp_path / "out"
    assert main(["demo", "--real", str(real), "--size", "48", "-o", str(out)]) == 0
    records = json.loads((out / "real-scores.json").read_text())
    assert [(r["task"], r["image"]) for r in records] == [("denoise", "coffee.png"), ("deblur", "sharp.png")]
    denoised = records[0]
    assert denoised["measure"] == "estimated noise sigma" and denoised["after"] < denoised["before"] / 2
    assert Image.open(out / "real-denoise.png").height > 48 and (out / "real-deblur.png").exists()
    printed = capsys.readouterr().out
    assert "coffee.png" in printed and "real-deblur.png" in printed


def test_demo_says_where_it_looked_for_real_photos(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["demo", "--real", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "Expected photos in noisy/, blurry/, rainy/ under" in error and "Traceback" not in error


def test_the_cards_are_what_the_card_script_writes():
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = runpy.run_path(str(root / "scripts" / "write_model_cards.py"))  # defines, does not write
    notes = json.loads((root / "docs" / "results" / "card_notes.json").read_text())
    for name, path in mprnet.bundled_models().items():
        assert path.with_suffix(".md").read_text() == script["card"](name, path, notes.get(name, "")), name


def test_a_card_tells_how_much_training_a_campaign_model_has_had():
    import runpy
    from pathlib import Path

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "write_model_cards.py"))
    seen = {"seen": json.dumps({"steps": 5000, "patches": 80000, "runs": 3})}
    assert script["seen_line"](seen) == "5000 steps and 80,000 patches over 3 run(s)"
    assert script["seen_line"]({"steps": "2781"}) == "2781 steps in all"  # weights from before `seen`
