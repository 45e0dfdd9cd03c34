"""The study in a tiny configuration: tiny random networks, two 48-px photos, cheap baselines."""

import csv
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet import tasks
from mprnet.cli import main
from mprnet.io import read_rgb
from mprnet.metrics import evaluate_pair
from mprnet.study import StudySettings, experiments, run_study
from mprnet.study.complexity import CostSettings

TASKS = ("denoise", "deblur", "derain")
OUTPUTS = (
    "report.md",
    "results.csv",
    "complexity.csv",
    "figures/denoise-sigma20.jpg",
    "figures/deblur-shake.jpg",
    "plots/derain-psnr-vs-gmacs.png",
    "plots/deblur-psnr-vs-seconds.png",
)


def _tiny_mprnet():
    return mprnet.create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("study_inputs")
    photos, weights = root / "photos", root / "weights"
    photos.mkdir()
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, 48)[None, :, None] * np.ones((48, 48, 3))
    for number in range(2):
        pixels = np.clip(ramp + rng.normal(0, 0.1, ramp.shape), 0, 1)
        Image.fromarray((pixels * 255).astype(np.uint8)).save(photos / f"photo{number}.png")
    torch.manual_seed(0)
    for task in TASKS:
        mprnet.save_weights(_tiny_mprnet(), weights / f"tiny_{task}.safetensors", task=task)
    # Two peers, found by their keys alone (their tasks are those of the architectures' releases); MIMO-UNet and
    # SRN stay missing, so their columns are skipped.
    torch.save(
        mprnet.create_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1]).state_dict(),
        weights / "peer_a.pth",
    )
    torch.save(
        {"state_dict": mprnet.create_model("did-mdn", classifier_size=32, classifier_hidden=8).state_dict()},
        weights / "peer_b.pth",
    )
    return photos, weights


def _settings(inputs, out: Path, **changes) -> StudySettings:
    photos, weights = inputs
    return StudySettings(
        out=out,
        data=(photos,),
        weights_dir=weights,
        crop=40,
        cost_models=("did-mdn",),
        costs=CostSettings(size=32, repeats=1, warmup=0, memory=False),
        **changes,
    )


def _without_bm3d_and_ffdnet(patch: pytest.MonkeyPatch) -> None:
    denoise = tasks.TASKS["denoise"]
    patch.setitem(
        tasks.TASKS,
        "denoise",
        dataclasses.replace(
            denoise, study_classics=tuple(m for m in denoise.study_classics if m not in ("bm3d", "ffdnet"))
        ),
    )


@pytest.fixture(scope="module")
def study(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study")
    with pytest.MonkeyPatch.context() as patch:  # BM3D and FFDNet take seconds even on tiny images
        _without_bm3d_and_ffdnet(patch)
        run_study(_settings(inputs, out))
    return out


def test_report_has_every_section_table_and_embedded_figure(study):
    page = (study / "report.html").read_text()
    for heading in (
        "Complexity",
        "Gaussian noise sigma 10",
        "sigma 40",
        "camera shake",
        "light rain",
        "heavy rain",
        "Clean photos through the deblur networks",
    ):
        assert heading in page
    # the cost table, a summary and a per-image table per condition (6 degraded, 3 clean), the sources
    assert page.count("<table>") == 1 + 2 * 9 + 1
    # a crop grid per condition, two plots per task
    assert page.count("data:image/jpeg;base64,") == 9 and page.count("data:image/png;base64,") == 3 * 2
    assert "MIMO-UNet skipped" in page and "SRN skipped" in page and "NAFNet skipped" not in page
    for name in OUTPUTS:
        assert (study / name).is_file(), name


def test_table_cells_are_computed_from_the_saved_images(study):
    rows = list(csv.DictReader((study / "results.csv").open()))
    methods = {row["method"] for row in rows}
    assert {"noisy", "MPRNet", "NAFNet", "MS-DCT (true sigma)", "l0", "TV (true kernel)", "rainy", "DID-MDN"} <= methods
    conditions = experiments.synthetic_conditions() + experiments.passthrough_conditions()
    protocols = {condition.slug: condition.protocol for condition in conditions}
    for row in rows[::7]:
        folder = study / "cache" / row["condition"] / row["image"]
        restored = read_rgb(folder / f"{experiments._slug(row['method'])}.png")
        expected = evaluate_pair(restored, read_rgb(folder / "clean.png"), protocols[row["condition"]])
        assert float(row["psnr"]) == pytest.approx(expected["psnr"], abs=1e-9)
        assert float(row["ssim"]) == pytest.approx(expected["ssim"], abs=1e-9)
    mean_cell = re.search(r"\| mean \| ([\d.]+) / ", (study / "report.md").read_text().split("sigma 10")[1]).group(1)
    noisy = [float(r["psnr"]) for r in rows if r["condition"] == "denoise-sigma10" and r["method"] == "noisy"]
    assert float(mean_cell) == pytest.approx(np.mean(noisy), abs=0.005)


def test_clean_photos_go_through_the_networks_alone(study):
    rows = list(csv.DictReader((study / "results.csv").open()))
    methods = lambda condition: {row["method"] for row in rows if row["condition"] == condition}  # noqa: E731
    assert methods("clean-denoise") == {"MPRNet", "NAFNet"} and methods("clean-derain") == {"MPRNet", "DID-MDN"}
    assert methods("clean-deblur") == {"MPRNet"}


def test_rerun_reads_the_cache_and_writes_identical_files(study, inputs, monkeypatch):
    before = {name: (study / name).read_bytes() for name in OUTPUTS}
    calls = []
    monkeypatch.setattr(experiments, "evaluate_pair", lambda *a, **k: calls.append(a) or {"psnr": 0.0, "ssim": 0.0})
    _without_bm3d_and_ffdnet(monkeypatch)
    run_study(_settings(inputs, study))
    assert calls == []  # nothing was restored or scored again
    assert {name: (study / name).read_bytes() for name in OUTPUTS} == before


def test_cost_table_counts_macs_at_both_sizes_and_times_each_model(study):
    rows = list(csv.DictReader((study / "complexity.csv").open()))
    assert {row["model"] for row in rows} >= {"did-mdn"}
    for row in rows:
        assert 0 < float(row["GMACs_256x256"]) < float(row["GMACs_1280x720"])
        assert float(row["ms_cpu_fp32"]) > 0 and float(row["parameters_M"]) > 0


def _pairs(folder: Path, degraded: str, clean: str, count: int = 2) -> None:
    rng = np.random.default_rng(1)
    for sub in (degraded, clean):
        (folder / sub).mkdir(parents=True)
    for index in range(count):
        pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / clean / f"{index}.png")
        Image.fromarray(np.clip(pixels.astype(int) + 20, 0, 255).astype(np.uint8)).save(
            folder / degraded / f"{index}.png"
        )


def test_paired_test_sets_replace_the_synthetic_conditions_of_their_task(inputs, tmp_path):
    photos, weights = inputs
    gopro, rain = tmp_path / "GOPRO" / "test", tmp_path / "Rain100L"
    _pairs(gopro / "seq1", "blur", "sharp")
    _pairs(rain, "rainy", "norain")
    run_study(
        StudySettings(
            out=tmp_path / "out",
            data=(photos, gopro, rain),
            weights_dir=weights,
            crop=32,
            tasks=("deblur", "derain"),
            costs=None,
        )
    )
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    conditions = {row["condition"] for row in rows}
    assert {"deblur-test", "derain-rain100l"} <= conditions
    assert not conditions & {"deblur-shake", "derain-light", "derain-heavy"}
    assert {row["image"] for row in rows if row["condition"] == "deblur-test"} == {"seq1_0", "seq1_1"}


def test_without_a_photo_folder_the_study_uses_scikit_image_photos():
    photos = experiments.study_photos(count=2, crop=64)
    assert len(photos) == 2 and all(image.shape == (64, 64, 3) for image in photos.values())


def test_checkpoints_are_recognised_by_their_keys(tmp_path):
    torch.save({"state_dict": _tiny_mprnet().state_dict()}, tmp_path / "model_denoising.pth")
    torch.save(_tiny_mprnet().state_dict(), tmp_path / "latest.pth")  # width 8: no task can be told
    (tmp_path / "notes.pth").write_bytes(b"not a checkpoint")
    skipped: list[str] = []
    found = experiments.find_networks(tmp_path, skipped)
    assert found[("MPRNet", "denoise")] == str(tmp_path / "model_denoising.pth")
    assert str(tmp_path / "latest.pth") not in found.values()
    assert len(skipped) == 2
    assert "latest.pth in --weights-dir skipped: neither its metadata" in skipped[0]
    assert skipped[1].startswith("notes.pth in --weights-dir skipped: not a readable PyTorch checkpoint")


def test_unavailable_network_is_a_note_not_a_crash():
    methods = {m.name: m for m in experiments.methods_for("derain", networks={})}
    assert methods["DID-MDN"].restorer is None and "--weights-dir" in methods["DID-MDN"].note
    assert "`mprnet weights fetch did-mdn-classifier`" in methods["DID-MDN"].note
    assert methods["rainy"].restorer is not None


def test_study_command(inputs, tmp_path, capsys):
    photos, weights = inputs
    code = main(
        [
            "study",
            "--data",
            str(photos),
            "--weights-dir",
            str(weights),
            "--out",
            str(tmp_path),
            "--crop",
            "32",
            "--tasks",
            "derain",
            "--no-complexity",
        ]
    )
    assert code == 0 and (tmp_path / "report.html").is_file()
    assert "derain-heavy" in (tmp_path / "results.csv").read_text()
    assert main(["study", "--weights-dir", str(tmp_path / "absent"), "--out", str(tmp_path)]) != 0
    assert "found no folder" in capsys.readouterr().err
    assert main(["study", "--data", str(tmp_path / "absent"), "--out", str(tmp_path)]) != 0
    assert "found nothing at" in capsys.readouterr().err
    for bad in (["--crop", "-5"], ["--crop", "8"], ["--images", "0"]):
        with pytest.raises(SystemExit):
            main(["study", "--out", str(tmp_path), *bad])
    assert "expected a whole number" in capsys.readouterr().err
