"""The README and the documentation site: every `mprnet` command they show is accepted by the real command line, and
those that run in seconds on tiny files are run through it, so that a documented command cannot break unseen; the
Python examples run; the README stays a front door; the site builds with `--strict`; the generated references cover
every command, setting and route."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The pages whose commands are checked: the README, the changelog and every page of the site.
DOCUMENTS = [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: Commands that are not run here, and the test that runs each of their kind (or why none can).
NOT_RUN_HERE = {
    "mprnet restore photos/ --task denoise --backend openvino --precision auto -o restored/": "a bundled model's "
    "conversion takes a minute: test_backends runs --backend openvino through the command line on tiny weights",
    "mprnet restore photos/ --task denoise --backend auto --precision auto -o restored/": "test_backends runs "
    "--backend auto --precision auto through the command line on tiny weights",
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
    "mprnet restore --task auto": "a fragment of a sentence: the --task auto commands above are run here",
    "mprnet restore": "a fragment of a sentence: the restore commands above are run here",
    "mprnet inspect": "a fragment of a sentence: mprnet inspect photos/ is run here",
    "mprnet weights fetch": "a fragment of a sentence: test_weights_fetch runs the fetches",
    "mprnet weights fetch NAME --accept-license": "the form of the fetches test_weights_fetch runs",
    "mprnet weights convert": "a fragment of a sentence: test_weights_fetch converts the TensorFlow fixture",
    "mprnet degrade": "a fragment of a sentence: the degrade commands above are run here",
    "mprnet demo --real ../shared/data/real": "needs ../shared's real photos: test_bundled runs --real on tiny ones",
    "mprnet restore blurry.png --weights checkpoints/color/SRN-DeblurNet.model-523000.index -o deblurred/": "needs "
    "SRN's release: test_tf_checkpoint restores through a TensorFlow-written stand-in by its .index and its prefix",
    "mprnet restore rainy.png --weights DID-MDN/pre_trained/netG_epoch_9.pth -o derained/": "needs DID-MDN's "
    "release: test_did_mdn_pipeline restores through a stand-in of its folder",
    "mprnet weights": "a fragment of a sentence: the weights commands are accounted for one by one",
    "mprnet weights list": "test_weights_fetch runs it (with the cache's state)",
    "mprnet weights fetch mprnet-gopro --accept-license": "a download: test_weights_fetch runs it against a local "
    "server standing in for the authors' locations",
    "mprnet restore photo.png --weights mprnet-gopro": "fetches on first use: test_weights_fetch runs it against a "
    "local server",
    "mprnet info nafnet-sidd-width64": "a download: test_weights_fetch runs info with an official name",
    "mprnet weights convert color/deblur.model-523000 -o srn-color.safetensors": "test_weights_fetch converts the "
    "TensorFlow fixture through the command line",
    "mprnet study --weights-dir": "a fragment of a sentence: the --weights-dir commands are accounted for",
    "mprnet study --weights-dir mprnet-gopro,nafnet-sidd-width64,did-mdn-classifier": "three downloads: "
    "test_weights_fetch resolves official names given to --weights-dir (find_networks)",
}


#: Pages whose every command a test of their own runs through the command line.
PAGES_RUN_BY_THEIR_OWN_TEST = {
    ROOT / "docs" / "guide" / "reproducing.md": "test_study_reproducing runs every command of the page",
    # what `mprnet study` wrote: its command line, and its notes' `mprnet weights fetch NAME`, which
    # test_study_reproducing checks against the catalogue
    ROOT / "docs" / "study" / "report.md": "test_study and test_study_reproducing check what the study writes",
}


def readme_commands(documents: list[Path] = DOCUMENTS) -> list[str]:
    """Each `mprnet ...` command of the documents' shell blocks and inline code, comments and torchrun dropped."""
    text = "\n".join(document.read_text() for document in documents)
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
    if command.endswith("--help") or NOT_RUN_HERE.get(command, "").startswith("a fragment"):
        return
    build_parser().parse_args(shlex.split(command)[1:])  # SystemExit on an unknown command or option


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """Tiny files under the names the README uses, in a folder of their own."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for path in ("photos/a.png", "noisy.png", "blurry.png", "rainy.png", "photo.png"):
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
    "mprnet restore photo.png --task denoise -o restored": "restored/photo.png",
}


def test_every_readme_command_is_run_here_or_says_where_it_is_tested():
    pages = [document for document in DOCUMENTS if document not in PAGES_RUN_BY_THEIR_OWN_TEST]
    unaccounted = [
        command for command in readme_commands(pages) if command not in RUN_HERE and command not in NOT_RUN_HERE
    ]
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


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150
    assert lines[0] == "# mprnet" and lines[2] == "```sh"
    assert lines[3].startswith("make demo") and lines[4].startswith("make test")


def test_the_readmes_links_lead_to_files():
    """The site's own links are checked by `mkdocs build --strict`; the README lives outside it."""
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [target for target in targets if not target.startswith(("http://", "https://"))]
    assert local and [target for target in local if not (ROOT / target).exists()] == []


def test_every_script_the_documents_name_exists():
    text = "\n".join(document.read_text() for document in DOCUMENTS)
    named = set(re.findall(r"\b((?:scripts|benchmarks)/[\w/]+\.(?:py|sh))", text))
    assert len(named) >= 10
    assert sorted(path for path in named if not (ROOT / path).exists()) == []


PYTHON_GUIDE = ROOT / "docs" / "guide" / "python.md"


@pytest.mark.parametrize("number", range(len(re.findall(r"```python\n", PYTHON_GUIDE.read_text()))))
def test_the_python_guides_examples_run(number, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    example = re.findall(r"```python\n(.*?)```", PYTHON_GUIDE.read_text(), re.S)[number]
    exec(compile(example, f"python.md example {number + 1}", "exec"), {})


def _reference():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_holds_every_command():
    from mprnet.cli import _commands

    text = _reference().cli_reference()
    assert all(f"## `mprnet {name}`" in text for name in _commands())
    assert "--overwrite" in text and "--task" in text


def test_the_settings_reference_holds_every_setting_and_its_comment():
    import dataclasses

    from mprnet.train.config import DataConfig, TrainConfig

    text = _reference().config_reference()
    assert all(f"| `{item.name}` |" in text for item in dataclasses.fields(TrainConfig))
    assert all(f"| `data.{item.name}` |" in text for item in dataclasses.fields(DataConfig))
    assert "black and white before they are degraded" in text  # data.gray_share's comment


def test_the_http_reference_holds_every_route():
    pytest.importorskip("fastapi")
    text = _reference().http_reference()
    for route in ("/api/restore", "/api/models", "/healthz"):
        assert f" {route}`" in text
    assert "| `image` | form | file |" in text


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").exists()
    assert (tmp_path / "site" / "changelog" / "index.html").exists()
