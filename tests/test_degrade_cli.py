import json

import numpy as np
import pytest
from PIL import Image

from mprnet.cli import main
from mprnet.degrade import PairsWritten, seeded_rng, write_pairs
from mprnet.errors import DataError
from mprnet.tasks import make_degradation


@pytest.fixture
def clean_dir(tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def files_of(folder):
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
    }


def test_degrade_writes_a_paired_folder_with_a_manifest(clean_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["degrade", "--task", "deblur", "--level", "15", "--seed", "4", str(clean_dir), str(out)]) == 0
    assert sorted(files_of(out)) == [
        "input/a.png",
        "input/b.png",
        "input/c.png",
        "manifest.json",
        "target/a.png",
        "target/b.png",
        "target/c.png",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["task"], manifest["level"], manifest["seed"]) == ("deblur", "15", 4)
    assert [entry["name"] for entry in manifest["images"]] == ["a", "b", "c"]
    for entry in manifest["images"]:
        kernel = np.array(entry["kernel"])
        assert kernel.shape == (entry["kernel_size"],) * 2 and kernel.sum() == pytest.approx(1, abs=1e-5)
    clean = np.asarray(Image.open(clean_dir / "a.png"))
    assert np.array_equal(np.asarray(Image.open(out / "target" / "a.png")), clean)
    assert np.asarray(Image.open(out / "input" / "a.png")).shape == clean.shape


@pytest.mark.parametrize("task", ["denoise", "deblur"])
def test_degrade_offers_the_camera_levels_with_every_parameter_in_the_manifest(clean_dir, tmp_path, task):
    out = tmp_path / "out"
    assert main(["degrade", "--task", task, "--level", "camera", "--seed", "2", str(clean_dir), str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["level"] == "camera" and len(manifest["images"]) == 3
    for entry in manifest["images"]:
        degradation = make_degradation(task, "camera")
        clean = np.asarray(Image.open(clean_dir / entry["source"]), dtype=np.float32) / 255
        params = {key: value for key, value in entry.items() if key not in ("name", "source")}
        if task == "deblur":
            params["kernel"] = np.array(params["kernel"], dtype=np.float32)
        rng = seeded_rng(2, entry["source"])
        assert set(degradation.sample(rng, clean.shape)) == set(params)  # the draws before the noise field's
        redone = degradation.apply(clean, params, rng)  # with the manifest's parameters, not the draws
        written = np.asarray(Image.open(out / "input" / f"{entry['name']}.png"), dtype=np.float32) / 255
        assert np.abs(redone - written).max() <= 0.5 / 255 + 1e-6


def test_degrade_is_deterministic_for_a_seed(clean_dir, tmp_path):
    runs = {}
    for name, seed in (("first", "1"), ("again", "1"), ("other", "2")):
        assert (
            main(
                [
                    "degrade",
                    "--task",
                    "derain",
                    "--level",
                    "heavy",
                    "--seed",
                    seed,
                    str(clean_dir),
                    str(tmp_path / name),
                ]
            )
            == 0
        )
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


# ---- the paired-folder writer ------------------------------------------------------------------------------------


def test_write_pairs_records_rain_without_its_streaks_and_repeats_itself(clean_dir, tmp_path):
    runs = {}
    for name in ("first", "again"):
        written = write_pairs(
            clean_dir,
            make_degradation("derain", "heavy"),
            tmp_path / name,
            5,
            {"task": "derain", "level": "heavy", "seed": 5},
        )
        assert written == PairsWritten(3, [])
        runs[name] = files_of(tmp_path / name)
    assert runs["first"] == runs["again"]
    text = runs["first"]["manifest.json"].decode()
    assert "streaks" not in text
    assert len(text.splitlines()) == 2 + 3  # header line, one line per image, closing line
    manifest = json.loads(text)
    assert (manifest["task"], manifest["level"], manifest["seed"]) == ("derain", "heavy", 5)
    for entry in manifest["images"]:
        assert entry["type"] == "rain" and 2 <= len(entry["layers"]) <= 3 and entry["density_label"] == 0
        assert set(entry) == {"name", "source", "type", "density", "density_label", "layers", "veil", "airlight"}
        layer_keys = {"depth", "density", "length", "angle", "width", "brightness"}
        assert all(set(layer) == layer_keys for layer in entry["layers"])


def test_write_pairs_seeds_each_image_by_its_file_name(clean_dir, tmp_path):
    noise = make_degradation("denoise", "25")
    write_pairs(clean_dir, noise, tmp_path / "three", 2, {})
    Image.fromarray(np.full((24, 20, 3), 90, np.uint8)).save(clean_dir / "0first.png")  # sorts before the others
    write_pairs(clean_dir, noise, tmp_path / "four", 2, {})
    three, four = files_of(tmp_path / "three"), files_of(tmp_path / "four")
    assert set(four) - set(three) == {"input/0first.png", "target/0first.png"}
    assert all(four[name] == data for name, data in three.items() if name != "manifest.json")
    entries = json.loads(four["manifest.json"])["images"]
    assert [entry["name"] for entry in entries] == ["0first", "a", "b", "c"]
    assert entries[1:] == json.loads(three["manifest.json"])["images"]
    clean = np.asarray(Image.open(clean_dir / "b.png")).astype(np.float32) / 255
    expected, _ = noise(clean, seeded_rng(2, "b.png"))
    written = np.asarray(Image.open(tmp_path / "four" / "input" / "b.png")).astype(np.float32) / 255
    assert np.abs(written - np.clip(expected, 0, 1)).max() <= 0.5 / 255 + 1e-6


def test_write_pairs_reports_what_it_skips(clean_dir, tmp_path):
    (clean_dir / "broken.jpg").write_bytes(b"no jpeg here")
    Image.fromarray(np.zeros((24, 20, 3), np.uint8)).save(clean_dir / "a.jpg")  # a second image named a
    seen = []
    written = write_pairs(
        clean_dir, make_degradation("denoise", "10"), tmp_path / "out", 0, {"task": "denoise"}, on_skip=seen.append
    )
    assert written.count == 3 and written.skipped == seen and len(seen) == 2
    assert "a.png: another image already has the name a" in seen[0] and "broken.jpg" in seen[1]
    sources = [entry["source"] for entry in json.loads((tmp_path / "out" / "manifest.json").read_text())["images"]]
    assert sources == ["a.jpg", "b.png", "c.png"]
    with pytest.raises(DataError, match="non-negative integer seed, found -1"):
        write_pairs(clean_dir, make_degradation("denoise", "10"), tmp_path / "bad", -1, {})
    with pytest.raises(DataError, match="no folder at"):
        write_pairs(tmp_path / "missing", make_degradation("denoise", "10"), tmp_path / "bad", 0, {})


def test_a_negative_seed_is_one_clear_line_and_writes_nothing(clean_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["degrade", "--task", "denoise", "--seed", "-1", str(clean_dir), str(out)]) == 2
    assert "error: --seed must be 0 or more, found -1" in capsys.readouterr().err
    assert not out.exists()
