import itertools

import numpy as np
import pytest
import torch
from torch import nn

from mprnet.errors import ImageError, MprnetError
from mprnet.infer import (
    Engine,
    _cache_bytes,
    blend_ramp,
    cache_tile,
    cpu_name,
    last_level_cache,
    pad_to_multiple,
    pick_precision,
    tile_starts,
    widest_layer,
)
from mprnet.models.registry import Architecture, build, register

LOCAL = register(
    Architecture(
        name="test-local-conv",
        build=lambda: nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"),
        detect=lambda state_dict: None,
        restore=lambda model, image: model(image),
        size_multiple=8,
    )
)


def _local_model():
    torch.manual_seed(0)
    model = build(LOCAL, {})
    with torch.no_grad():
        model.weight.mul_(0.2)
    return model


@pytest.mark.parametrize("height,width", [(8, 8), (9, 17), (31, 40), (57, 13)])
def test_padding_restores_any_size_and_crops_back(tiny_model, height, width):
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    restored = Engine(tiny_model, device="cpu", tile=0)(image)
    assert restored.shape == image.shape and restored.dtype == np.float32
    padded = pad_to_multiple(torch.from_numpy(image).permute(2, 0, 1)[None], 8)
    with torch.no_grad():
        expected = tiny_model(padded)[0][0, :, :height, :width].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(restored - expected).max() <= 1e-5


def test_outputs_beyond_the_range_are_clamped_to_it():
    model = _local_model()
    with torch.no_grad():
        model.bias.copy_(torch.tensor([-2.0, 0.0, 2.0]))  # the first channel far below 0, the last far above 1
    image = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    restored = Engine(model, device="cpu", tile=0)(image)
    assert (restored[..., 0] == 0).all() and (restored[..., 2] == 1).all()
    with torch.no_grad():
        raw = model(torch.from_numpy(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.allclose(restored[..., 1], raw[..., 1].clip(0, 1), atol=1e-5)


def test_reflect_padding_mirrors_the_border():
    image = torch.arange(10.0).reshape(1, 1, 1, 10).expand(1, 1, 9, 10)
    padded = pad_to_multiple(image, 8)
    assert padded.shape[-2:] == (16, 16)
    assert torch.equal(padded[0, 0, 0, 10:], torch.tensor([8.0, 7, 6, 5, 4, 3]))


def test_tile_starts_cover_the_image_with_the_overlap():
    starts = tile_starts(1000, 256, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 32 for a, b in itertools.pairwise(starts))
    assert tile_starts(100, 256, 32) == [0]


def test_blend_ramp_tapers_only_inner_edges():
    ramp = blend_ramp(64, 16, taper_start=True, taper_end=False)
    assert ramp[:4].eq(0).all() and ramp[-1] == 1 and torch.all(ramp[12:] == 1)
    assert torch.all(ramp[1:] >= ramp[:-1])


def test_tiled_equals_whole_for_a_local_network():
    image = np.random.default_rng(1).random((150, 203, 3), dtype=np.float32)
    model = _local_model()
    whole = Engine(model, device="cpu", tile=0)(image)
    tiled = Engine(model, device="cpu", tile=64, overlap=16)(image)
    assert np.abs(whole - tiled).max() < 1e-5


def test_tiled_mprnet_agrees_with_whole_and_shows_no_seam(tiny_model):
    # A near-identity MPRNet (small residual): tiles see less context, but outputs must stay close and seamless.
    # (Its stages cut their input in halves and quarters, so a tile differs from the whole most where its own cut is.)
    with torch.no_grad():
        for parameter in tiny_model.parameters():
            parameter.mul_(0.2)
    rng = np.random.default_rng(2)
    image = np.clip(np.linspace(0, 1, 160)[None, :, None] + 0.05 * rng.standard_normal((128, 160, 3)), 0, 1).astype(
        np.float32
    )
    whole = Engine(tiny_model, device="cpu", tile=0)(image)
    engine = Engine(tiny_model, device="cpu", tile=64, overlap=24)
    calls = []
    tiled = engine(image, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (engine.count_tiles(128, 160),) * 2 and len(calls) == engine.count_tiles(128, 160) > 1
    psnr = -10 * np.log10(np.mean((whole - tiled) ** 2))
    assert psnr > 40
    # No seam: the jump across a tile boundary is no larger than elsewhere in the image.
    column_jumps = np.abs(np.diff(tiled - whole, axis=1)).mean(axis=(0, 2))
    assert column_jumps.max() < 5 * np.median(column_jumps) + 1e-3


def test_fp32_precision_is_exact_and_bf16_close(tiny_model):
    image = np.random.default_rng(3).random((32, 40, 3), dtype=np.float32)
    exact = Engine(tiny_model, device="cpu", precision="fp32", tile=0)(image)
    bf16 = Engine(tiny_model, device="cpu", precision="bf16", tile=0)(image)
    psnr = -10 * np.log10(np.mean((exact - bf16) ** 2))
    assert psnr > 30


def test_precision_choice():
    assert pick_precision("fp32", torch.device("cpu")) == "fp32"
    assert pick_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    with pytest.raises(MprnetError, match="fp16 is not supported on the CPU"):
        pick_precision("fp16", torch.device("cpu"))
    with pytest.raises(MprnetError, match="unknown precision"):
        pick_precision("int8", torch.device("cpu"))


def test_auto_tile_is_a_multiple_of_the_network_size(tiny_model):
    engine = Engine(tiny_model, device="cpu")
    assert engine.tile % 8 == 0 and 64 <= engine.tile <= 1024


def test_cpu_tiles_are_sized_to_the_last_level_cache(tiny_model, tmp_path):
    widest = widest_layer(tiny_model)
    assert cache_tile(tiny_model, 4 * widest * 400**2) == 400 and cache_tile(tiny_model, 1 << 10) == 256
    assert Engine(tiny_model, device="cpu").tile <= cache_tile(tiny_model)
    sizes = {"32768K": 32 << 20, "2M": 2 << 20, "512": 512, "lots": 0, "": 0}
    for index, (text, expected) in enumerate(sizes.items()):
        (tmp_path / f"size{index}").write_text(text + "\n")
        assert _cache_bytes(tmp_path / f"size{index}") == expected
    assert _cache_bytes(tmp_path / "missing") == 0 and last_level_cache() >= 1 << 10


@pytest.mark.parametrize("shape,message", [((5, 40, 3), "at least 8 px"), ((16, 16, 4), "H x W x 3")])
def test_bad_images_are_refused(tiny_model, shape, message):
    with pytest.raises(ImageError, match=message):
        Engine(tiny_model, device="cpu")(np.zeros(shape, np.float32))


def test_too_small_tile_is_refused(tiny_model):
    with pytest.raises(MprnetError, match="too small"):
        Engine(tiny_model, device="cpu", tile=16, overlap=32)
    with pytest.raises(MprnetError, match="negative"):  # tiles would leave gaps between them
        Engine(tiny_model, device="cpu", tile=64, overlap=-3)


def test_missing_cuda_is_a_clear_error(tiny_model):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(MprnetError, match="no CUDA GPU"):
        Engine(tiny_model, device="cuda")


def _layout_and_mode(model):
    weights = [p for p in model.parameters() if p.ndim == 4]
    return (
        model.training,
        {p.device.type for p in model.parameters()},
        all(p.is_contiguous() for p in weights),
        any(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in weights),
    )


def test_the_engine_leaves_the_callers_module_as_it_found_it(tiny_model):
    tiny_model.train()
    before = _layout_and_mode(tiny_model)
    state = {key: value.clone() for key, value in tiny_model.state_dict().items()}
    image = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    Engine(tiny_model, device="cpu", tile=0, channels_last=True)(image)
    import mprnet

    mprnet.restore(image, model=tiny_model, device="cpu")
    assert _layout_and_mode(tiny_model) == before and before[0] is True and before[2] is True
    assert all(torch.equal(state[key], value) for key, value in tiny_model.state_dict().items())


def test_restore_with_a_module_sees_the_modules_latest_weights(tiny_model):
    import mprnet

    image = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    first = mprnet.restore(image, model=tiny_model, device="cpu")
    with torch.no_grad():
        tiny_model.tail.weight.mul_(0.5)
    assert not np.array_equal(mprnet.restore(image, model=tiny_model, device="cpu"), first)


@pytest.mark.parametrize(("flags", "amx"), [("avx512f avx512_bf16 amx_bf16 amx_tile", True), ("avx2 fma", False)])
def test_the_cpu_name_says_whether_the_processor_has_amx(monkeypatch, flags, amx):
    monkeypatch.setattr("mprnet.infer._cpuinfo", lambda: f"model name\t: Test CPU 9000\nflags\t\t: {flags}\n")
    name = cpu_name()
    assert name.startswith("Test CPU 9000 (") and name.endswith(", AMX)") == amx


def test_restoring_photos_computes_in_auto_precision_unless_told_and_stays_within_50_db_of_fp32():
    """`auto` (bf16 where native, else fp32) is the default wherever photos are restored; evaluation keeps fp32."""
    import inspect

    import mprnet
    from mprnet.batch import BatchJob
    from mprnet.cli import build_parser
    from mprnet.demo import sample_photos
    from mprnet.infer import DEFAULT_PRECISION
    from mprnet.metrics import psnr
    from mprnet.serve.settings import Settings

    assert DEFAULT_PRECISION == "auto"
    assert inspect.signature(mprnet.restore).parameters["precision"].default == "auto"
    assert BatchJob.__dataclass_fields__["precision"].default == "auto" and Settings().precision == "auto"
    assert build_parser().parse_args(["restore", "x.png"]).precision == "auto"
    assert build_parser().parse_args(["eval", "data", "--task", "denoise"]).precision == "fp32"
    photo = sample_photos(64)["coffee"]
    for task in ("denoise", "deblur", "derain"):
        reference = mprnet.restore(photo, task=task, precision="fp32", device="cpu")
        assert psnr(mprnet.restore(photo, task=task, device="cpu"), reference) >= 50
