"""The article's protocol in `mprnet study`: every command of docs/guide/reproducing.md run through the command line on
tiny stand-ins for the official checkpoints and test sets (their names and layouts), and what the page promises of
the reports: the difference to MPRNet, per-image tables, the file and sha256 behind each column, a note instead of
a crash for a file that does not load."""

import csv
import dataclasses
import hashlib
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet import demo, hub
from mprnet.checkpoint import load_model
from mprnet.cli import main
from mprnet.models.registry import get_architecture
from mprnet.study import StudySettings, experiments, report, run_study
from mprnet.study.report import REFERENCE, SHORT_HASH

from test_study import _tiny_mprnet, _without_bm3d_and_ffdnet

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "reproducing.md"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The page's commands that are not run here, and the test that runs their kind.
NOT_RUN_HERE = {
    "mprnet study --data ../shared/data/val/mcmaster18 --out study/": "13-19 minutes: test_study runs the study "
    "with every condition on tiny inputs",
}
SIZE = 32


def page_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", PAGE.read_text(), re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.startswith("mprnet ")]


def _image(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _pairs(root: Path, count: int, rng: np.random.Generator, degraded: str = "input", clean: str = "target") -> None:
    for index in range(count):
        sharp = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        _image(root / clean / f"{index}.png", sharp)
        _image(root / degraded / f"{index}.png", np.clip(sharp.astype(int) + 25, 0, 255).astype(np.uint8))


def _damaged_did_mdn() -> dict:
    """A DID-MDN checkpoint that is recognised by its keys but does not load: its last weight is missing."""
    state_dict = mprnet.create_model("did-mdn", classifier_size=32, classifier_hidden=8).state_dict()
    del state_dict[[key for key in state_dict if key.endswith("weight")][-1]]
    return state_dict


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The page's folders: GoPro/test in MPRNet's input/ + target/ layout, Rain100L, photos4, and checkpoints/ under
    the official file names (tiny networks)."""
    root = tmp_path_factory.mktemp("reproducing")
    rng = np.random.default_rng(0)
    _pairs(root / "GoPro" / "test", 5, rng)
    _pairs(root / "Rain100L", 2, rng)
    for number in range(4):
        _image(root / "photos4" / f"photo{number}.png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    weights = root / "checkpoints"
    weights.mkdir()
    torch.manual_seed(0)
    for name in ("deblurring", "denoising", "deraining"):
        torch.save({"state_dict": _tiny_mprnet().state_dict()}, weights / f"model_{name}.pth")
    mimo = mprnet.create_model("mimo-unet", num_res=1, base_channel=8)
    torch.save({"model": mimo.state_dict()}, weights / "MIMO-UNetPlus.pkl")  # as the authors release it
    for part in (FIXTURES / "srn_tf" / "color").glob("SRN-DeblurNet.model-523000.*"):  # SRN's TensorFlow release
        shutil.copy(part, weights / part.name)
    nafnet = mprnet.create_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1])
    torch.save({"params": nafnet.state_dict()}, weights / "NAFNet-SIDD-width64.pth")
    torch.save(_damaged_did_mdn(), weights / "netG_epoch_9.pth")
    return root


@pytest.fixture(scope="module")
def reports(workspace) -> dict[str, Path]:
    """Every study command of the page, run in the workspace; its --out folder by command."""
    outputs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace)
        _without_bm3d_and_ffdnet(patch)  # seconds each even on tiny images
        # the clean photos that go through the networks: scikit-image's, as the study takes them, but 32 px wide
        patch.setattr(demo, "sample_photos", lambda size, photos=demo.sample_photos: photos(SIZE))
        for command in page_commands():
            if command.startswith("mprnet study") and command not in NOT_RUN_HERE:
                assert main(shlex.split(command)[1:]) == 0, command
                outputs[command] = workspace / shlex.split(command)[-1]
    return outputs


def _report(reports: dict[str, Path], name: str) -> Path:
    return next(out for out in reports.values() if out.name == name)


def _rows(out: Path) -> list[dict]:
    return list(csv.DictReader((out / "results.csv").open()))


def test_the_page_shows_the_three_studies_and_an_eval():
    commands = page_commands()
    assert len([c for c in commands if c.startswith("mprnet study") and "--tile 0" in c]) == 3
    assert any(c.startswith("mprnet eval") and "--tile 0" in c for c in commands)


def test_every_command_of_the_page_runs_here_or_says_where(reports, workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    for command in page_commands():
        if command in NOT_RUN_HERE or command in reports:
            continue
        assert command.startswith("mprnet eval"), f"{command!r}: run it here or say where in NOT_RUN_HERE"
        assert main(shlex.split(command)[1:]) == 0
        assert "protocol gopro (the deblur benchmark's" in capsys.readouterr().out
        assert len(list(csv.DictReader((workspace / shlex.split(command)[-1]).open()))) == 5 + 1  # and the mean
    assert len(reports) == 3


def test_gopro_study_fills_every_deblurring_column_from_its_file(reports, workspace):
    out = _report(reports, "study-gopro")
    rows = _rows(out)
    assert {row["condition"] for row in rows} == {"deblur-test", "clean-deblur"}
    deblur = [row for row in rows if row["condition"] == "deblur-test"]
    assert {row["image"] for row in deblur} == {"0", "1", "2", "3"}  # --images 4 of the 5 pairs
    checkpoints = workspace / "checkpoints"
    files = {
        "MPRNet": "model_deblurring.pth",
        "MIMO-UNet": "MIMO-UNetPlus.pkl",
        "SRN": "SRN-DeblurNet.model-523000.index",  # through the TensorFlow reader
    }
    for method, name in files.items():
        mine = [row for row in deblur if row["method"] == method]
        assert len(mine) == 4 and {row["source"] for row in mine} == {str(Path("checkpoints") / name)}
        assert mine[0]["sha256"] == hashlib.sha256((checkpoints / name).read_bytes()).hexdigest()
    text = (out / "report.md").read_text()
    assert "tiling: `none: whole images`" in text
    for name in files.values():
        digest = hashlib.sha256((checkpoints / name).read_bytes()).hexdigest()
        assert f"{name} ({digest[:SHORT_HASH]})" in text and digest in text  # the table's and the sources'


def _summary_cell(report: str, heading: str, method: str, column: int) -> str:
    section = report.split(heading, 1)[1].split("\n## ", 1)[0]
    line = next(line for line in section.splitlines() if line.startswith(f"| {method} |"))
    return line.strip("|").split("|")[column].strip()


def test_difference_to_mprnet_is_the_mean_of_the_per_image_differences(reports):
    out = _report(reports, "study-denoise")
    rows = _rows(out)
    report = (out / "report.md").read_text()
    for sigma in (10, 20, 40):
        psnr = {
            (row["image"], row["method"]): float(row["psnr"])
            for row in rows
            if row["condition"] == f"denoise-sigma{sigma}"
        }
        images = sorted({image for image, _ in psnr})
        assert len(images) == 4
        expected = np.mean([psnr[image, "NAFNet"] - psnr[image, REFERENCE] for image in images])
        heading = f"Gaussian noise sigma {sigma}:"
        assert float(_summary_cell(report, heading, "NAFNet", 3)) == pytest.approx(expected, abs=0.005)
        assert _summary_cell(report, heading, REFERENCE, 3) == "reference"


def test_per_image_tables_have_a_row_per_image_and_a_column_per_method(reports):
    report = (_report(reports, "study-denoise") / "report.md").read_text()
    section = report.split("Gaussian noise sigma 20:", 1)[1].split("\n## ", 1)[0].split("Per image:", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines[0] == "| image | noisy | MPRNet | NAFNet | MS-DCT (true sigma) | DCT (true sigma) |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["photo0", "photo1", "photo2", "photo3", "mean"]


def test_a_checkpoint_that_does_not_load_is_a_note_and_the_study_goes_on(reports):
    out = _report(reports, "study-rain100l")
    rows = _rows(out)
    assert {row["condition"] for row in rows} == {"derain-rain100l", "clean-derain"}
    assert {row["method"] for row in rows} == {"rainy", "MPRNet"}  # DID-MDN left out
    notes = (out / "report.md").read_text().split("## Notes", 1)[1]
    assert "DID-MDN skipped: netG_epoch_9.pth does not load: the weights do not fit did-mdn" in notes
    assert "1 missing keys: " in notes and "`mprnet weights fetch did-mdn-classifier`" in notes
    assert "--weights-dir" in notes


def test_crop_figures_show_four_images_by_default_and_every_one_when_asked(workspace, tmp_path, monkeypatch):
    rain = tmp_path / "Rain100L"
    _pairs(rain, 5, np.random.default_rng(3))
    rows = []
    grid = report.crop_grid
    monkeypatch.setattr(report, "crop_grid", lambda condition, cells: rows.append(len(cells)) or grid(condition, cells))
    for count in (None, 1, 99):  # the later runs read every result back from the first one's cache
        chosen = {} if count is None else {"figure_images": count}
        settings = StudySettings(
            tmp_path / "out", (rain,), workspace / "checkpoints", crop=32, tasks=("derain",), costs=None
        )
        run_study(dataclasses.replace(settings, **chosen))
    assert rows == [4, 3, 1, 1, 5, 3]  # the Rain100L figure (5 pairs), then the clean photos' (3 scikit-image)


def test_mprnet_own_gopro_layout_is_deblurring_for_study_and_eval(workspace, tmp_path, capsys):
    condition = experiments.paired_condition(workspace / "GoPro" / "test")
    assert (condition.task, condition.protocol) == ("deblur", "gopro")
    generic = tmp_path / "pairs"
    _pairs(generic, 1, np.random.default_rng(2))
    with pytest.raises(mprnet.errors.DataError, match="task is unknown"):
        experiments.paired_condition(generic)
    weights = str(workspace / "checkpoints" / "model_deblurring.pth")
    assert main(["eval", str(generic), "--weights", weights, "--device", "cpu"]) == 0
    assert "protocol rgb (nothing tells this data set's task: pass --task or --protocol" in capsys.readouterr().out
    assert main(["eval", str(generic), "--weights", weights, "--task", "deblur", "--device", "cpu"]) == 0
    assert "protocol gopro\n" in capsys.readouterr().out


def test_pkl_checkpoints_load_as_restore_loads_them(workspace):
    path = workspace / "checkpoints" / "MIMO-UNetPlus.pkl"
    assert ".pkl" in experiments.WEIGHT_SUFFIXES
    assert load_model(path).architecture == "mimo-unet"
    assert experiments.find_networks(path.parent)[("MIMO-UNet", "deblur")] == str(path)


def test_tile_0_restores_whole_images_and_is_part_of_the_cache_key(workspace):
    networks = experiments.find_networks(workspace / "checkpoints")
    whole, auto = (
        {m.name: m for m in experiments.methods_for("deblur", networks, "cpu", tile)}["MPRNet"] for tile in (0, None)
    )
    assert whole.restorer.tile == 0
    assert whole.identity != auto.identity  # a cached tiled result is not read back for whole images


def test_the_notes_name_catalogue_entries_of_the_right_network_and_task():
    for (title, task), name in experiments.OFFICIAL_RELEASES.items():
        entry = hub.get(name)
        assert (get_architecture(entry.architecture).title, entry.task) == (title, task)
