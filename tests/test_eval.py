import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet.cli import main
from mprnet.complexity import count_parameters
from mprnet.data import open_paired
from mprnet.evaluate import default_protocol, evaluate, write_csv
from mprnet.io import read_rgb
from mprnet.metrics import evaluate_pair

TINY = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
NAMES = ("a", "b")


@pytest.fixture
def paired_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for folder in ("input", "target"):
        (root / folder).mkdir(parents=True)
    for name in NAMES:
        target = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        noisy = np.clip(target + rng.normal(0, 20, target.shape), 0, 255).astype(np.uint8)
        Image.fromarray(target).save(root / "target" / f"{name}.png")
        Image.fromarray(noisy).save(root / "input" / f"{name}.png")
    return root


@pytest.fixture
def tiny_weights(tmp_path):
    torch.manual_seed(0)
    model = mprnet.create_model("mprnet", **TINY)
    return mprnet.save_weights(model, tmp_path / "tiny.safetensors", task="denoise", name="tiny test net")


def read_csv_rows(path):
    with open(path, newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def test_evaluate_scores_each_pair_and_averages(paired_folder):
    darken = lambda image: image * 0.9  # noqa: E731
    results = evaluate(darken, paired_folder, "rgb")
    dataset = open_paired(paired_folder)
    expected = [evaluate_pair(darken(dataset.load(i)[0]), dataset.load(i)[1], "rgb") for i in range(len(dataset))]
    assert [row["name"] for row in results["images"]] == list(NAMES)
    assert [row["psnr"] for row in results["images"]] == pytest.approx([e["psnr"] for e in expected])
    assert results["psnr"] == pytest.approx(np.mean([e["psnr"] for e in expected]))
    assert results["ssim"] == pytest.approx(np.mean([e["ssim"] for e in expected]))
    assert results["count"] == 2 and results["protocol"] == "rgb"


def test_perfect_restorer_is_written_as_inf(paired_folder, tmp_path):
    dataset = open_paired(paired_folder)
    targets = {name: dataset.load(i)[1] for i, name in enumerate(dataset.names)}
    oracle_images = iter(targets.values())
    results = evaluate(lambda image: next(oracle_images), dataset, "gopro")
    assert results["psnr"] == float("inf") and results["ssim"] == pytest.approx(1.0)
    rows = read_csv_rows(write_csv(results, tmp_path / "out.csv"))
    assert rows["mean"]["psnr"] == "inf"


def test_cli_eval_figures_match_the_saved_images(paired_folder, tiny_weights, tmp_path, capsys):
    save_dir, csv_path, json_path = tmp_path / "restored", tmp_path / "scores.csv", tmp_path / "scores.json"
    code = main(
        [
            "eval",
            "--weights",
            str(tiny_weights),
            str(paired_folder),
            "--protocol",
            "gopro",
            "--device",
            "cpu",
            "--save-dir",
            str(save_dir),
            "--csv",
            str(csv_path),
            "--json",
            str(json_path),
        ]
    )
    assert code == 0
    rows = read_csv_rows(csv_path)
    recomputed = {
        name: evaluate_pair(
            read_rgb(save_dir / f"{name}.png"), read_rgb(paired_folder / "target" / f"{name}.png"), "gopro"
        )
        for name in NAMES
    }
    for name in NAMES:
        assert float(rows[name]["psnr"]) == pytest.approx(recomputed[name]["psnr"], abs=1e-9)
        assert float(rows[name]["ssim"]) == pytest.approx(recomputed[name]["ssim"], abs=1e-9)
    assert float(rows["mean"]["psnr"]) == pytest.approx(np.mean([r["psnr"] for r in recomputed.values()]))
    saved = json.loads(json_path.read_text())
    assert saved["protocol"] == "gopro" and saved["count"] == 2
    assert saved["psnr"] == pytest.approx(float(rows["mean"]["psnr"]))
    out = capsys.readouterr().out
    assert "protocol gopro" in out and out.count("PSNR") == 3  # two images and the mean


def test_cli_eval_reports_a_missing_dataset(tiny_weights, tmp_path, capsys):
    code = main(["eval", "--weights", str(tiny_weights), str(tmp_path / "nowhere")])
    assert code == 1
    assert "no folder" in capsys.readouterr().err


def test_default_protocol_follows_task_then_layout():
    assert default_protocol("derain", "gopro") == "rain100h"
    assert default_protocol(None, "gopro") == "gopro"
    assert default_protocol(None, "sidd") == "sidd"
    assert default_protocol(None, "folders") == "rgb"


def test_cli_info_describes_a_checkpoint(tiny_weights, capsys):
    assert main(["info", str(tiny_weights), "--size", "64"]) == 0
    out = capsys.readouterr().out
    parameters = count_parameters(mprnet.load_model(tiny_weights))
    assert "architecture:  mprnet" in out
    assert f"parameters:    {parameters:,}" in out
    assert "MACs at 64x64:" in out
    assert "metadata task: denoise" in out and "n_feat=8" in out


@pytest.mark.parametrize(
    "preset, parameters",
    [("nafnet-gopro-w32", "17,11"), ("mimo-unet", "6,80"), ("srn-lstm", "8,05"), ("did-mdn", "37")],
)
def test_cli_info_prints_parameters_and_macs_of_peer_presets(preset, parameters, capsys):
    assert main(["info", preset, "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert f"parameters:    {parameters}" in out and "MACs at 32x32:" in out


def test_cli_info_builds_presets_and_rejects_unknown_names(capsys):
    assert main(["info", "mprnet-derain", "--size", "32"]) == 0
    assert "n_feat=40" in capsys.readouterr().out
    assert main(["info", "no-such-model"]) == 1
    assert "mprnet-deblur" in capsys.readouterr().err  # the message lists the known names
