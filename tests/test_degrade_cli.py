import json

import numpy as np
import pytest
from PIL import Image

from mprnet.cli import main


@pytest.fixture
def clean_dir(tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def files_of(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


def test_degrade_writes_a_paired_folder_with_a_manifest(clean_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["degrade", "--task", "deblur", "--level", "15", "--seed", "4", str(clean_dir), str(out)]) == 0
    assert sorted(files_of(out)) == ["input/a.png", "input/b.png", "input/c.png", "manifest.json",
                                     "target/a.png", "target/b.png", "target/c.png"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["task"], manifest["level"], manifest["seed"]) == ("deblur", "15", 4)
    assert [entry["name"] for entry in manifest["images"]] == ["a", "b", "c"]
    for entry in manifest["images"]:
        kernel = np.array(entry["kernel"])
        assert kernel.shape == (entry["kernel_size"],) * 2 and kernel.sum() == pytest.approx(1, abs=1e-5)
    clean = np.asarray(Image.open(clean_dir / "a.png"))
    assert np.array_equal(np.asarray(Image.open(out / "target" / "a.png")), clean)
    assert np.asarray(Image.open(out / "input" / "a.png")).shape == clean.shape


def test_degrade_is_deterministic_for_a_seed(clean_dir, tmp_path):
    runs = {}
    for name, seed in (("first", "1"), ("again", "1"), ("other", "2")):
        assert main(["degrade", "--task", "derain", "--level", "heavy", "--seed", seed, str(clean_dir),
                     str(tmp_path / name)]) == 0
        runs[name] = files_of(tmp_path / name)
    assert runs["first"] == runs["again"]
    assert runs["first"]["input/b.png"] != runs["other"]["input/b.png"]
    assert runs["first"]["target/b.png"] == runs["other"]["target/b.png"]


def test_degrade_seeds_each_image_by_its_name(clean_dir, tmp_path):
    assert main(["degrade", "--task", "denoise", str(clean_dir), str(tmp_path / "all")]) == 0
    (clean_dir / "a.png").unlink()
    assert main(["degrade", "--task", "denoise", str(clean_dir), str(tmp_path / "fewer")]) == 0
    assert files_of(tmp_path / "all")["input/b.png"] == files_of(tmp_path / "fewer")["input/b.png"]
    sigmas = [entry["sigma"] for entry in json.loads((tmp_path / "all" / "manifest.json").read_text())["images"]]
    assert all(0 <= sigma <= 50 for sigma in sigmas) and len(set(sigmas)) == 3


def test_degrade_skips_unreadable_files_and_fails(clean_dir, tmp_path, capsys):
    (clean_dir / "broken.jpg").write_bytes(b"no jpeg here")
    out = tmp_path / "out"
    assert main(["degrade", "--task", "denoise", "--level", "25", str(clean_dir), str(out)]) == 1
    assert "broken.jpg" in capsys.readouterr().err
    assert len(json.loads((out / "manifest.json").read_text())["images"]) == 3
    assert not (out / "input" / "broken.png").exists()


def test_degrade_reports_a_bad_level_without_traceback(clean_dir, tmp_path, capsys):
    assert main(["degrade", "--task", "derain", "--level", "drizzle", str(clean_dir), str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "derain level among medium, light, heavy, mixed" in error and "Traceback" not in error


def test_default_rain_is_medium(clean_dir, tmp_path):
    assert main(["degrade", "--task", "derain", str(clean_dir), str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["level"] == "medium"
    assert {entry["density_label"] for entry in manifest["images"]} == {1}
