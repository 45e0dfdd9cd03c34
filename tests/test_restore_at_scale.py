"""`mprnet restore` at scale: real torchrun runs of 2 and 3 processes (gloo on the CPU), the split by size, and
--list files."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet.cli import main
from mprnet.distributed import split_by_size

#: Minutes of scripts and processes: `make test` leaves these out, `make test-all` and CI run them.
pytestmark = pytest.mark.slow

RNG = np.random.default_rng(5)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    network = mprnet.create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
    return str(mprnet.save_weights(network, tmp_path_factory.mktemp("w") / "tiny.safetensors", task="denoise"))


def photo(path: Path, size=(24, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def photos(folder: Path, count: int) -> list[Path]:
    return [photo(folder / f"p{index}.png", size=(16 + 8 * index, 24)) for index in range(count)]


def torchrun(processes: int, *arguments) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(mprnet.__file__).parents[1])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    command += ["-m", "mprnet", "restore", *map(str, arguments), "--device", "cpu", "--threads", "1"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_the_split_balances_sizes_and_is_deterministic():
    sizes = [5, 1, 9, 3, 3, 7, 2]
    shares = split_by_size(sizes, 3)
    assert sorted(i for share in shares for i in share) == list(range(len(sizes)))
    assert sorted(sum(sizes[i] for i in share) for share in shares) == [10, 10, 10]
    assert split_by_size(sizes, 3) == shares
    assert split_by_size([4, 4], 3) == [[0], [1], []]  # more processes than files


@pytest.mark.parametrize("processes", [2, 3])
def test_torchrun_restores_each_file_once_as_one_process_does(tmp_path, weights, processes, capsys):
    inputs = photos(tmp_path / "in", 5)
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    assert main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "one"), "--weights", weights]) == 1
    capsys.readouterr()
    result = torchrun(processes, tmp_path / "in", "-o", tmp_path / "many", "--weights", weights)
    assert result.returncode == 1, result.stderr[-2000:]  # the broken file
    assert result.stdout.count("5 restored, 0 skipped, 1 failed") == 1  # one summary, from rank 0
    assert result.stderr.count("broken.png: not a readable image") == 1
    for source in inputs:
        one, many = (Image.open(tmp_path / folder / source.name) for folder in ("one", "many"))
        assert np.array_equal(np.asarray(one), np.asarray(many))
    assert sorted(path.name for path in (tmp_path / "many").iterdir()) == sorted(p.name for p in inputs)


def test_more_processes_than_files_with_a_joined_report_and_a_rerun_that_skips(tmp_path):
    inputs = photos(tmp_path / "in", 2)
    report = tmp_path / "decisions.jsonl"
    arguments = (*inputs, "-o", tmp_path / "out", "--task", "auto", "--report", report)
    result = torchrun(3, *arguments)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 restored, 0 skipped, 0 failed" in result.stdout
    entries = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(Path(entry["input"]).name for entry in entries) == ["p0.png", "p1.png"]
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []  # no report parts left
    again = torchrun(3, *arguments)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 restored, 2 skipped, 0 failed" in again.stdout
    assert report.read_text().splitlines() == [json.dumps(entry) for entry in entries]  # the rerun kept the decisions


def test_a_list_file_keeps_relative_folders_and_names_absolute_paths(tmp_path, weights, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "scans" / "1990" / "a.png")
    photo(tmp_path / "scans" / "1991" / "a.png")
    elsewhere = photo(tmp_path / "other" / "b.png")
    listing = tmp_path / "files.txt"
    listing.write_text(f"scans/1990/a.png\n\nscans/1991/a.png\n{elsewhere}\n")
    assert main(["restore", "--list", str(listing), "-o", "out", "--weights", weights]) == 0
    written = sorted(str(path.relative_to(tmp_path / "out")) for path in (tmp_path / "out").rglob("*.png"))
    assert written == ["b.png", "scans/1990/a.png", "scans/1991/a.png"]
    assert "3 restored" in capsys.readouterr().out


def test_a_list_from_standard_input_with_a_missing_file(tmp_path, weights, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "a.png")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a.png\nmissing.png\n"))
    assert main(["restore", "--list", "-", "-o", "out", "--weights", weights]) == 1
    captured = capsys.readouterr()
    assert "1 restored, 0 skipped, 1 failed" in captured.out
    assert "missing.png" in captured.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--list", "nowhere.txt"], "cannot read the --list file nowhere.txt"), ([], "name the images to restore")],
)
def test_bad_list_arguments_get_one_clear_line(tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.chdir(tmp_path)
    assert main(["restore", *arguments, "--task", "denoise"]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error
