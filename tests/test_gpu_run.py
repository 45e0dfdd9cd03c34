"""The one-call GPU run (scripts/gpu_run.sh) end to end at tiny size on the CPU, and the photos it carries."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors import safe_open

import mprnet
from mprnet.train import Trainer, load_config, train
from mprnet.train.validation import validation_pairs

from test_train import TINY, _photo_folder

#: Minutes of scripts and processes: `make test` leaves these out, `make test-all` and CI run them.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _config(path: Path, data: Path, **settings) -> Path:
    values = {
        "task": "denoise",
        "model": TINY,
        "data": {"clean_dir": str(data / "train"), "level": 25, "workers": 0},
        "val": {"dir": str(data / "val"), "level": 25, "count": 2, "crop": 32, "every": 10},
        "steps": 40,
        "batch_size": 2,
        "patch_size": 32,
        "lr": 2e-3,
        "warmup_steps": 5,
        "precision": "fp32",
        "log_every": 5,
        "schedule_follows_budget": False,
        "out_dir": str(path.parent / "unused"),
        **settings,
    }
    path.write_text(yaml.safe_dump(values))
    return path


def _gpu_run(*arguments) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHON": sys.executable}
    script = ROOT / "scripts" / "gpu_run.sh"
    return subprocess.run(["bash", script, *map(str, arguments)], capture_output=True, text=True, env=environment)


def test_the_gpu_run_trains_each_config_in_turn_and_ships_what_beat_its_start(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _photo_folder(data / "train", 64), _photo_folder(data / "val", 64)
    plan = {"steps": 120, "time_budget_s": 600}
    first = load_config(_config(tmp_path / "first.yaml", data, **plan, out_dir=str(tmp_path / "first")))
    with monkeypatch.context() as patch:  # the first slot of the plan ends after step 40
        patch.setattr(Trainer, "time_share", lambda self: float(self.step >= 40))
        train(first)
    start = str(Path(first.out_dir) / "last.safetensors")
    better = _config(tmp_path / "better.yaml", data, **plan, init_weights=start)
    diverging = {"lr": 0.05, "warmup_steps": 0, "steps": 20, "init_weights": start}
    worse = _config(tmp_path / "worse.yaml", data, **diverging)
    broken = _config(tmp_path / "broken.yaml", data, init_weights=str(tmp_path / "missing.safetensors"))
    out, work = tmp_path / "out", tmp_path / "work"

    # Minutes no loaded machine runs out of: the steps end each run (a 3-minute slot once stopped it at step 83)
    done = _gpu_run(
        out, f"{better}=60", f"{worse}=60", f"{broken}=60", "--data", data, "--work", work, "--set", "data.workers=0"
    )
    assert done.returncode == 1, done.stderr + done.stdout  # the broken run failed; the others ran
    assert sorted(path.name for path in out.iterdir()) == ["better.safetensors", "logs.tar.gz", "summary.md"]
    shipped = mprnet.load_model(out / "better.safetensors")
    with safe_open(str(out / "better.safetensors"), "pt") as weights:  # fp16, as bundled models are
        assert {str(weights.get_slice(key).get_dtype()) for key in weights.keys()} == {"F16"}  # noqa: SIM118
    assert json.loads(shipped.metadata["seen"])["runs"] == 2 and "threads" in shipped.metadata["hardware"]

    page = (out / "summary.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|") for line in page.splitlines() if line.startswith("| ")}
    assert rows["better"][9].strip() == "yes" and rows["worse"][9].strip() == "no"
    assert rows["broken"][9].strip() == "no (exit 1)" and rows["broken"][4].strip() == "none"
    assert rows["better"][4].strip() == "40 -> 120" and int(rows["better"][5]) == 160  # continued its plan
    assert float(rows["better"][8]) > float(rows["better"][7].split()[1])  # best validation over the start
    assert "continued at step 40 of the planned 120" in rows["better"][10] and "new schedule" in rows["worse"][10]
    assert page in done.stdout
    with tarfile.open(out / "logs.tar.gz") as archive:
        assert {"better.out", "better/log.jsonl", "worse/log.jsonl", "worse/config.json"} <= set(archive.getnames())

    root = tmp_path / "repository"  # landed as into the repository: the bundled model, its log, the table's rows
    (root / "src" / "mprnet" / "weights").mkdir(parents=True)
    (root / "docs" / "training").mkdir(parents=True)
    shutil.copy(ROOT / "docs" / "training" / "README.md", root / "docs" / "training")
    land = [sys.executable, ROOT / "scripts" / "land_gpu_run.py", out, "--root", root]
    landed = subprocess.run(land, capture_output=True, text=True)
    assert landed.returncode == 0, landed.stderr
    assert "better: bundled as src/mprnet/weights/better.safetensors" in landed.stdout
    bundled = mprnet.load_model(root / "src" / "mprnet" / "weights" / "better.safetensors")
    assert bundled.metadata["name"] == "better" and "gpu_run.py" in bundled.metadata["command"]
    assert (root / "docs" / "training" / "better_log.jsonl").read_text() == (work / "better" / "log.jsonl").read_text()
    table = (root / "docs" / "training" / "README.md").read_text()
    assert "| better | 40 -> 120 | 160 |" in table and "| worse | 0 -> 20 | 40 |" in table
    assert table.index("| broken |") < table.index("## The next GPU run")
    missing = subprocess.run([*land[:2], tmp_path / "nothing"], capture_output=True, text=True)
    assert missing.returncode == 2 and "holds no logs.tar.gz" in missing.stderr


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["missing.yaml=1"], "cannot read the training config"),
        (["denoise-tiny=soon"], "expected CONFIG=MINUTES"),
        (["denoise-tiny=1", "--data", "nowhere"], "pack them with scripts/pack_device_data.py"),
        (["denoise-tiny=1"] * 7, "at most 6 runs fit in what a device call brings back"),
        (["denoise-tiny=1", "--set", "steps"], "--set expects KEY=VALUE"),
    ],
)
def test_the_gpu_run_refuses_unusable_arguments_before_it_trains(tmp_path, arguments, message):
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True), (data / "val").mkdir()
    done = _gpu_run(tmp_path / "out", *arguments, *(["--data", data] if "--data" not in arguments else []))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_the_packed_photos_travel_within_the_device_limit_and_validate_alike(tmp_path, shared_data):
    pack = tmp_path / "pack"
    script = [sys.executable, ROOT / "scripts" / "pack_device_data.py", "--out", pack]
    done = subprocess.run(script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    carried = float(done.stdout.split("the call carries ")[1].split()[0])
    assert carried <= 64 and len(list((pack / "train").glob("*.webp"))) == 432
    assert sum(path.stat().st_size for path in (pack / "train").iterdir()) <= 22 * 2**20

    config = load_config("bundled-denoise", {"val.count": 18})
    here = validation_pairs(config)
    config.val.dir = str(pack / "val")
    assert all(np.array_equal(a, b) for pair, other in zip(here, validation_pairs(config)) for a, b in zip(pair, other))

    (tmp_path / "photos").mkdir()
    refused = subprocess.run([*script[:-1], tmp_path / "photos"], capture_output=True, text=True)
    assert refused.returncode == 2 and "is no earlier pack" in refused.stderr
    no_photos = subprocess.run([*script, "--train", tmp_path / "none"], capture_output=True, text=True)
    assert no_photos.returncode == 2 and "no training photos in" in no_photos.stderr


def test_the_tracked_files_leave_room_for_the_photos_and_the_peers():
    """At most 40 MiB tracked, every bundled model included, so that a GPU call carries them and the photos."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    tracked = sum((ROOT / name).stat().st_size for name in listed.split("\0") if name and (ROOT / name).is_file())
    assert tracked <= 40 * 2**20
