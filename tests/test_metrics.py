import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mprnet.errors import ImageError, MprnetError
from mprnet.metrics import PROTOCOLS, evaluate_pair, get_protocol, psnr, quantize_8bit, rgb_to_y, ssim


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    target = rng.random((40, 33, 3))
    restored = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    return restored, target


def skimage_ssim(restored, target, **kwargs):
    return structural_similarity(
        restored, target, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, **kwargs
    )


def test_psnr_matches_skimage(pair):
    restored, target = pair
    assert psnr(restored, target) == pytest.approx(peak_signal_noise_ratio(target, restored, data_range=1.0), abs=1e-6)


def test_psnr_of_constant_offset_is_known():
    target = np.full((8, 8, 3), 0.5)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-9)  # 10 log10(1 / 0.01)
    assert psnr(target * 255 + 1, target * 255, data_range=255) == pytest.approx(20 * math.log10(255), abs=1e-9)


def test_identical_images_give_inf_psnr_and_unit_ssim(pair):
    _, target = pair
    assert psnr(target, target) == math.inf
    assert ssim(target, target) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_skimage_colour_and_gray(pair):
    restored, target = pair
    assert ssim(restored, target) == pytest.approx(skimage_ssim(restored, target, channel_axis=-1), abs=1e-6)
    assert ssim(restored[..., 1], target[..., 1]) == pytest.approx(
        skimage_ssim(restored[..., 1], target[..., 1]), abs=1e-6
    )


def test_colour_ssim_is_the_mean_of_channel_ssims(pair):
    restored, target = pair
    per_channel = [ssim(restored[..., c], target[..., c]) for c in range(3)]
    assert ssim(restored, target) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_ssim_is_scale_invariant_with_data_range(pair):
    restored, target = pair
    assert ssim(restored * 255, target * 255, data_range=255) == pytest.approx(ssim(restored, target), abs=1e-12)


def test_ssim_of_an_11x11_image_is_its_single_valid_window():
    rng = np.random.default_rng(1)
    x, y = rng.random((11, 11)), rng.random((11, 11))
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2, (w * x * y).sum() - mx * my
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(x, y) == pytest.approx(expected, abs=1e-12)


def test_y_channel_of_known_colours():
    colours = np.array([[[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]], dtype=np.float64)
    expected = np.array([16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966]) / 255
    np.testing.assert_allclose(rgb_to_y(colours), expected[None], atol=1e-12)


def test_y_channel_psnr_compares_luma(pair):
    restored, target = pair
    assert psnr(restored, target, y_channel=True) == pytest.approx(psnr(rgb_to_y(restored), rgb_to_y(target)))
    with pytest.raises(ImageError, match="H x W x 3"):
        psnr(restored[..., 0], target[..., 0], y_channel=True)


def test_border_crop_ignores_the_border(pair):
    restored, target = pair
    damaged = restored.copy()
    damaged[:4] = 1 - damaged[:4]
    damaged[:, -4:] = 0
    assert psnr(damaged, target, crop_border=4) == pytest.approx(psnr(restored[4:-4, 4:-4], target[4:-4, 4:-4]))
    assert ssim(damaged, target, crop_border=4) == pytest.approx(ssim(restored[4:-4, 4:-4], target[4:-4, 4:-4]))
    assert psnr(damaged, target, crop_border=4) > psnr(damaged, target)


def test_bad_inputs_raise_clear_errors(pair):
    restored, target = pair
    with pytest.raises(ImageError, match="same shape"):
        psnr(restored[:-1], target)
    with pytest.raises(ImageError, match="leaves nothing"):
        psnr(restored, target, crop_border=20)
    with pytest.raises(ImageError, match="at least 11"):
        ssim(restored[:10], target[:10])
    with pytest.raises(MprnetError, match="rain100l"):
        get_protocol("rain200")


def test_quantize_rounds_to_8_bit_levels():
    values = np.array([-0.2, 0.0, 0.3 / 255, 0.6 / 255, 0.5, 1.0, 1.3])
    np.testing.assert_allclose(quantize_8bit(values) * 255, [0, 0, 0, 1, 128, 255, 255])


def test_deblur_protocol_rounds_to_8_bits_first(pair):
    restored, target = pair
    target = quantize_8bit(target)
    result = evaluate_pair(restored, target, "gopro")
    assert result["psnr"] == pytest.approx(
        peak_signal_noise_ratio((target * 255).round().astype(np.uint8), (restored * 255).round().astype(np.uint8)),
        abs=1e-9,
    )
    assert result["psnr"] != pytest.approx(psnr(restored, target), abs=1e-4)
    assert evaluate_pair(restored, target, PROTOCOLS["hide"]) == result


def test_rain_protocol_uses_8_bit_luma(pair):
    restored, target = pair
    y_levels = lambda image: np.round(rgb_to_y(quantize_8bit(image)) * 255)  # noqa: E731
    expected = peak_signal_noise_ratio(y_levels(target), y_levels(restored), data_range=255)
    assert evaluate_pair(restored, target, "rain100h")["psnr"] == pytest.approx(expected, abs=1e-9)
    float_y = evaluate_pair(restored, target, "y")
    assert float_y["psnr"] == pytest.approx(psnr(restored, target, y_channel=True))
    assert float_y["ssim"] == pytest.approx(ssim(restored, target, y_channel=True))


def test_noise_sigma_estimates_gaussian_noise_without_a_reference():
    from mprnet.degrade import GaussianNoise
    from mprnet.demo import sample_photos
    from mprnet.metrics import noise_sigma

    photo = sample_photos(256)["astronaut"]
    for sigma in (10, 25, 40):
        noisy = GaussianNoise(sigma=sigma)(photo, np.random.default_rng(0))[0]
        assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.12)
    assert noise_sigma(photo) < 4


def test_sharpness_falls_with_blur_and_needs_a_few_pixels():
    from mprnet.degrade import MotionBlur
    from mprnet.demo import sample_photos
    from mprnet.metrics import sharpness

    photo = sample_photos(128)["chelsea"]
    blurred = MotionBlur(kernel_size=15, noise_sigma=0)(photo, np.random.default_rng(0))[0]
    assert sharpness(blurred) < 0.6 * sharpness(photo)
    with pytest.raises(ImageError, match="at least 3 x 3 pixels"):
        sharpness(np.zeros((2, 5)))
