"""The backends (`mprnet.backends`): onnxruntime and OpenVINO restore as torch does within their tolerance, tiles
keep their blending on every backend, `auto` takes the measured choice, int8 runs only where the rule allows it,
and a backend that is not installed is a one-line error naming the extra."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet import backends
from mprnet.backends import BackendError
from mprnet.cli import main
from mprnet.models.registry import ARCHITECTURES

#: The largest difference from torch fp32 each backend may show on the toy network (values in [0, 1]): fp32 paths
#: differ by rounding (measured 3e-7), bf16 by its 8-bit mantissa (measured 7e-3 on a tiny MPRNet), int8 by its
#: quantisation steps.
TOLERANCE = {"fp32": 1e-5, "bf16": 2e-2, "int8": 5e-2}

needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
needs_nncf = pytest.mark.skipif(importlib.util.find_spec("nncf") is None, reason="nncf not installed")
needs_onnxruntime = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed"
)


@pytest.fixture(scope="module")
def toy_model():
    """A two-layer residual network (5 px receptive field: tiles that share 16 px blend into the whole image's
    output exactly), with the weights' task."""
    sys.path.insert(0, str(Path(__file__).parent))
    import toy_network

    registered = "toy" in ARCHITECTURES  # test_new_network may have registered it already, or removed it
    ARCHITECTURES["toy"] = toy_network.TOY
    torch.manual_seed(0)
    model = mprnet.create_model("toy").eval()
    model.metadata = {"task": "denoise"}
    yield model
    if not registered:
        ARCHITECTURES.pop("toy")


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MPRNET_CACHE", str(tmp_path_factory.getbasetemp() / "backend-cache"))


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).random((70, 90, 3), dtype=np.float32)


def restore(image, model, precision="fp32", **settings):
    """Compared with torch at fp32 unless a precision is named (the library's default is `auto`)."""
    return mprnet.restore(image, model=model, device="cpu", precision=precision, **settings)


@needs_openvino
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_restores_as_torch_does(toy_model, image, precision):
    expected = restore(image, toy_model, tile=0)
    found = restore(image, toy_model, tile=0, backend="openvino", precision=precision)
    assert found.shape == expected.shape
    difference = np.abs(found - expected).max()
    assert difference <= TOLERANCE[precision]
    assert (difference > TOLERANCE["fp32"]) == (precision == "bf16")  # bf16 is really in use, f32 really is not


@needs_openvino
@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_tiles_keep_their_blending(toy_model, image, backend):
    whole = restore(image, toy_model, tile=0, backend=backend)
    tiled = restore(image, toy_model, tile=32, overlap=16, backend=backend)
    assert np.abs(tiled - whole).max() <= TOLERANCE["fp32"]
    seams = restore(image, toy_model, tile=32, overlap=0, backend=backend)
    assert np.abs(seams - whole).max() > 100 * TOLERANCE["fp32"]  # without overlap the tile borders show


@needs_onnxruntime
def test_onnxruntime_restores_as_torch_does(toy_model, image):
    expected = restore(image, toy_model, tile=32, overlap=16)
    found = restore(image, toy_model, tile=32, overlap=16, backend="onnxruntime")
    assert np.abs(found - expected).max() <= TOLERANCE["fp32"]
    with pytest.raises(BackendError, match="onnxruntime runs fp32 on the CPU, not bf16"):
        restore(image, toy_model, backend="onnxruntime", precision="bf16")


@needs_openvino
def test_a_converted_model_is_kept_per_weights(toy_model, image):
    restore(image, toy_model, tile=0, backend="openvino")
    kept = backends.cache_folder() / f"{backends.weights_key(toy_model)}-f32.xml"
    assert kept.exists() and kept.with_suffix(".bin").exists()
    changed = mprnet.create_model("toy").eval()
    assert backends.weights_key(changed) != backends.weights_key(toy_model)


@pytest.fixture
def calibration_photos(tmp_path, monkeypatch) -> Path:
    rng = np.random.default_rng(1)
    for index in range(backends.CALIBRATION_CROPS):
        photo = (rng.random((160, 200, 3)) * 255).astype(np.uint8)
        Image.fromarray(photo).save(tmp_path / f"{index:02}.png")
    monkeypatch.setenv("MPRNET_CALIBRATION_IMAGES", str(tmp_path))
    return tmp_path


def test_calibration_crops_are_degraded_seeded_training_crops(calibration_photos):
    crops = backends.calibration_crops("denoise")
    side = backends.CALIBRATION_SIDE
    assert len(crops) == backends.CALIBRATION_CROPS and crops[0].shape == (1, 3, side, side)
    again = backends.calibration_crops("denoise")
    assert all(np.array_equal(a, b) for a, b in zip(crops, again))
    assert not np.array_equal(crops[0], backends.calibration_crops("denoise", seed=1)[0])


@needs_openvino
@needs_nncf
def test_int8_restores_close_to_torch_where_the_rule_allows(toy_model, image, calibration_photos, monkeypatch):
    monkeypatch.setitem(backends.INT8_LOSS_DB, "denoise", 0.0)
    expected = restore(image, toy_model, tile=0)
    found = restore(image, toy_model, tile=0, backend="openvino-int8")
    assert 0 < np.abs(found - expected).max() <= TOLERANCE["int8"]


@pytest.mark.parametrize("task", sorted(set(backends.INT8_LOSS_DB) | {"deblur", "derain", "denoise"}))
def test_int8_is_refused_where_the_rule_says(task):
    loss = backends.INT8_LOSS_DB.get(task)
    if loss is not None and loss <= backends.INT8_MAX_LOSS_DB:
        backends.check_int8_allowed(task)
    else:
        with pytest.raises(BackendError, match=f"int8 is not allowed for {task}: .*use backend openvino"):
            backends.check_int8_allowed(task)


@needs_openvino
@needs_nncf
def test_int8_is_refused_for_weights_without_a_measured_task(toy_model, image, monkeypatch):
    monkeypatch.setitem(backends.INT8_LOSS_DB, "denoise", 0.5)
    with pytest.raises(BackendError, match=r"not allowed for denoise: it lost 0.50 dB .*at most 0.1 dB"):
        restore(image, toy_model, backend="openvino-int8")
    with pytest.raises(BackendError, match="weights without a task"):
        backends.check_int8_allowed(None)


def test_auto_takes_the_measured_backend_where_installed(monkeypatch):
    monkeypatch.setattr(backends, "cpu_kind", lambda: "avx512bf16")
    fastest, _ = backends.MEASURED_FASTEST["avx512bf16"]["fp32"]
    choice = backends.choose("auto", "fp32", "cpu")
    assert choice.backend == (fastest if backends.BACKENDS[fastest].installed() else "torch")
    assert "measured" in choice.reason
    monkeypatch.setattr(backends, "cpu_kind", lambda: "unmeasured")
    assert backends.choose("auto", "fp32", "cpu").backend == "torch"


def test_auto_falls_back_to_torch_naming_the_extra(monkeypatch):
    monkeypatch.setattr(backends, "cpu_kind", lambda: "avx512bf16")
    _hide_module(monkeypatch, "openvino")
    choice = backends.choose("auto", "fp32", "cpu")
    assert choice.backend == "torch" and "pip install 'mprnet[openvino]'" in choice.reason


def _hide_module(monkeypatch, name: str) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda module, *a: None if module == name else find_spec(module))


@pytest.mark.parametrize(("backend", "extra"), [("openvino", "openvino"), ("onnxruntime", "export")])
def test_a_backend_not_installed_is_a_one_line_error(tmp_path, monkeypatch, capsys, backend, extra):
    _hide_module(monkeypatch, backend)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "photo.png")
    code = main(
        ["restore", str(tmp_path / "photo.png"), "--task", "denoise", "--backend", backend, "-o", str(tmp_path / "out")]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert error == f"mprnet restore: error: backend {backend} needs {backend}: pip install 'mprnet[{extra}]'"
    assert not (tmp_path / "out").exists()


@needs_openvino
def test_restore_cli_prints_the_backend_and_restores(tmp_path, monkeypatch, capsys, toy_model):
    weights = mprnet.save_weights(toy_model, tmp_path / "toy.safetensors", task="denoise")
    photo = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    args = ["restore", "photo.png", "--weights", str(weights), "--backend", "openvino", "--precision", "fp32"]
    assert main([*args, "-o", "out"]) == 0
    printed = capsys.readouterr().out
    assert "mprnet restore: backend openvino (fp32): asked for" in printed
    expected = mprnet.restore(photo, model=str(weights), device="cpu", precision="fp32")
    assert np.abs(np.asarray(Image.open("out/photo.png")).astype(int) - expected.astype(int)).max() <= 1


def test_restore_cli_prints_what_auto_chose(tmp_path, monkeypatch, capsys, toy_model):
    weights = mprnet.save_weights(toy_model, tmp_path / "toy.safetensors", task="denoise")
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    args = ["restore", "photo.png", "--weights", str(weights), "--backend", "auto", "--precision", "auto"]
    assert main([*args, "-o", "out"]) == 0
    expected = backends.choose("auto", "auto", "auto")
    assert f"mprnet restore: backend {expected.backend} ({expected.precision}): auto: " in capsys.readouterr().out
    assert (tmp_path / "out" / "photo.png").exists()
