"""mprnet.restore: numpy, Pillow and torch in, the same type out; gray through RGB, alpha untouched, engines cached."""

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet.api import restore_pixels
from mprnet.errors import CheckpointError, ImageError, MprnetError
from mprnet.restorers import get_restorer

RNG = np.random.default_rng(1)
H, W = 16, 24


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    network = mprnet.create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
    return str(mprnet.save_weights(network, tmp_path_factory.mktemp("w") / "tiny.safetensors", task="denoise"))


def run(image, weights, **options):
    return mprnet.restore(image, model=weights, device="cpu", tile=0, **options)


def reference(rgb_float, weights):
    """The engine's own output on an RGB float image: what every wrapper must agree with."""
    return get_restorer(model=weights, device="cpu", tile=0)(rgb_float)


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1), (np.float64, 1)])
def test_numpy_rgb_keeps_dtype_and_matches_the_engine(weights, dtype, top):
    image = (RNG.random((H, W, 3)) * top).astype(dtype)
    restored = run(image, weights)
    assert restored.dtype == dtype and restored.shape == image.shape
    expected = reference(image.astype(np.float32) / top, weights)
    tolerance = 1 if top > 1 else 1e-6
    assert np.abs(restored.astype(np.float64) - expected * top).max() <= tolerance


def test_gray_is_restored_through_rgb_and_returned_gray(weights):
    gray = RNG.random((H, W)).astype(np.float32)
    restored = run(gray, weights)
    assert restored.shape == (H, W)
    expected = reference(np.repeat(gray[..., None], 3, axis=2), weights).mean(axis=2)
    assert np.allclose(restored, expected, atol=1e-6)
    assert run(gray[..., None], weights).shape == (H, W, 1)


@pytest.mark.parametrize("channels", [2, 4])
def test_alpha_is_untouched(weights, channels):
    image = RNG.integers(0, 256, (H, W, channels), dtype=np.uint8)
    restored = run(image, weights)
    assert np.array_equal(restored[..., -1], image[..., -1])
    assert not np.array_equal(restored[..., :-1], image[..., :-1])


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "I;16"])
def test_pil_images_come_back_in_their_mode(weights, mode):
    channels = {"RGB": 3, "L": 1, "RGBA": 4, "LA": 2, "I;16": 1}[mode]
    if mode == "I;16":
        image = Image.fromarray(RNG.integers(0, 65536, (H, W), dtype=np.uint16))
    else:
        values = RNG.integers(0, 256, (H, W, channels), dtype=np.uint8)
        image = Image.fromarray(values[..., 0] if channels == 1 else values, mode=mode)
    restored = run(image, weights)
    assert isinstance(restored, Image.Image) and restored.mode == image.mode and restored.size == image.size


def test_pil_palette_comes_back_rgb_and_keeps_icc(weights):
    image = Image.fromarray(RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)).quantize(16)
    image.info["icc_profile"] = b"profile"
    restored = run(image, weights)
    assert restored.mode == "RGB" and restored.info["icc_profile"] == b"profile"


def test_pil_result_matches_numpy_result(weights):
    values = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(run(Image.fromarray(values), weights)), run(values, weights))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.uint8])
def test_tensors_keep_dtype_and_layout(weights, dtype):
    image = torch.rand(3, H, W) if dtype != torch.uint8 else torch.randint(0, 256, (3, H, W), dtype=torch.uint8)
    image = image.to(dtype)
    restored = run(image, weights)
    assert restored.dtype == dtype and restored.shape == image.shape
    numpy_result = run(
        image.permute(1, 2, 0).float().numpy() if dtype != torch.uint8 else image.permute(1, 2, 0).numpy(), weights
    )
    assert torch.allclose(
        restored.float(),
        torch.from_numpy(np.asarray(numpy_result, np.float32)).permute(2, 0, 1),
        atol=1 if dtype == torch.uint8 else 2e-3,
    )


def test_batched_tensor_restores_each_image(weights):
    batch = torch.rand(2, 3, H, W)
    restored = run(batch, weights)
    assert restored.shape == batch.shape
    assert torch.allclose(restored[1], run(batch[1], weights), atol=1e-6)


def test_engines_are_cached(weights):
    first = get_restorer(model=weights, device="cpu", tile=0)
    assert get_restorer(model=weights, device="cpu", tile=0) is first
    assert get_restorer(model=weights, device="cpu", tile=64, overlap=8) is not first


def test_a_network_object_works_as_model(weights):
    network = mprnet.load_model(weights)
    image = RNG.random((H, W, 3)).astype(np.float32)
    assert np.allclose(mprnet.restore(image, model=network, device="cpu", tile=0), run(image, weights), atol=1e-6)


def test_restore_pixels_hands_known_values_to_the_restorer():
    seen = {}

    def restorer(image, **known):
        seen.update(known, shape=image.shape)
        return image * 0.5

    out = restore_pixels(np.ones((8, 8, 2), np.float32), restorer, sigma=25)
    assert seen == {"sigma": 25, "shape": (8, 8, 3)}
    assert np.allclose(out[..., 0], 0.5) and np.allclose(out[..., 1], 1)


@pytest.mark.parametrize(
    "image,message",
    [
        ([[0.5]], "expected a numpy array"),
        (np.zeros((H, W, 5), np.float32), "C in 1..4"),
        (np.zeros((2, H, W, 3), np.float32), "C in 1..4"),
        (np.full((H, W, 3), 200.0), "values in \\[0, 1\\]"),
        (np.full((H, W, 3), np.nan, np.float32), "NaN"),
        (np.zeros((H, W, 3), np.int32), "uint8, uint16 or float"),
        (torch.zeros(H, W), "C x H x W"),
        (np.zeros((5, 5, 3), np.float32), "at least 8"),
    ],
)
def test_bad_images_raise_image_error(weights, image, message):
    with pytest.raises(ImageError, match=message):
        run(image, weights)


def test_missing_model_choice_is_explained():
    with pytest.raises(MprnetError, match="task"):
        mprnet.restore(np.zeros((H, W, 3), np.float32))
    with pytest.raises(MprnetError, match="unknown task"):
        mprnet.restore(np.zeros((H, W, 3), np.float32), task="sharpen")


def test_task_without_bundled_model_asks_for_weights():
    if "denoise" in mprnet.bundled_models():
        pytest.skip("a bundled denoise model is installed")
    with pytest.raises(CheckpointError, match="--weights"):
        mprnet.restore(np.zeros((H, W, 3), np.float32), task="denoise")


def test_the_factory_gives_restorers_that_describe_themselves(weights):
    from mprnet.restorers import Restorer

    network, classic = get_restorer(model=weights, device="cpu", tile=0), get_restorer(method="dct")
    assert isinstance(network, Restorer) and isinstance(classic, Restorer)
    described = [(r.name, r.title, r.task, r.kind, r.needs) for r in (network, classic)]
    assert described == [
        ("mprnet", "MPRNet", "denoise", "network", ()),
        ("dct", "DCT", "denoise", "classic", ("sigma",)),
    ]
    assert get_restorer(model=weights, method="mprnet", device="cpu", tile=0) is network  # the architecture, checked
    with pytest.raises(CheckpointError, match=r"method nafnet was asked for, but .* is a MPRNet network"):
        get_restorer(model=weights, method="nafnet", device="cpu", tile=0)
    with pytest.raises(MprnetError, match="unknown method 'magic'; choose one of mprnet, nafnet"):
        mprnet.restore(np.zeros((16, 16, 3), np.float32), model=weights, method="magic")
