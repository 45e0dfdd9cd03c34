"""The rule of every command that writes: it never replaces a file it did not make in this run (an input, a data
set's file, an earlier run's output) without --overwrite, and a refusal is one line, before anything is written."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import mprnet
from mprnet.cli import main
from mprnet.errors import CheckpointError, DataError
from mprnet.train import load_config, train
from mprnet.train.runlog import RunLog

TINY = {"n_feat": 8, "scale_unetfeats": 4, "scale_orsnetfeats": 4, "num_cab": 1}
USAGE = 2  # the exit status of a refused output


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path: what a refused command must leave byte-identical."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def refused(capsys, arguments: list[str], status: int = USAGE) -> str:
    """Run the command, expect it refused with `status` and one line without a traceback; return the line."""
    assert main(arguments) == status
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def photo(path: Path, seed: int = 0, size: tuple[int, int] = (24, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def paired_folder(root: Path, size: tuple[int, int] = (24, 32)) -> Path:
    for index, name in enumerate("ab"):
        photo(root / "input" / f"{name}.png", index, size)
        photo(root / "target" / f"{name}.png", index + 10, size)
    return root


@pytest.fixture
def weights(tmp_path) -> Path:
    torch.manual_seed(0)
    return mprnet.save_weights(mprnet.create_model("mprnet", **TINY), tmp_path / "tiny.safetensors", task="denoise")


# ---- export --------------------------------------------------------------------------------------------------------


def test_export_refuses_another_files_name_and_replaces_its_own_output_only_with_overwrite(tmp_path, weights, capsys):
    good = photo(tmp_path / "img" / "good.png")
    kept = files_of(tmp_path / "img")
    error = refused(capsys, ["export", str(weights), "--format", "onnx", "-o", str(good)])
    assert "a onnx file is named *.onnx" in error and files_of(tmp_path / "img") == kept

    output = tmp_path / "out" / "model.pt"
    output.parent.mkdir()
    output.write_bytes(b"someone else's model")
    export = ["export", str(weights), "--format", "torchscript", "--height", "32", "--width", "32", "-o", str(output)]
    assert "exists; pass --overwrite" in refused(capsys, export)
    assert output.read_bytes() == b"someone else's model"

    output.unlink()
    assert main(export) == 0
    first = output.read_bytes()
    refused(capsys, export)
    assert output.read_bytes() == first
    assert main([*export, "--overwrite"]) == 0
    assert sorted(path.name for path in output.parent.iterdir()) == ["model.pt"]  # no temporary left behind


# ---- eval ----------------------------------------------------------------------------------------------------------


def test_eval_never_writes_into_the_data_set(tmp_path, weights, capsys):
    data = paired_folder(tmp_path / "pairs")
    kept = files_of(data)
    evaluate = ["eval", str(data), "--weights", str(weights), "--device", "cpu"]
    for option, path in (
        ("--save-dir", data / "input"),
        ("--save-dir", data / "target"),
        ("--save-dir", data),
        ("--csv", data / "input" / "a.png"),
        ("--json", data / "target" / "scores.json"),
    ):
        assert "lies inside the data set" in refused(capsys, [*evaluate, option, str(path), "--overwrite"])
    assert files_of(data) == kept


def test_eval_replaces_its_own_outputs_only_with_overwrite(tmp_path, weights, capsys):
    data = paired_folder(tmp_path / "pairs")
    out = tmp_path / "out"
    outputs = ["--save-dir", str(out / "restored"), "--csv", str(out / "scores.csv"), "--json", str(out / "s.json")]
    evaluate = ["eval", str(data), "--weights", str(weights), "--device", "cpu", *outputs]
    assert main(evaluate) == 0
    capsys.readouterr()
    first = files_of(out)
    assert sorted(first) == ["restored/a.png", "restored/b.png", "s.json", "scores.csv"]
    assert "exists; pass --overwrite" in refused(capsys, evaluate)
    assert files_of(out) == first
    assert main([*evaluate, "--overwrite"]) == 0
    assert sorted(files_of(out)) == sorted(first)

    mine = tmp_path / "mine"
    photo(mine / "b.png", 7)
    kept = files_of(mine)
    refused(capsys, ["eval", str(data), "--weights", str(weights), "--save-dir", str(mine)])
    assert files_of(mine) == kept
    same = ["--csv", str(tmp_path / "x"), "--json", str(tmp_path / "x")]
    assert "also written by --csv" in refused(capsys, ["eval", str(data), "--weights", str(weights), *same])
    assert not (tmp_path / "x").exists()


# ---- train ---------------------------------------------------------------------------------------------------------


def train_config(folder: Path, pairs: Path, **settings) -> Path:
    values = {
        "task": "denoise",
        "model": {"name": "mprnet", **TINY},
        "data": {"paired_dir": str(pairs), "workers": 0},
        "steps": 2,
        "batch_size": 1,
        "patch_size": 16,
        "warmup_steps": 0,
        "precision": "fp32",
        "device": "cpu",
        "checkpoint_every": 1,
        "log_every": 1,
        "out_dir": str(folder / "run"),
        **settings,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture
def trained(tmp_path, capsys) -> tuple[Path, Path]:
    """A config and the out_dir of the run it made."""
    config = train_config(tmp_path, paired_folder(tmp_path / "pairs"))
    assert main(["train", str(config)]) == 0
    capsys.readouterr()
    return config, tmp_path / "run"


def starts_logged(run: Path) -> int:
    return sum("start" in json.loads(line) for line in (run / "log.jsonl").read_text().splitlines())


def test_train_refuses_an_out_dir_holding_a_run_unless_resume_or_overwrite(trained, capsys):
    config, run = trained
    first = files_of(run)
    assert "holds a run" in refused(capsys, ["train", str(config)])
    assert files_of(run) == first
    assert main(["train", str(config), "--overwrite"]) == 0
    assert starts_logged(run) == 1  # started anew: the earlier run's log is gone, not appended to
    assert main(["train", str(config), "--resume", "--set", "steps=3"]) == 0
    assert starts_logged(run) == 2


def test_train_refuses_files_of_a_runs_names_and_an_out_dir_that_is_a_file(tmp_path, capsys):
    data = paired_folder(tmp_path / "pairs")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("my own notes")
    assert "holds a run (config.json)" in refused(capsys, ["train", str(train_config(tmp_path, data))])
    assert files_of(run) == {"config.json": b"my own notes"}
    taken = tmp_path / "taken"
    taken.write_text("a file")
    config = train_config(tmp_path, data, out_dir=str(taken))
    assert "is a file" in refused(capsys, ["train", str(config)])
    assert taken.read_text() == "a file"


@pytest.mark.parametrize(
    "settings, arguments, message",
    [
        ({"data": 5}, [], "data must be a mapping"),
        ({}, ["--set", "data=5"], "data must be a mapping"),
        ({}, ["--set", "steps=[1"], "--set steps=[1: the value is not valid YAML"),
        ({"model": {"name": "mprnet", **TINY, "n_feat": 0}}, ["--resume"], "has layers of no weights"),
        ({"patch_size": 17}, ["--resume"], "patch_size must be a multiple of 8 for MPRNet"),
        ({"model": {"name": "mprnet", **TINY, "n_feat": 12}}, ["--resume"], "was trained with model"),
    ],
)
def test_bad_train_settings_are_one_line_and_touch_the_earlier_run(trained, capsys, settings, arguments, message):
    config, run = trained
    first = files_of(run)
    changed = train_config(config.parent / "changed", config.parent / "pairs", out_dir=str(run), **settings)
    assert message in refused(capsys, ["train", str(changed), *arguments], status=1)
    assert files_of(run) == first


def test_resume_from_a_corrupt_checkpoint_is_one_line(trained, capsys):
    config, run = trained
    (run / "last.pt").write_bytes(b"not a checkpoint")
    first = files_of(run)
    assert "is not a readable checkpoint" in refused(capsys, ["train", str(config), "--resume"], status=1)
    assert files_of(run) == first


def test_a_fresh_run_with_a_bad_setting_writes_nothing(tmp_path, capsys):
    data = paired_folder(tmp_path / "pairs")
    empty = tmp_path / "empty"
    empty.mkdir()
    for settings in ({"patch_size": 17}, {"val": {"dir": str(empty)}}):
        refused(capsys, ["train", str(train_config(tmp_path, data, **settings))], status=1)
        assert not (tmp_path / "run").exists()
    with pytest.raises(DataError, match="no images to validate on"):
        train(load_config(train_config(tmp_path, data, val={"dir": str(empty)})))


def test_the_run_log_is_strict_json(tmp_path):
    log = RunLog(tmp_path)
    log.write({"validation": {"step": 1, "psnr": math.inf, "ssim": math.nan}})
    log.close()

    def no_constants(name: str):
        raise AssertionError(f"{name} is not JSON")

    entry = json.loads((tmp_path / "log.jsonl").read_text(), parse_constant=no_constants)
    assert entry["validation"] == {"step": 1, "psnr": None, "ssim": None}


def test_the_bundled_classifier_as_start_of_a_restoration_says_what_is_wrong(tmp_path, capsys):
    config = train_config(tmp_path, paired_folder(tmp_path / "pairs"))
    error = refused(capsys, ["train", str(config), "--init-weights", "classifier"], status=1)
    assert "the bundled classifier is for task diagnose, not denoise" in error
    assert not (tmp_path / "run").exists()


# ---- NAFNet's TLC setting from metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, True, -64, 2.5])
def test_a_nafnet_file_with_an_unusable_tlc_train_size_is_refused_on_loading(tmp_path, size):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    model = mprnet.create_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    path = mprnet.save_weights(model, tmp_path / "nafnet.safetensors", task="denoise")
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    metadata["config"] = json.dumps({**json.loads(metadata["config"]), "tlc_train_size": size})
    save_file(load_file(str(path)), str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="tlc_train_size"):
        mprnet.load_model(path)
    with pytest.raises(ValueError, match="at least 4 for 2 levels"):
        mprnet.create_model("nafnet", width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1], tlc_train_size=size)


# ---- degrade -------------------------------------------------------------------------------------------------------


def test_degrade_replaces_its_own_pairs_only_with_overwrite_and_never_a_clean_image(tmp_path, capsys):
    clean = tmp_path / "clean"
    photo(clean / "a.png", 1), photo(clean / "b.png", 2)
    out = tmp_path / "out"
    degrade = ["degrade", "--task", "denoise", str(clean), str(out)]
    assert main(degrade) == 0
    first = files_of(out)
    assert "exists; pass --overwrite" in refused(capsys, degrade)
    assert files_of(out) == first
    assert main([*degrade, "--overwrite"]) == 0 and files_of(out) == first  # the same seeds: the same pairs

    mine = tmp_path / "mine"
    photo(mine / "input" / "b.png", 5)
    refused(capsys, ["degrade", "--task", "denoise", str(clean), str(mine)])
    assert sorted(files_of(mine)) == ["input/b.png"]

    source = tmp_path / "data" / "target"
    photo(source / "a.png", 3)
    kept = files_of(source)
    error = refused(capsys, ["degrade", "--task", "denoise", str(source), str(source.parent), "--overwrite"])
    assert "is one of the clean images" in error and files_of(source) == kept


# ---- study and demo ------------------------------------------------------------------------------------------------


def test_study_replaces_a_finished_report_only_with_overwrite(tmp_path, capsys, monkeypatch):
    from mprnet.study import report

    def study(settings):  # the report's last step, not the experiments (minutes)
        return report.write_text(Path(settings.out) / "report.html", "<html>")

    monkeypatch.setattr("mprnet.cli.study.run_study", study)
    out = tmp_path / "study"
    (out / "cache").mkdir(parents=True)
    arguments = ["study", "--out", str(out), "--no-complexity"]
    assert main(arguments) == 0  # only a cache, as an interrupted study leaves it: continued
    capsys.readouterr()
    first = files_of(out)
    assert "holds a finished study (report.html)" in refused(capsys, arguments)
    assert files_of(out) == first
    assert main([*arguments, "--overwrite"]) == 0

    photos = tmp_path / "photos"
    photo(photos / "a.png")
    kept = files_of(photos)
    refused(capsys, ["study", "--data", str(photos), "--out", str(photos / "report")])
    assert files_of(photos) == kept


def test_demo_replaces_its_figures_only_with_overwrite(tmp_path, capsys, monkeypatch):
    from mprnet import demo

    def figures(out_dir, tasks, **settings):  # the figures, not the restorations (seconds per task)
        for task in tasks:
            photo(demo.figure_path(out_dir, task))
        return []

    monkeypatch.setattr(demo, "run_demo", figures)
    out = tmp_path / "demo"
    arguments = ["demo", "-o", str(out), "--task", "denoise"]
    assert main(arguments) == 0
    capsys.readouterr()
    first = files_of(out)
    assert sorted(first) == ["denoise.png", "scores.json"]
    assert "exists; pass --overwrite" in refused(capsys, arguments)
    assert files_of(out) == first
    assert main([*arguments, "--overwrite"]) == 0

    real = tmp_path / "real"
    photo(real / "noisy" / "a.png")
    kept = files_of(real)
    assert "lies inside the --real photos" in refused(capsys, ["demo", "--real", str(real), "-o", str(real / "noisy")])
    assert files_of(real) == kept
