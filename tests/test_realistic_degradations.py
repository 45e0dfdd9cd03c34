"""The degradations that imitate real ones: camera noise through an unprocessed pipeline, blur in linear light,
and their statistics."""

import numpy as np
import pytest

from mprnet.degrade import CameraNoise, GaussianNoise, MixedNoise, MotionBlur, blur
from mprnet.degrade.camera import add_sensor_noise, bayer_sites, demosaic, mosaic, process
from mprnet.errors import DataError
from mprnet.tasks import make_degradation


def flat(value, size=96):
    return np.full((size, size, 3), value, dtype=np.float32)


def camera_params(shot=1e-3, read=1e-6, seed=1):
    params = CameraNoise(jpeg_share=0.0).sample(np.random.default_rng(seed), (8, 8, 3))
    return {**params, "shot": shot, "read": read}


# ---- camera noise ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.05, 0.3, 0.8])
def test_sensor_noise_variance_is_shot_times_signal_plus_read(level):
    raw = np.full((256, 256), level)
    noisy = add_sensor_noise(raw, shot=0.01, read=2e-4, rng=np.random.default_rng(0))
    assert np.var(noisy - raw) == pytest.approx(0.01 * level + 2e-4, rel=0.03)
    assert np.mean(noisy) == pytest.approx(level, abs=2e-3)


def test_mosaic_and_bilinear_demosaic_keep_recorded_samples_and_flat_colours():
    sites = bayer_sites((6, 8), (1, 0))
    assert sites[0, 0] == 1 and sites[1, 0] == 0 and sites[1, 1] == 1 and sites[0, 1] == 2  # GBRG: RGGB moved a row
    image = np.random.default_rng(0).random((6, 8, 3))
    raw = mosaic(image, sites)
    rows, cols = np.indices(sites.shape)
    assert np.array_equal(raw, image[rows, cols, sites])
    colour = demosaic(raw, sites)
    assert np.allclose(colour[rows, cols, sites], raw)  # recorded samples are kept
    flat_colour = np.broadcast_to([0.2, 0.5, 0.7], (6, 8, 3))
    assert np.allclose(demosaic(mosaic(flat_colour, sites), sites), flat_colour)  # edges included


def predicted_noise_std(params, grey, size=15):
    """Each channel's noise deviation on a flat grey photo under the linearised pipeline: the response of the
    processed image at the centre to each raw sample around it (by finite differences), weighted by the sample's
    noise variance shot * x + read, averaged over the four sites of the mosaic."""
    from mprnet.degrade.camera import unprocess

    matrix = np.asarray(params["rgb_to_camera"])
    gains = params["brightness_gain"] * np.array([params["red_gain"], 1.0, params["blue_gain"]])
    variances = []
    for offset in ((0, 0), (0, 1), (1, 0), (1, 1)):
        sites = bayer_sites((size, size), offset)
        raw = mosaic(unprocess(np.full((size, size, 3), grey), matrix, gains), sites)
        base = process(raw, sites, np.linalg.inv(matrix), gains)[size // 2, size // 2]
        variance = np.zeros(3)
        for row in range(size // 2 - 2, size // 2 + 3):
            for col in range(size // 2 - 2, size // 2 + 3):
                nudged = raw.copy()
                nudged[row, col] += 1e-6
                response = (process(nudged, sites, np.linalg.inv(matrix), gains)[size // 2, size // 2] - base) / 1e-6
                variance += response**2 * (params["shot"] * raw[row, col] + params["read"])
        variances.append(variance)
    return np.sqrt(np.mean(variances, axis=0))


@pytest.mark.parametrize("grey", [0.15, 0.35, 0.6])
def test_camera_noise_deviation_follows_the_sensor_model_through_the_pipeline(grey):
    params = camera_params()
    image = flat(grey, 192)
    noise = CameraNoise().apply(image, params, np.random.default_rng(3)) - image
    measured = noise[4:-4, 4:-4].std(axis=(0, 1))
    assert measured == pytest.approx(predicted_noise_std(params, grey), rel=0.08)


def test_camera_noise_grows_with_brightness_from_the_shadows():
    params = camera_params()
    deviations = [
        (CameraNoise().apply(flat(grey), params, np.random.default_rng(0)) - flat(grey)).std()
        for grey in (0.05, 0.15, 0.35)
    ]
    assert deviations[0] * 1.2 < deviations[1] and deviations[1] * 1.2 < deviations[2]


def test_camera_noise_is_correlated_between_neighbours_and_channels_where_gaussian_is_not():
    image = flat(0.4, 160)
    camera = CameraNoise().apply(image, camera_params(), np.random.default_rng(0)) - image
    white = GaussianNoise(sigma=15)(image, np.random.default_rng(0))[0] - image
    for noise, low, high in ((camera, 0.25, 1.0), (white, -0.03, 0.03)):
        neighbours = np.corrcoef(noise[:, :-1, 1].ravel(), noise[:, 1:, 1].ravel())[0, 1]
        channels = np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]
        assert low < neighbours < high
        assert low < abs(channels) < high


def test_camera_noise_keeps_the_clean_content_without_noise():
    image = np.random.default_rng(0).random((40, 48, 3), dtype=np.float32)
    params = {**camera_params(shot=1e-12, read=1e-14)}
    assert np.abs(CameraNoise().apply(image, params, np.random.default_rng(0)) - image).max() < 1e-3


def test_camera_noise_records_every_parameter_and_reproduces_from_them():
    noise = CameraNoise(jpeg_share=1.0)
    image = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    noisy, params = noise(image, np.random.default_rng(5))
    assert set(params) == {
        "type",
        "rgb_to_camera",
        "brightness_gain",
        "red_gain",
        "blue_gain",
        "shot",
        "read",
        "bayer_offset",
        "jpeg_quality",
    }
    assert 75 <= params["jpeg_quality"] <= 95 and 1.9 <= params["red_gain"] <= 2.4
    assert np.allclose(np.sum(params["rgb_to_camera"], axis=1), 1.0)
    rng = np.random.default_rng(5)
    again = noise.apply(image, noise.sample(rng, image.shape), rng)
    assert np.array_equal(noisy, again)


def test_read_noise_follows_shot_noise_on_the_log_line():
    rng = np.random.default_rng(0)
    draws = [CameraNoise().sample(rng, (8, 8, 3)) for _ in range(400)]
    shot, read = np.log([d["shot"] for d in draws]), np.log([d["read"] for d in draws])
    slope, intercept = np.polyfit(shot, read, 1)
    assert slope == pytest.approx(2.18, abs=0.1) and intercept == pytest.approx(1.2, abs=0.6)
    assert np.log(2e-4) <= shot.min() and shot.max() <= np.log(2e-2)


def test_camera_noise_works_on_grey_images_and_checks_its_settings():
    grey = np.full((32, 32, 1), 0.4, dtype=np.float32)
    noisy, _ = CameraNoise(shot_range=0.01)(grey, np.random.default_rng(0))
    assert noisy.shape == grey.shape and noisy.std() > 0.01
    with pytest.raises(DataError, match=r"jpeg_share expects values with 0\.0 <= min <= max <= 1\.0"):
        CameraNoise(jpeg_share=2)


def test_mixed_noise_draws_camera_noise_among_the_kinds():
    noise = MixedNoise(poisson_share=0.2, camera_share=0.4)
    rng = np.random.default_rng(0)
    kinds = [noise(flat(0.5, 8), rng)[1]["type"] for _ in range(300)]
    assert 0.3 < kinds.count("camera") / len(kinds) < 0.5 and 0.12 < kinds.count("poisson_gaussian") / 300 < 0.28
    with pytest.raises(DataError, match="poisson_share \\+ camera_share \\+ luma_share <= 1"):
        MixedNoise(poisson_share=0.7, camera_share=0.5)


def test_the_camera_level_is_camera_noise():
    assert isinstance(make_degradation("denoise", "camera"), CameraNoise)


# ---- blur in linear light ----------------------------------------------------------------------------------------


def linear_blur(**settings):
    return MotionBlur(kernel_size=(15, 15), noise_sigma=0.0, linear_light=True, **settings)


def test_linear_light_blur_keeps_flat_images_and_kernel_centres():
    blur_degradation = linear_blur()
    params = blur_degradation.sample(np.random.default_rng(0), (64, 64, 3))
    kernel = params["kernel"]
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(blur_degradation.apply(flat(0.4, 64), params, np.random.default_rng(0)), 0.4, atol=1e-5)
    dot = np.zeros((65, 65, 3), dtype=np.float32)
    dot[32, 32] = 0.8
    spread = blur_degradation.apply(dot, params, np.random.default_rng(0))[..., 0].astype(np.float64) ** 2.2
    rows, cols = np.indices(spread.shape)
    assert (rows * spread).sum() / spread.sum() == pytest.approx(32, abs=0.05)
    assert (cols * spread).sum() / spread.sum() == pytest.approx(32, abs=0.05)


def test_linear_light_blur_averages_light_and_smears_clipped_lights():
    edge = np.zeros((1, 64, 3), dtype=np.float32)
    edge[:, 32:] = 0.8
    params = linear_blur(highlight_gain=1.0).sample(np.random.default_rng(0), edge.shape)
    params["kernel"] = np.full((1, 9), 1 / 9, dtype=np.float32)
    middle = linear_blur().apply(edge, params, np.random.default_rng(0))[0, 32, 0]
    assert middle == pytest.approx((5 / 9 * 0.8**2.2) ** (1 / 2.2), abs=1e-4)  # a mean of light, not of values
    assert middle > blur(edge, params["kernel"])[0, 32, 0] + 0.05
    lamp = np.zeros((1, 64, 3), dtype=np.float32)
    lamp[:, 30:33] = 1.0
    dim, bright = (
        linear_blur().apply(lamp, {**params, "highlight_gain": gain}, np.random.default_rng(0))[0, 31, 0]
        for gain in (1.0, 4.0)
    )
    assert bright > dim + 0.15  # a clipped light keeps its brightness when smeared


def test_camera_blur_draws_mostly_small_kernels_in_linear_light():
    blur_degradation = make_degradation("deblur", "camera")
    rng = np.random.default_rng(0)
    draws = [blur_degradation.sample(rng, (96, 96, 3)) for _ in range(300)]
    sizes = np.array([d["kernel_size"] for d in draws])
    assert all(d["linear_light"] and 1 <= d["highlight_gain"] <= 4 for d in draws)
    assert 0.55 < np.mean(sizes < 21) < 0.8 and sizes.max() > 35
    assert {d["kind"] for d in draws} == {"shake", "linear"}


def test_motion_blur_checks_its_size_weighting():
    with pytest.raises(DataError, match="size_weighting to be one of uniform, inverse"):
        MotionBlur(size_weighting="log")


def test_the_degradation_figure_script_draws_every_row(tmp_path, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    from PIL import Image

    out = tmp_path / "degradations.png"
    monkeypatch.setattr(sys, "argv", ["degradation_figure.py", str(out)])
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "degradation_figure.py"), run_name="__main__")
    figure = Image.open(out)
    assert figure.width > 5 * 170 and figure.height > 3 * 170  # three tasks, a clean photo and four levels each
