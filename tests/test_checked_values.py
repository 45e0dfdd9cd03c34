"""Checked values and clear messages (issue 35): every numeric option refused with one line and exit status 2
before any work, the API refusing what the CLI refuses, weights files read as what they are, usage errors
reported once, and what torchrun and exported models promise."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet.checkpoint import load_model
from mprnet.cli import main
from mprnet.errors import CheckpointError, ImageError, MprnetError
from mprnet.export import export_model
from mprnet.infer import Engine

RNG = np.random.default_rng(35)


def tiny_network() -> torch.nn.Module:
    torch.manual_seed(0)
    return mprnet.create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return mprnet.save_weights(tiny_network(), tmp_path_factory.mktemp("w") / "tiny.safetensors", task="denoise")


def colour_photo(path: Path, size=(24, 16)) -> Path:
    Image.fromarray(RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def gray_16_bit_photo(path: Path, size=(24, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 65536, (size[1], size[0]), dtype=np.uint16)).save(path)
    return path


def one_line_refusal(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "options, message",
    [
        (["--max-megapixels", "nan"], "--max-megapixels must be positive and finite, found nan"),
        (["--max-megapixels", "inf"], "--max-megapixels must be positive and finite, found inf"),
        (["--max-megapixels", "0"], "--max-megapixels must be positive"),
        (["--max-megapixels", "-3"], "--max-megapixels must be positive"),
        (["--threads", "100000"], f"at most {os.cpu_count()} (the CPUs of this machine), found 100000"),
        (["--threads", "two"], "--threads must be a whole number, found 'two'"),
        (["--sigma", "nan"], "--sigma must be positive and at most 255 and finite"),
        (["--overlap", "-1"], "--overlap must be 0 or more"),
    ],
)
def test_restore_refuses_bad_numbers_with_one_line_before_any_work(tmp_path, weights, capsys, options, message):
    source = colour_photo(tmp_path / "a.png")
    code = main(["restore", str(source), "--weights", str(weights), "-o", str(tmp_path / "out"), *options])
    assert code == 2 and message in one_line_refusal(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--max-upload-mb", "inf"], "--max-upload-mb must be positive and finite, found inf"),
        (["--job-timeout", "nan"], "--job-timeout must be positive and finite, found nan"),
        (["--workers", "0"], "--workers must be 1 or more"),
        (["--queue", "-1"], "--queue must be 0 or more"),
    ],
)
def test_serve_refuses_bad_numbers_with_one_line_before_it_listens(capsys, options, message):
    assert main(["serve", "--port", "0", *options]) == 2
    assert message in one_line_refusal(capsys)


def test_info_refuses_a_size_below_one(weights, capsys):
    assert main(["info", str(weights), "--size", "0"]) == 2
    assert "--size must be 1 or more, found 0" in one_line_refusal(capsys)


def test_the_api_refuses_a_noise_level_for_a_network_as_the_cli_does(weights):
    image = RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    with pytest.raises(MprnetError, match="sigma is for the classic non-blind methods"):
        mprnet.restore(image, model=str(weights), device="cpu", sigma=10)
    assert mprnet.restore(image, method="dct", sigma=10).shape == image.shape


def test_a_tensor_of_the_wrong_layout_is_reported_with_the_shape_passed(weights):
    with pytest.raises(ImageError, match=r"found shape \(16, 24, 3\)"):
        mprnet.restore(torch.rand(16, 24, 3), model=str(weights), device="cpu")


def test_a_renamed_safetensors_file_loads_as_what_it_is(tmp_path, weights):
    renamed = shutil.copy(weights, tmp_path / "tiny.pth")
    assert load_model(renamed).metadata["task"] == "denoise"


def test_a_text_file_and_a_folder_given_as_weights_are_named_for_what_they_are(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("epoch 12: loss 0.03\n")
    with pytest.raises(
        CheckpointError, match=r"not a readable PyTorch checkpoint or \.safetensors file: it holds text"
    ):
        load_model(text)
    with pytest.raises(CheckpointError, match="a folder, not a weights file"):
        load_model(tmp_path)


def test_usage_errors_are_reported_once_before_any_work(tmp_path, capsys):
    sources = [str(colour_photo(tmp_path / name)) for name in ("a.png", "b.png")]
    assert main(["restore", *sources, "--method", "bm3d", "-o", str(tmp_path / "out")]) == 2
    assert "--method bm3d needs --sigma" in one_line_refusal(capsys)
    assert not (tmp_path / "out").exists()
    (tmp_path / "taken.png").write_bytes(b"")
    assert main(["restore", *sources, "--method", "dct", "--sigma", "10", "-o", str(tmp_path / "taken.png")]) == 2
    assert "-o " in one_line_refusal(capsys)


@pytest.mark.slow
def test_an_export_says_it_takes_one_image_at_a_time(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "tiny.onnx"
    export_model(tiny_network().eval(), path, "onnx", height=64, width=64)
    metadata = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    assert metadata["input"].startswith("1 x 3 x H x W")


def test_engine_outputs_are_the_same_with_any_thread_count_above_one():
    """What torchrun's promise rests on (`Distributed.cpu_threads`): 16-bit outputs depend on the thread count
    only between one thread and several."""
    engine = Engine(tiny_network(), device="cpu", tile=0)
    image = RNG.random((24, 32, 3), dtype=np.float32)
    threads = torch.get_num_threads()
    try:
        outputs = []
        for count in (2, 3):
            torch.set_num_threads(count)
            outputs.append(np.rint(engine(image) * 65535))
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(*outputs)


@pytest.mark.slow
def test_torchrun_restores_16_bit_photos_bit_for_bit_as_one_process_with_the_same_threads(tmp_path, weights):
    sources = [gray_16_bit_photo(tmp_path / "in" / f"p{index}.png") for index in range(2)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(mprnet.__file__).parents[1])}
    restore = ["-m", "mprnet", "restore", str(tmp_path / "in"), "--weights", str(weights), "--device", "cpu"]
    one = [sys.executable, *restore, "-o", str(tmp_path / "one"), "--threads", "1"]
    many = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    many += [*restore, "-o", str(tmp_path / "many"), "--threads", "1"]
    for command in (one, many):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    for source in sources:
        alone, together = (np.asarray(Image.open(tmp_path / folder / source.name)) for folder in ("one", "many"))
        assert alone.dtype == np.uint16 and np.array_equal(alone, together)
