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
