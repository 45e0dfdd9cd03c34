"""`--method l0` against the IPOL reference's own results (../shared/golden/l0, skipped where absent), and the
pieces that make it: the reference's TV deconvolution, the caution rule, the comparison measures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mprnet.baselines import l0_deblur
from mprnet.baselines.deconv import convolve_circular, default_tv_fidelity
from mprnet.baselines.l0_steps import aligned_psnr, kernel_similarity, smooth_size_down, tv_deconvolve_reference
from mprnet.degrade.blur import blur, camera_shake_kernel
from mprnet.io import read_rgb
from mprnet.metrics import noise_sigma

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden" / "l0"
BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "l0_golden.py"
needs_golden = pytest.mark.skipif(not GOLDEN.is_dir(), reason="no golden set at ../shared/golden/l0")


def _benchmark():
    spec = importlib.util.spec_from_file_location("l0_golden_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aligned_psnr_finds_a_whole_pixel_shift():
    clean = np.random.default_rng(0).random((64, 64, 3))
    shifted = np.roll(clean, (3, -2), axis=(0, 1))
    assert aligned_psnr(shifted, clean) > 50
    assert aligned_psnr(shifted, clean, max_shift=1) < 20


def test_kernel_similarity_is_one_for_a_shifted_copy_and_low_for_another_kernel():
    kernel = camera_shake_kernel(15, np.random.default_rng(1))
    assert kernel_similarity(np.roll(kernel, 2, axis=1), kernel) == pytest.approx(1.0)
    assert kernel_similarity(kernel, np.rot90(kernel)) < 0.8


def test_smooth_size_down_keeps_fft_friendly_sizes():
    assert smooth_size_down(256) == 256
    assert smooth_size_down(257) == 256  # 257 is prime
    assert smooth_size_down(223) == 216  # 2^3 * 3^3


def test_the_estimated_kernel_explains_a_synthetic_blur():
    rng = np.random.default_rng(2)
    sharp = np.kron(rng.random((16, 16)), np.ones((8, 8)))  # blocks: strong edges in every direction
    kernel = camera_shake_kernel(9, rng)
    blurred = blur(sharp, kernel) + rng.normal(0, 0.005, sharp.shape)
    estimate = l0_deblur.estimate_kernel(blurred, 9)
    assert estimate.shape == (9, 9) and estimate.min() >= 0 and estimate.sum() == pytest.approx(1.0)
    impulse = np.zeros((9, 9))
    impulse[4, 4] = 1.0
    assert kernel_similarity(estimate, kernel) > max(0.6, kernel_similarity(impulse, kernel) + 0.2)


def test_caution_deblurs_a_flat_photo_half_way():
    rng = np.random.default_rng(3)
    flat = np.clip(0.5 + rng.normal(0, 0.01, (64, 64, 3)), 0, 1)
    found = l0_deblur.deblur(flat, 11)
    assert found.caution == "flat"
    weight = default_tv_fidelity(noise_sigma(flat))
    full = tv_deconvolve_reference(flat, found.kernel, weight=weight)
    assert not np.allclose(full, flat)
    np.testing.assert_allclose(found.image, (full + flat) / 2)
    assert l0_deblur.deblur(flat, 11, caution=False).caution == ""


def test_caution_doubts_a_kernel_whose_reblurred_result_misses_the_photo():
    rng = np.random.default_rng(5)
    sharp = np.kron(rng.random((8, 8, 3)), np.ones((8, 8, 1)))
    kernel = np.zeros((11, 11))
    kernel[5, :] = 1 / 11
    photo = convolve_circular(sharp, kernel)
    assert l0_deblur.caution_reason(photo, kernel, sharp, sigma=2.55) == ""
    assert l0_deblur.caution_reason(photo, np.rot90(kernel), sharp, sigma=2.55) == "residual"
    assert l0_deblur.caution_reason(photo, kernel, sharp, sigma=255.0) == "flat"
    assert l0_deblur.DEBLURRED_SHARE["residual"] < l0_deblur.DEBLURRED_SHARE["flat"] < 1
    small = photo[:20, :20]
    assert l0_deblur.reblur_residual(small, small, np.rot90(kernel)) > 2.55 * l0_deblur.RESIDUAL_LIMIT


@needs_golden
def test_the_tv_deconvolution_gives_the_references_image_from_its_kernel():
    for name in ("ColorfulCups", "Grey"):
        blurred = read_rgb(GOLDEN / "blurred" / f"{name}.png").astype(np.float64)
        kernel = np.load(GOLDEN / "kernel_reference" / f"{name}.npy").astype(np.float64)
        reference = read_rgb(GOLDEN / "reference" / f"{name}.png").astype(np.float64)
        restored = np.round(tv_deconvolve_reference(blurred, kernel) * 255) / 255
        assert 10 * np.log10(1 / np.mean((restored - reference) ** 2)) > 50  # 8-bit rounding apart


@needs_golden
@pytest.mark.slow
def test_the_golden_set_as_good_as_the_reference_and_never_a_disaster():
    rows = _benchmark().golden_rows(GOLDEN)
    reference = json.loads((GOLDEN / "psnr_aligned.json").read_text())["per_image"]
    assert {row["photo"] for row in rows} == set(reference)
    similarities = [row["similarity"] for row in rows]
    assert min(similarities) > 0.8 and np.mean(similarities) > 0.9
    assert np.mean([row["ours"] for row in rows]) >= np.mean([row["reference"] for row in rows]) - 0.3
    for row in rows:
        assert row["ours"] >= row["blurred"] - 1.0, row
        assert row["ours"] >= row["reference"] - 1.0, row


@pytest.mark.slow
def test_held_out_crops_never_lose_more_than_a_decibel():
    if not (_benchmark().DATA / "val" / "mcmaster18").is_dir():
        pytest.skip("no held-out photos at ../shared/data")
    rows = _benchmark().held_out_rows()
    assert len(rows) == 34
    for row in rows:
        assert row["ours"] >= row["blurred"] - 1.0, row
    assert np.mean([row["ours"] - row["blurred"] for row in rows]) > 2.0
