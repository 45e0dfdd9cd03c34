import itertools
import json
import time
import zlib

import numpy as np
import pytest

from mprnet.degrade import (
    Degradation,
    GaussianNoise,
    Identity,
    MixedNoise,
    MotionBlur,
    PoissonGaussianNoise,
    Rain,
    RandomChoice,
    blur,
    camera_shake_kernel,
    density_label,
    linear_motion_kernel,
    seeded_rng,
)
from mprnet.errors import DataError
from mprnet.tasks import make_degradation


def flat(value=0.5, size=256):
    return np.full((size, size, 3), value, dtype=np.float32)


def random_image(size=48, seed=0):
    return np.random.default_rng(seed).random((size, size, 3), dtype=np.float32)


def centre_of_mass(kernel):
    rows, cols = np.indices(kernel.shape)
    weights = kernel.astype(np.float64)
    return (rows * weights).sum() / weights.sum(), (cols * weights).sum() / weights.sum()


# ---- noise -------------------------------------------------------------------------------------------------------


def test_gaussian_noise_std_matches_sigma():
    noisy, params = GaussianNoise(sigma=25)(flat(), np.random.default_rng(0))
    assert params == {"type": "gaussian", "sigma": 25.0, "clip": False, "shared": 0.0}
    assert noisy.dtype == np.float32 and noisy.shape == (256, 256, 3)
    assert np.std((noisy - 0.5) * 255) == pytest.approx(25, rel=0.02)
    bright, _ = GaussianNoise(sigma=25)(flat(0.98, 32), np.random.default_rng(0))
    assert bright.max() > 1  # not clipped unless asked


def test_gaussian_noise_clip_keeps_unit_range():
    noisy, _ = GaussianNoise(sigma=50, clip=True)(flat(0.9, 64), np.random.default_rng(0))
    assert noisy.min() >= 0 and noisy.max() == 1


def test_blind_gaussian_noise_draws_and_records_sigma():
    noise = GaussianNoise(sigma_range=(5, 50))
    rng = np.random.default_rng(1)
    for _ in range(5):
        noisy, params = noise(flat(0.5, 128), rng)
        assert 5 <= params["sigma"] <= 50
        assert np.std((noisy - 0.5) * 255) == pytest.approx(params["sigma"], rel=0.05)
    sigmas = {noise(flat(0.5, 8), rng)[1]["sigma"] for _ in range(5)}
    assert len(sigmas) == 5


def test_gaussian_noise_rejects_both_sigma_and_range():
    with pytest.raises(DataError, match="sigma or sigma_range"):
        GaussianNoise(sigma=10, sigma_range=(0, 50))
    with pytest.raises(DataError, match="sigma"):
        GaussianNoise(sigma=-1)


@pytest.mark.parametrize("level", [0.2, 0.6])
def test_poisson_gaussian_variance_is_a_x_plus_b(level):
    a, b = 0.01, 1e-4
    noisy, params = PoissonGaussianNoise(a_range=a, b_range=b)(flat(level), np.random.default_rng(0))
    assert params == {"type": "poisson_gaussian", "a": a, "b": b}
    assert np.var(noisy) == pytest.approx(a * level + b, rel=0.05)
    assert np.mean(noisy) == pytest.approx(level, abs=0.002)


@pytest.mark.parametrize("shared", [0.0, 0.5, 1.0])
def test_gaussian_noise_shares_the_given_part_of_its_variance_between_the_channels(shared):
    noisy, params = GaussianNoise(sigma=20, shared=shared)(flat(0.5, 256), np.random.default_rng(1))
    noise = (noisy - 0.5).reshape(-1, 3)
    assert params["shared"] == shared and noise.std() == pytest.approx(20 / 255, rel=0.03)
    assert np.corrcoef(noise[:, 0], noise[:, 1])[0, 1] == pytest.approx(shared, abs=0.03)


def test_parameters_without_a_shared_part_are_colour_noise_as_before():
    image = flat(0.5, 32)
    old = {"type": "gaussian", "sigma": 20.0, "clip": False}
    applied = GaussianNoise().apply(image, old, np.random.default_rng(3))
    assert np.array_equal(applied, GaussianNoise().apply(image, {**old, "shared": 0.0}, np.random.default_rng(3)))


def test_the_mixed_level_holds_luminance_noise():
    noise = make_degradation("denoise", "mixed")
    rng = np.random.default_rng(0)
    shares = [params.get("shared", 0.0) for _, params in (noise(flat(0.5, 8), rng) for _ in range(200))]
    assert 0.1 < np.mean(np.array(shares) >= 0.5) < 0.3


def test_mixed_noise_uses_each_kind_in_proportion():
    noise = MixedNoise(poisson_share=0.3, camera_share=0.2)
    rng = np.random.default_rng(0)
    kinds = [noise(flat(0.5, 8), rng)[1]["type"] for _ in range(200)]
    assert 0.2 < kinds.count("poisson_gaussian") / len(kinds) < 0.4
    assert set(kinds) == {"gaussian", "poisson_gaussian", "camera"}


# ---- blur --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [7, 15, 41])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_camera_shake_kernel_is_a_centred_psf(size, seed):
    kernel = camera_shake_kernel(size, np.random.default_rng(seed))
    assert kernel.shape == (size, size) and kernel.dtype == np.float32
    assert kernel.min() >= 0
    assert kernel.sum() == pytest.approx(1, abs=1e-5)
    centre = (size - 1) / 2
    assert centre_of_mass(kernel) == pytest.approx((centre, centre), abs=1e-3)
    border = np.concatenate([kernel[0], kernel[-1], kernel[:, 0], kernel[:, -1]])
    assert border.max() > 0  # scaled as large as fits: the path reaches the edge of the grid


def test_camera_shake_kernels_differ_with_seed():
    first = camera_shake_kernel(21, np.random.default_rng(0))
    assert np.array_equal(first, camera_shake_kernel(21, np.random.default_rng(0)))
    assert not np.array_equal(first, camera_shake_kernel(21, np.random.default_rng(1)))


def test_linear_motion_kernel_follows_the_angle():
    horizontal = linear_motion_kernel(10, 0, 15)
    assert np.count_nonzero(horizontal.sum(axis=1)) == 1 and horizontal[7].sum() == pytest.approx(1)
    assert np.count_nonzero(horizontal.sum(axis=0)) == 11
    vertical = linear_motion_kernel(10, 90, 15)
    assert np.count_nonzero(vertical.sum(axis=0)) == 1 and vertical[:, 7].sum() == pytest.approx(1, abs=1e-6)
    diagonal = linear_motion_kernel(12.5, 33)
    assert diagonal.shape[0] % 2 == 1 and diagonal.min() >= 0
    assert diagonal.sum() == pytest.approx(1, abs=1e-5)
    centre = (diagonal.shape[0] - 1) / 2
    assert centre_of_mass(diagonal) == pytest.approx((centre, centre), abs=1e-3)


def test_linear_motion_kernel_rejects_length_beyond_grid():
    with pytest.raises(DataError, match="at most size - 1 = 8"):
        linear_motion_kernel(12, 0, 9)


def test_blur_with_a_centred_delta_is_identity_and_keeps_constants():
    image = random_image(32)
    delta = np.zeros((9, 9), np.float32)
    delta[4, 4] = 1
    assert np.allclose(blur(image, delta), image, atol=1e-6)
    box = np.full((7, 5), 1 / 35, np.float32)
    assert np.allclose(blur(flat(0.3, 20), box), 0.3, atol=1e-6)  # no dark border: edges are extended


def test_blur_with_an_offset_delta_shifts_the_image():
    image = random_image(20)
    kernel = np.zeros((5, 5), np.float32)
    kernel[2, 3] = 1
    shifted = blur(image, kernel)
    assert shifted.shape == image.shape
    assert np.allclose(shifted[:, 1:], image[:, :-1], atol=1e-6)


def test_blur_accepts_gray_images_and_rejects_bad_kernels():
    assert blur(np.ones((12, 10), np.float32), np.full((3, 3), 1 / 9)).shape == (12, 10)
    with pytest.raises(DataError, match="2-D kernel"):
        blur(random_image(8), np.ones(3))


def test_blur_is_fast_on_a_256_colour_image():
    image, kernel = random_image(256), camera_shake_kernel(41, np.random.default_rng(0))
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        blur(image, kernel)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.1


def test_motion_blur_smooths_and_records_its_kernel():
    blur_degradation = MotionBlur(kernel_size=(9, 15), noise_sigma=0)
    assert blur_degradation.margin == 7
    image = random_image(64)
    blurred, params = blur_degradation(image, np.random.default_rng(0))
    assert blurred.shape == image.shape and blurred.dtype == np.float32
    assert params["kernel_size"] in (9, 11, 13, 15) and params["kernel"].shape == (params["kernel_size"],) * 2
    assert np.allclose(blurred, np.clip(blur(image, params["kernel"]), 0, 1), atol=1e-6)
    assert np.std(np.diff(blurred, axis=1)) < 0.5 * np.std(np.diff(image, axis=1))


def test_motion_blur_adds_the_configured_sensor_noise():
    blurred, params = MotionBlur(kernel_size=7, noise_sigma=5.1)(flat(0.5), np.random.default_rng(0))
    assert params["noise_sigma"] == 5.1
    assert np.std(blurred * 255) == pytest.approx(5.1, rel=0.03)


def test_linear_motion_blur_records_length_and_angle():
    _, params = MotionBlur(kernel_size=(11, 11), kind="linear")(random_image(32), np.random.default_rng(0))
    assert params["kind"] == "linear" and params["length"] == 10 and 0 <= params["angle"] < 180


def test_motion_blur_rejects_unknown_kind():
    with pytest.raises(DataError, match="shake, linear, mixed"):
        MotionBlur(kind="zoom")


# ---- rain --------------------------------------------------------------------------------------------------------


def test_rain_coverage_grows_with_density():
    coverages = []
    for density in (0.001, 0.004, 0.016):
        rain = Rain(density=density, length=15, angle=10, width=1.5, brightness=0.8)
        rainy, params = rain(flat(0.0, 128), np.random.default_rng(0))
        assert params["density"] == density and len(params["layers"]) == 1
        coverages.append(np.mean(rainy[..., 0] > 0.05))
    assert 0 < coverages[0] < coverages[1] < coverages[2]


def test_rain_veils_then_only_brightens_and_stays_in_range():
    image = random_image(64)
    rainy, params = Rain.heavy()(image, np.random.default_rng(0))
    assert rainy.dtype == np.float32 and rainy.shape == image.shape and rainy.max() <= 1
    assert len(params["layers"]) == 3 and 0.05 <= params["veil"] <= 0.15 and 0.75 <= params["airlight"] <= 0.95
    veiled = (1 - params["veil"]) * image + params["veil"] * params["airlight"]
    assert np.all(rainy >= veiled - 1e-6)
    dark = np.all(veiled[..., :2] < 0.9, axis=2)
    streaks = (rainy - veiled)[dark] / (1 - veiled[dark])  # screen blend undone, per channel
    assert np.allclose(streaks[:, 0], streaks[:, 1], atol=1e-4)  # streaks are gray
    assert np.mean(rainy - veiled) > 0.01


def test_rain_layers_near_are_longer_wider_brighter_and_sparser():
    _, params = Rain.heavy()(random_image(32), np.random.default_rng(0))
    layers = sorted(params["layers"], key=lambda layer: layer["depth"])
    for far, near in itertools.pairwise(layers):
        assert near["length"] > far["length"] and near["width"] > far["width"]
        assert near["brightness"] > far["brightness"] and near["density"] < far["density"]
    angles = [layer["angle"] for layer in layers]
    assert max(angles) - min(angles) <= 10  # one dominant direction


def test_streaks_fade_towards_their_ends():
    from mprnet.degrade.rain import streak_kernel

    kernel = streak_kernel(21, 0.0, 1.0)  # vertical
    column = kernel[:, kernel.shape[1] // 2]
    middle = len(column) // 2
    assert column[middle] == column.max() and column[middle - 8] < 0.6 * column[middle]
    assert np.allclose(column, column[::-1], atol=1e-6)


def test_rain_presets_record_the_density_label():
    rng = np.random.default_rng(0)
    for preset, label in ((Rain.light, 2), (Rain.medium, 1), (Rain.heavy, 0)):
        assert all(preset()(flat(0.3, 32), rng)[1]["density_label"] == label for _ in range(5))
    labels = {Rain.mixed()(flat(0.3, 32), rng)[1]["density_label"] for _ in range(20)}
    assert labels == {0, 2}
    assert [density_label(value) for value in (0.02, 0.01, 0.001)] == [0, 1, 2]


# ---- factory, determinism, interface -----------------------------------------------------------------------------

ALL_LEVELS = [
    ("denoise", None),
    ("denoise", "15"),
    ("denoise", "mixed"),
    ("denoise", "poisson"),
    ("denoise", "camera"),
    ("deblur", None),
    ("deblur", "linear"),
    ("deblur", "mixed"),
    ("deblur", 21),
    ("deblur", "camera"),
    ("derain", None),
    ("derain", "light"),
    ("derain", "medium"),
    ("derain", "heavy"),
]


@pytest.mark.parametrize("task, level", ALL_LEVELS)
def test_degradations_are_deterministic_under_a_seed(task, level):
    degradation = make_degradation(task, level)
    assert degradation.task == task
    image = random_image(40)
    first, first_params = degradation(image, np.random.default_rng(7))
    again, again_params = degradation(image, np.random.default_rng(7))
    other, _ = degradation(image, np.random.default_rng(8))
    assert first.dtype == np.float32 and first.shape == image.shape
    assert np.array_equal(first, again)
    arrays = ("kernel", "streaks")
    assert json.dumps({k: v for k, v in first_params.items() if k not in arrays}) == json.dumps(
        {k: v for k, v in again_params.items() if k not in arrays}
    )
    for key in set(arrays) & set(first_params):
        assert np.array_equal(first_params[key], again_params[key])
    assert not np.array_equal(first, other)


def test_make_degradation_reads_numbers_and_names():
    assert make_degradation("denoise", "25").sigma == (25.0, 25.0)
    assert make_degradation("denoise", "blind").sigma == (0.0, 50.0)
    assert make_degradation("deblur", "41").margin == 20
    assert make_degradation("deblur", "linear").kind == "linear"


@pytest.mark.parametrize(
    "task, level, message",
    [
        ("denoise", "loud", "denoise level among blind, mixed, poisson, camera or a sigma"),
        ("deblur", "7.5", "deblur level among shake, linear, mixed, camera or a maximum kernel size"),
        ("derain", "7", "derain level among medium, light, heavy, mixed"),
        ("dehaze", None, "task among denoise, deblur, derain"),
    ],
)
def test_make_degradation_rejects_unknown_levels(task, level, message):
    with pytest.raises(DataError, match=message):
        make_degradation(task, level)


def test_degradations_reject_images_that_are_not_h_w_c():
    with pytest.raises(DataError, match=r"H x W x C, found shape \(8, 8\)"):
        GaussianNoise(sigma=5)(np.zeros((8, 8), np.float32), np.random.default_rng(0))


# ---- parameters drawn apart from applied -------------------------------------------------------------------------

EVERY_DEGRADATION = [lambda task=task, level=level: make_degradation(task, level) for task, level in ALL_LEVELS] + [
    lambda: make_degradation("derain", "mixed"),
    lambda: Identity("denoise"),
    MixedNoise,
]


@pytest.mark.parametrize("build", EVERY_DEGRADATION)
def test_apply_with_sampled_params_reproduces_the_call(build):
    degradation, image = build(), random_image(40)
    degraded, params = degradation(image, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    sampled = degradation.sample(rng, image.shape)
    assert sampled["type"] == params["type"] and sorted(sampled) == sorted(params)
    assert np.array_equal(degradation.apply(image, sampled, rng), degraded)


def test_sample_draws_every_parameter_and_apply_only_the_noise():
    image = random_image(40)
    for degradation in (MotionBlur(noise_sigma=0), Rain.heavy(), Identity("derain")):
        params = degradation.sample(np.random.default_rng(0), image.shape)
        first = degradation.apply(image, params, np.random.default_rng(1))
        assert np.array_equal(first, degradation.apply(image, params, np.random.default_rng(2)))
    noise = GaussianNoise(sigma=20)
    params = noise.sample(np.random.default_rng(0), image.shape)
    assert not np.array_equal(
        noise.apply(image, params, np.random.default_rng(1)), noise.apply(image, params, np.random.default_rng(2))
    )


def test_one_kernel_blurs_two_images_alike():
    blurring = MotionBlur(kernel_size=(9, 15), noise_sigma=0)
    first, second = random_image(48, seed=1), random_image(48, seed=2)
    params = blurring.sample(np.random.default_rng(0), first.shape)
    for image in (first, second):
        expected = np.clip(blur(image, params["kernel"]), 0, 1)
        assert np.allclose(blurring.apply(image, params, np.random.default_rng(5)), expected, atol=1e-6)


def test_one_noise_level_and_field_on_two_images():
    noise, first, second = GaussianNoise(sigma_range=(5, 50)), random_image(32, seed=1), random_image(32, seed=2)
    params = noise.sample(np.random.default_rng(0), first.shape)
    field = noise.apply(first, params, np.random.default_rng(9)) - first
    assert np.allclose(noise.apply(second, params, np.random.default_rng(9)) - second, field, atol=1e-6)
    assert np.std(field * 255) == pytest.approx(params["sigma"], rel=0.1)


def test_one_rain_layer_set_on_two_images():
    rain, first, second = Rain.heavy(), random_image(48, seed=1), random_image(48, seed=2)
    params = rain.sample(np.random.default_rng(0), first.shape)
    assert len(params["streaks"]) == len(params["layers"]) >= 2
    assert all(layer.shape == (48, 48) and layer.dtype == np.float32 for layer in params["streaks"])
    remaining = np.prod([1 - layer for layer in params["streaks"]], axis=0)[..., None]  # screen blend of layers
    for image in (first, second):
        veiled = (1 - params["veil"]) * image + params["veil"] * params["airlight"]
        assert np.allclose(rain.apply(image, params, np.random.default_rng(5)), 1 - (1 - veiled) * remaining, atol=1e-5)
    with pytest.raises(DataError, match=r"streaks of the image's size \(40, 48\)"):
        rain.apply(random_image(48)[:40], params, np.random.default_rng(5))


def test_identity_params_carry_a_type_and_the_image_is_a_copy():
    image = random_image(16)
    degraded, params = Identity("deblur")(image, np.random.default_rng(0))
    assert params == {"type": "identity"}
    assert np.array_equal(degraded, image) and degraded is not image
    degraded[0, 0, 0] = 2.0
    assert image[0, 0, 0] != 2.0


def test_random_choice_applies_the_option_its_params_name():
    choice = RandomChoice([GaussianNoise(sigma=10), PoissonGaussianNoise(), Identity("denoise")])
    image = random_image(24)
    assert np.array_equal(choice.apply(image, {"type": "identity"}, np.random.default_rng(0)), image)
    poisson = choice.apply(image, {"type": "poisson_gaussian", "a": 0.01, "b": 1e-4}, np.random.default_rng(0))
    assert np.array_equal(
        poisson,
        PoissonGaussianNoise().apply(
            image, {"type": "poisson_gaussian", "a": 0.01, "b": 1e-4}, np.random.default_rng(0)
        ),
    )
    gaussian = choice.apply(image, {"type": "gaussian", "sigma": 30.0, "clip": False}, np.random.default_rng(0))
    assert np.std((gaussian - image) * 255) == pytest.approx(30, rel=0.1)
    with pytest.raises(DataError, match="found 'rain'"):
        choice.apply(image, {"type": "rain"}, np.random.default_rng(0))
    nested = RandomChoice([MixedNoise(), Identity("denoise"), GaussianNoise(sigma=5)])  # types may repeat in a class
    assert set(nested.param_types()) == {"gaussian", "poisson_gaussian", "camera", "identity"}


def test_random_choice_refuses_one_type_from_two_classes():
    class OtherNoise(GaussianNoise):
        def apply(self, clean, params, rng):
            return clean

    with pytest.raises(DataError, match="type 'gaussian' from both GaussianNoise and OtherNoise"):
        RandomChoice([GaussianNoise(), OtherNoise()])


def test_degradation_subclasses_implement_sample_and_apply():
    class Unfinished(Degradation):
        task = "denoise"

    with pytest.raises(NotImplementedError):
        Unfinished()(random_image(8), np.random.default_rng(0))
    assert not hasattr(Degradation, "degrade")


# ---- per-image generators ----------------------------------------------------------------------------------------


def draws(rng):
    return rng.random(6)


def test_seeded_rng_reproduces_the_seeds_in_use():
    study = np.random.default_rng([3, zlib.crc32(b"denoise-blind"), zlib.crc32(b"photo 1.png")])
    assert np.array_equal(draws(seeded_rng(3, "denoise-blind", "photo 1.png")), draws(study))
    assert np.array_equal(draws(seeded_rng(0, 5)), draws(np.random.default_rng([0, 5])))  # demo, validation
    assert np.array_equal(draws(seeded_rng(7)), draws(np.random.default_rng([7])))
    assert np.array_equal(draws(seeded_rng(1, "é")), draws(np.random.default_rng([1, zlib.crc32("é".encode())])))
    assert not np.array_equal(draws(seeded_rng(0, "a.png")), draws(seeded_rng(0, "b.png")))
    assert not np.array_equal(draws(seeded_rng(0, 1, 2)), draws(seeded_rng(0, 2, 1)))


@pytest.mark.parametrize(
    "seed, keys, message",
    [
        (-1, (), "non-negative integer seed, found -1"),
        (1.5, (), "non-negative integer seed, found 1.5"),
        ("0", (), "non-negative integer seed, found '0'"),
        (0, (2.0,), "strings or non-negative integers, found 2.0"),
        (0, (b"a.png",), "strings or non-negative integers, found b'a.png'"),
        (0, ("a", -3), "strings or non-negative integers, found -3"),
        (0, (None,), "strings or non-negative integers, found None"),
    ],
)
def test_seeded_rng_rejects_bad_seeds_and_keys(seed, keys, message):
    with pytest.raises(DataError, match=message):
        seeded_rng(seed, *keys)


def test_rain_presets_are_calibrated_to_the_benchmarks_inputs():
    """Mean input PSNR / SSIM (Y) on a fixed photo set within 1.5 dB / 0.08 of Rain100L's for light and of
    Rain100H's for heavy, medium between (benchmarks/rain_levels.py prints the figures on McMaster18)."""
    from mprnet.demo import sample_photos
    from mprnet.metrics import evaluate_pair

    photos = list(sample_photos(256).values())
    means = {}
    for level in ("light", "medium", "heavy"):
        rain = make_degradation("derain", level)
        scores = [
            evaluate_pair(rain(clean, np.random.default_rng([7, index, draw]))[0], clean, "rain100l")
            for index, clean in enumerate(photos)
            for draw in range(2)
        ]
        means[level] = (np.mean([s["psnr"] for s in scores]), np.mean([s["ssim"] for s in scores]))
    for level, (psnr, ssim) in (("light", (26.9, 0.84)), ("heavy", (13.6, 0.37))):
        assert abs(means[level][0] - psnr) < 1.5 and abs(means[level][1] - ssim) < 0.08, (level, means[level])
    assert means["heavy"][0] + 3 < means["medium"][0] < means["light"][0] - 3
