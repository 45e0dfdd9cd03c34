"""`mprnet export`: every architecture to ONNX (checked with onnxruntime) and TorchScript, the export guide's
onnxruntime example, and bad arguments."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet.cli import main
from mprnet.export import TOLERANCE, ExportError, export_model

EXPORT_GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "export.md"
TINY = {
    "mprnet": dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1),
    "nafnet": dict(width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]),
    "mimo-unet": dict(num_res=1, base_channel=8),
    "srn": dict(width=8, num_res=1),
    "did-mdn": dict(classifier_size=64, classifier_hidden=16),
}


def tiny(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return mprnet.create_model(name, **TINY[name]).eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return mprnet.save_weights(tiny("mprnet"), tmp_path_factory.mktemp("w") / "tiny.safetensors", task="denoise")


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in TINY if name != "mprnet"])  # MPRNet: the export guide example's test
def test_every_architecture_exports_to_onnx(tmp_path, name):
    report = export_model(tiny(name), tmp_path / "model.onnx", "onnx", height=64, width=64)
    assert report.max_difference <= TOLERANCE
    assert report.shapes == [(1, 3, 64, 64)]


@pytest.mark.parametrize("name", TINY)
def test_every_architecture_exports_to_torchscript(tmp_path, name):
    path = tmp_path / "model.pt"
    export_model(tiny(name), path, "torchscript", height=64, width=64)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = mprnet.models.registry.restoring_forward(tiny(name), image).clamp(0, 1)
        assert torch.allclose(torch.jit.load(str(path))(image), expected, atol=TOLERANCE)


@pytest.mark.slow
def test_the_readme_onnxruntime_example_restores_as_mprnet_does(tmp_path, weights, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(weights), "--format", "onnx", "-o", "denoise.onnx"]) == 0
    printed = capsys.readouterr().out
    assert "max abs difference from PyTorch" in printed
    assert "1x3x64x64 and 1x3x96x64" in printed  # any size: checked on two
    noisy = np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8)  # not multiples of 8
    Image.fromarray(noisy).save("noisy.png")
    example = re.search(r"```python\n(import onnxruntime.*?)```", EXPORT_GUIDE.read_text(), re.S)
    assert example and len(example.group(1).splitlines()) <= 10
    exec(example.group(1), {})
    expected = mprnet.restore(noisy, model=str(weights), device="cpu", precision="fp32", tile=0)  # as ONNX computes
    found = np.asarray(Image.open("restored.png"))
    assert found.shape == noisy.shape
    assert np.abs(found.astype(int) - expected.astype(int)).max() <= 1  # rounding of float differences


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "onnx", "--height", "30", "--width", "32"], "--height must be a positive multiple of 8"),
        (["--format", "torchscript", "--height", "32"], "give both --height and --width"),
        (["--format", "onnx", "--dynamic", "--width", "32"], "--dynamic takes any size"),
        (["--format", "onnx", "-o", "missing/model.onnx"], "does not exist"),
    ],
)
def test_bad_arguments_get_one_clear_line(tmp_path, weights, monkeypatch, capsys, arguments, message):
    monkeypatch.chdir(tmp_path)
    if "-o" not in arguments:
        arguments = [*arguments, "-o", "model.onnx"]
    assert main(["export", str(weights), *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error
    assert not Path("model.onnx").exists()


def test_a_missing_weights_file_and_the_weights_file_as_output(tmp_path, weights, capsys):
    assert main(["export", str(tmp_path / "none.pth"), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) != 0
    before = Path(weights).read_bytes()
    assert main(["export", str(weights), "--format", "torchscript", "-o", str(weights)]) == 2
    assert "is the weights file itself" in capsys.readouterr().err
    assert Path(weights).read_bytes() == before  # the refused export left the weights as they were


def test_an_export_that_differs_from_pytorch_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr("mprnet.export._difference", lambda *args: 0.5)
    with pytest.raises(ExportError, match=r"differs from PyTorch by 0\.5"):
        export_model(tiny("srn"), tmp_path / "m.pt", "torchscript", height=64, width=64)
    assert list(tmp_path.iterdir()) == []
