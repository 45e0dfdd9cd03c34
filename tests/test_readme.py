"""Every `mprnet` command the README shows is accepted by the real command line, and those that run in seconds on
tiny files are run through it: a README command cannot break unseen."""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"
#: Commands that are not run here, and the test that runs each of their kind (or why none can).
NOT_RUN_HERE = {
    "mprnet restore IMG_*.jpg --task deblur --precision auto --device cuda": "needs a GPU; test_infer covers devices",
    "mprnet serve": "a server process: test_serve_cli starts and stops one",
    "mprnet serve --help": "argparse's own help",
    "mprnet restore --help": "argparse's own help",
    "mprnet train denoise-tiny": "minutes of training: test_train trains tiny configs",
    "mprnet train my.yaml --set steps=20000 --set data.workers=4": "a long run: test_train runs --set",
    "mprnet train my.yaml --resume": "test_train's kill-and-resume test",
    "mprnet train my.yaml --overwrite": "test_no_overwrite trains tiny configs again with and without --overwrite",
    "mprnet train my.yaml": "test_train's torchrun test",
    "mprnet train my.yaml --init-weights denoise": "test_train's init-weights tests",
    "mprnet train classifier": "35 minutes: test_train trains the classifier config at tiny size",
    "mprnet export denoise --format onnx -o denoise.onnx": "a minute per bundled model: test_export exports tiny "
    "weights of every architecture through the command line",
    "mprnet export deblur --format torchscript -o deblur.pt --height 512 --width 512": "test_export",
    "mprnet restore --list scans.txt -o restored/": "test_restore_at_scale runs --list, alone and under torchrun",
    "mprnet restore archive/ -r -o /shared/restored/": "two machines: test_restore_at_scale runs 2 and 3 processes",
    "mprnet study --quick": "2.5 minutes: test_study runs the study on tiny inputs",
    "mprnet study --data ../shared/data/val/mcmaster18 --out study/": "13-19 minutes: test_study runs the study on "
    "tiny inputs",
    "mprnet study --weights-dir ~/checkpoints": "needs the official releases: test_study uses tiny stand-ins",
    "mprnet study": "test_study",
    "mprnet restore --weights": "a fragment of a sentence, not a command",
    "mprnet demo --real ../shared/data/real": "needs ../shared's real photos: test_bundled runs --real on tiny ones",
}


def readme_commands() -> list[str]:
    """Each `mprnet ...` command of the README's shell blocks and inline code, comments and torchrun dropped."""
    text = README.read_text()
    lines = [line for block in re.findall(r"```sh\n(.*?)```", text, re.S) for line in block.splitlines()]
    lines += re.findall(r"`(mprnet [^`]*)`", text)
    commands = []
    for line in lines:
        line = line.split("  #")[0].strip()
        if "-m mprnet " in line:
            line = "mprnet " + line.split("-m mprnet ", 1)[1]
        if line.startswith("mprnet "):
            commands.append(line)
    return list(dict.fromkeys(commands))


def test_the_readme_shows_commands():
    assert len(readme_commands()) >= 15


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_is_accepted_by_the_command_line(command):
    if command.endswith("--help") or command == "mprnet restore --weights":
        return
    build_parser().parse_args(shlex.split(command)[1:])  # SystemExit on an unknown command or option


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """Tiny files under the names the README uses, in a folder of their own."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for path in ("photos/a.png", "noisy.png", "blurry.png", "rainy.png"):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    np.save("kernel.npy", np.full((3, 3), 1 / 9))
    torch.manual_seed(0)
    tiny = mprnet.create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
    for name in ("model_deraining.pth", "model_deblurring.pth"):
        torch.save({"state_dict": tiny.state_dict()}, name)
    for folder in ("DATASET_DIR/input", "DATASET_DIR/target", "CLEAN_DIR"):
        (tmp_path / folder).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(f"{folder}/x.png")
    return tmp_path


RUN_HERE = {
    "mprnet restore photos/ --task denoise -o restored/": "restored/a.png",
    "mprnet restore rainy.png --task derain --weights model_deraining.pth": "restored/rainy.png",
    "mprnet restore noisy.png --method bm3d --sigma 25": "restored/noisy.png",
    "mprnet restore blurry.png --method wiener --kernel kernel.npy": "restored/blurry.png",
    "mprnet eval DATASET_DIR --task deblur --weights model_deblurring.pth --csv scores.csv": "scores.csv",
    "mprnet degrade --task deblur --seed 0 CLEAN_DIR OUT_DIR": "OUT_DIR/manifest.json",
    "mprnet degrade --task denoise --level camera CLEAN_DIR OUT_DIR": "OUT_DIR/manifest.json",
    "mprnet info FILE_OR_PRESET": None,
    "mprnet inspect photos/": None,
    "mprnet restore photos/ --task auto -o restored/ --report decisions.jsonl": "decisions.jsonl",
    "mprnet models": None,
}


def test_every_readme_command_is_run_here_or_says_where_it_is_tested():
    unaccounted = [command for command in readme_commands() if command not in RUN_HERE and command not in NOT_RUN_HERE]
    assert unaccounted == []


@pytest.mark.parametrize("command", list(RUN_HERE))
def test_readme_commands_run_on_tiny_files(workspace, command, capsys):
    if "bm3d" in command:
        pytest.importorskip("bm3d")
    if command not in readme_commands():
        pytest.fail(f"the README no longer shows {command!r}: update RUN_HERE")
    arguments = shlex.split(command.replace("FILE_OR_PRESET", "model_deraining.pth"))[1:]
    code = main(arguments)
    assert code == 0, capsys.readouterr().err
    if RUN_HERE[command]:
        assert (workspace / RUN_HERE[command]).exists()
