"""A network registered in its own file (tests/toy_network.py) works everywhere with no other edit: listed, trained,
restored, evaluated and studied through the real command line."""

import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from mprnet import tasks
from mprnet.cli import main
from mprnet.errors import MprnetError
from mprnet.infer import Engine
from mprnet.models.registry import ARCHITECTURES, create_model, list_models
from mprnet.study import StudySettings, run_study
from mprnet.study.complexity import CostSettings


@pytest.fixture(scope="module")
def toy():
    sys.path.insert(0, str(Path(__file__).parent))
    import toy_network

    yield toy_network.TOY
    ARCHITECTURES.pop("toy")  # the other tests see the registry as the package makes it


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for folder in ("input", "target"):
        (root / folder).mkdir()
    for index in range(2):
        clean = rng.random((32, 32, 3)) * 0.5 + 0.25
        noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)
        Image.fromarray(np.uint8(clean * 255)).save(root / "target" / f"{index}.png")
        Image.fromarray(np.uint8(noisy * 255)).save(root / "input" / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def weights(toy, pairs, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    config = {
        "task": "denoise",
        "model": {"name": "toy", "width": 4},
        "steps": 3,
        "batch_size": 2,
        "patch_size": 32,
        "warmup_steps": 1,
        "precision": "fp32",
        "data": {"paired_dir": str(pairs), "workers": 0},
        "out_dir": str(run / "out"),
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(run / "config.yaml")]) == 0
    return run / "out" / "last.safetensors"


def test_the_toy_is_listed_with_its_presets(toy, capsys):
    assert {"toy-wide"} <= set(list_models())  # its bare defaults differ from the preset: listed too
    assert "toy" in list_models()
    assert main(["info", "toy-wide"]) == 0
    assert "architecture:  toy" in capsys.readouterr().out


def test_the_toy_restores_and_evaluates_through_the_command_line(weights, pairs, tmp_path, capsys):
    source = pairs / "input" / "0.png"
    assert main(["restore", str(source), "--weights", str(weights), "--method", "toy", "-o", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "0.png").size == (32, 32)
    assert (
        main(["restore", str(source), "--weights", str(weights), "--method", "mprnet", "-o", str(tmp_path / "refused")])
        == 1
    )
    assert "Toy network" in capsys.readouterr().err
    assert main(["eval", str(pairs), "--weights", str(weights)]) == 0
    assert "PSNR" in capsys.readouterr().out


def test_the_toy_has_its_row_in_the_study(weights, pairs, tmp_path, monkeypatch):
    denoise = tasks.TASKS["denoise"]
    monkeypatch.setitem(tasks.TASKS, "denoise", dataclasses.replace(denoise, study_classics=("dct",)))
    run_study(
        StudySettings(
            out=tmp_path,
            data=(pairs / "target",),
            weights_dir=weights.parent,
            crop=32,
            tasks=("denoise",),
            cost_models=("toy",),
            costs=CostSettings(size=32, repeats=1, warmup=0, memory=False),
        )
    )
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert {"Toy", "MPRNet", "noisy"} <= {row["method"] for row in rows}
    assert {row["condition"] for row in rows if row["method"] == "Toy"} >= {"denoise-sigma20", "clean-denoise"}
    assert "toy" in (tmp_path / "complexity.csv").read_text()


def test_listings_follow_registration_order_mprnet_first():
    from mprnet.models import architectures

    assert [a.name for a in architectures()][:5] == ["mprnet", "nafnet", "mimo-unet", "srn", "did-mdn"]
    assert list_models()[:3] == ["mprnet-deblur", "mprnet-denoise", "mprnet-derain"]


def test_a_precision_the_architecture_lacks_is_one_clear_error(toy, monkeypatch):
    monkeypatch.setitem(ARCHITECTURES, "toy", dataclasses.replace(toy, precisions=("fp32",)))
    with pytest.raises(MprnetError, match="Toy does not run in bf16; choose one of fp32"):
        Engine(create_model("toy"), device="cpu", precision="bf16")


def test_the_registry_imports_no_network():
    import ast

    import mprnet.models.registry as registry

    tree = ast.parse(Path(registry.__file__).read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    relative = [node for node in imports if isinstance(node, ast.ImportFrom) and node.level > 0]
    ours = [node for node in imports if "mprnet" in ast.unparse(node)]
    assert relative == [] and ours == [], [ast.unparse(node) for node in relative + ours]
