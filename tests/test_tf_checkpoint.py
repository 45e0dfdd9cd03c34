"""SRN's TensorFlow checkpoints read without TensorFlow: the fixture (scripts/make_tf_fixture.py, written by
TensorFlow itself) converts to the package's SRN, whose output matches TensorFlow's; damaged files fail clearly."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mprnet.checkpoint import load_model, read_metadata
from mprnet.cli import main
from mprnet.errors import TensorBundleError
from mprnet.files import OverwriteError
from mprnet.study.experiments import find_networks
from mprnet.tf_checkpoint import (
    _handle,
    convert_srn_checkpoint,
    crc32c,
    masked_crc32c,
    read_srn_checkpoint,
    read_tf_checkpoint,
)

FIXTURES = Path(__file__).parent / "fixtures" / "srn_tf"
NAME = "SRN-DeblurNet.model-523000"
TOLERANCE = 1e-4


def prefix(model: str) -> Path:
    return FIXTURES / model / NAME


def tensorflow_scales(model: str) -> list[torch.Tensor]:
    return [torch.from_numpy(np.load(FIXTURES / model / f"output_{i}.npy")).permute(0, 3, 1, 2) for i in range(3)]


def fixture_input(model: str) -> torch.Tensor:
    return torch.from_numpy(np.load(FIXTURES / model / "input.npy")).permute(0, 3, 1, 2)


def copied(tmp_path: Path, model: str = "color") -> Path:
    for path in (FIXTURES / model).glob(f"{NAME}.*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / NAME


@pytest.mark.parametrize("model, hparams", [("color", (3, False)), ("lstm", (1, True))])
def test_converted_srn_gives_tensorflows_output_at_every_scale(model, hparams):
    network = load_model(f"{prefix(model)}.index")
    assert (network.hparams["channels"], network.hparams["lstm"], network.hparams["width"]) == (*hparams, 1)
    with torch.no_grad():
        scales = network(fixture_input(model))
    for ours, theirs in zip(scales, tensorflow_scales(model), strict=True):
        assert theirs.abs().max() > 0.05  # the fixture's output is not trivially small
        torch.testing.assert_close(ours, theirs, rtol=0, atol=TOLERANCE)


def test_the_reader_returns_every_variable_with_its_dtype_and_shape():
    variables = read_tf_checkpoint(prefix("lstm"))
    assert variables["global_step"].dtype == np.int32 and variables["global_step"] == 523000
    assert variables["g_net/convLSTM/LSTM_conv/weights"].shape == (3, 3, 8, 16)  # [input, hidden] -> 4 gates
    assert variables["g_net/dec1_4/weights"].shape == (4, 4, 1, 2)  # conv2d_transpose: H W out in
    state_dict, metadata = read_srn_checkpoint(f"{prefix('lstm')}.index")
    assert state_dict["lstm.conv.weight"].shape == (16, 8, 3, 3)
    assert state_dict["dec1_4.weight"].shape == (2, 1, 4, 4)  # torch's ConvTranspose2d: in out H W
    assert "global_step" not in state_dict and metadata["task"] == "deblur"


def test_crc32c_matches_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    data = bytes(range(256)) * 300  # long enough for the chunked path
    assert crc32c(data) == crc32c(data[:1000] + data[1000:])
    assert masked_crc32c(b"123456789") != crc32c(b"123456789")


def test_convert_writes_safetensors_naming_the_source_and_refuses_to_overwrite(tmp_path):
    destination = convert_srn_checkpoint(prefix("color"), tmp_path / "srn_color.safetensors")
    metadata = read_metadata(destination)
    assert metadata["architecture"] == "srn" and NAME in metadata["source"] and metadata["task"] == "deblur"
    with torch.no_grad():
        converted = load_model(destination)(fixture_input("color"))[-1]
    torch.testing.assert_close(converted, tensorflow_scales("color")[-1], rtol=0, atol=TOLERANCE)
    with pytest.raises(OverwriteError, match="exists"):
        convert_srn_checkpoint(prefix("color"), destination)
    convert_srn_checkpoint(prefix("color"), destination, overwrite=True)


def test_restore_reads_the_checkpoint_by_its_index_or_prefix(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    for given in (f"{prefix('color')}.index", str(prefix("color"))):
        out = tmp_path / Path(given).suffix.strip(".")
        assert main(["restore", str(tmp_path / "a.png"), "--weights", given, "-o", str(out)]) == 0
        assert Image.open(out / "a.png").size == (56, 40)


def test_the_study_finds_the_checkpoint_in_a_weights_folder(tmp_path):
    copied(tmp_path)
    found = find_networks(tmp_path)
    assert found[("SRN", "deblur")] == str(tmp_path / f"{NAME}.index")


def _damage_index(path: Path, damage) -> None:
    index = path.with_name(path.name + ".index")
    index.write_bytes(damage(index.read_bytes()))


def _snappy_index(table: bytes) -> bytes:
    """The index with its index block marked snappy-compressed, its checksum recomputed (as a snappy writer's)."""
    footer = table[-48:]
    _, position = _handle(footer, 0, "footer")
    block, _ = _handle(footer, position, "footer")
    end = block.offset + block.size
    damaged = bytearray(table)
    damaged[end] = 1
    damaged[end + 1 : end + 5] = struct.pack("<I", masked_crc32c(bytes(damaged[block.offset : end + 1])))
    return bytes(damaged)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda table: table[: len(table) - 20], "not a TensorFlow checkpoint index"),
        (lambda table: table[:30], "shorter than a table's 48-byte footer"),
        (lambda table: table[:-1] + b"\x00", "not the table magic number"),
        (lambda table: table[:100] + bytes([table[100] ^ 0xFF]) + table[101:], "checksum does not match"),
        (_snappy_index, "snappy-compressed"),
    ],
    ids=["cut", "cut-below-footer", "wrong-magic", "flipped-byte", "snappy"],
)
def test_a_damaged_index_is_a_one_line_error(tmp_path, damage, message):
    checkpoint = copied(tmp_path)
    _damage_index(checkpoint, damage)
    with pytest.raises(TensorBundleError, match=message):
        read_tf_checkpoint(checkpoint)


def test_a_missing_or_damaged_data_shard_is_named(tmp_path):
    checkpoint = copied(tmp_path)
    shard = tmp_path / f"{NAME}.data-00000-of-00001"
    data = shard.read_bytes()
    shard.write_bytes(data[:-8])
    with pytest.raises(TensorBundleError, match="the shard is cut"):
        read_tf_checkpoint(checkpoint)
    shard.write_bytes(data[:50] + bytes([data[50] ^ 0x01]) + data[51:])
    with pytest.raises(TensorBundleError, match="do not match their checksum"):
        read_tf_checkpoint(checkpoint)
    shard.unlink()
    with pytest.raises(TensorBundleError, match=r"data-00000-of-00001: missing"):
        read_tf_checkpoint(checkpoint)


def test_the_command_line_turns_a_bad_checkpoint_into_exit_status_2(tmp_path, capsys):
    checkpoint = copied(tmp_path)
    (tmp_path / f"{NAME}.data-00000-of-00001").unlink()
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    code = main(["restore", str(tmp_path / "a.png"), "--weights", f"{checkpoint}.index", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
