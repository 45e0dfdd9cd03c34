import json

import pytest
import torch

import mprnet
from mprnet.checkpoint import model_from_state_dict, read_weights, resave_weights
from mprnet.errors import CheckpointError
from mprnet.models.mprnet import PRESETS, MPRNet

from conftest import DATA
from formula import formula_weights


def _reference_state_dict():
    return formula_weights("mprnet")


def _same_weights(model, state_dict):
    return all(torch.equal(model.state_dict()[k], v) for k, v in state_dict.items())


def test_loads_state_dict_wrapped_checkpoint(tiny_config, tiny_checkpoint):
    model = mprnet.load_model(tiny_checkpoint)
    assert model.architecture == "mprnet"
    assert {k: model.hparams[k] for k in tiny_config} == tiny_config
    assert _same_weights(model, _reference_state_dict())
    assert not model.training


def test_loads_dataparallel_checkpoint_with_extra_entries(tmp_path):
    """Saved as a DataParallel run saves them: "module." before every key, and an "epoch" beside the weights
    (../shared/golden/tiny_checkpoint_dataparallel.pth is one such)."""
    path = tmp_path / "dataparallel.pth"
    torch.save(
        {"epoch": 3, "state_dict": {f"module.{key}": value for key, value in _reference_state_dict().items()}}, path
    )
    model = mprnet.load_model(path)
    assert _same_weights(model, _reference_state_dict())


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"model": sd, "optimizer": {}, "step": 3},
        lambda sd: {"params": sd},
        lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},
    ],
)
def test_loads_every_pickled_layout(tmp_path, wrap):
    path = tmp_path / "weights.pt"
    torch.save(wrap(_reference_state_dict()), path)
    assert _same_weights(mprnet.load_model(path), _reference_state_dict())


def test_safetensors_round_trip_keeps_metadata(tmp_path, tiny_model):
    path = mprnet.save_weights(tiny_model, tmp_path / "tiny.safetensors", task="denoise", steps=12)
    loaded = mprnet.load_model(path)
    assert loaded.metadata["task"] == "denoise" and json.loads(loaded.metadata["steps"]) == 12
    assert _same_weights(loaded, _reference_state_dict())
    assert not list(tmp_path.glob("*.tmp"))


def test_resaving_in_fp16_keeps_the_metadata_and_adds_to_it(tmp_path, tiny_model):
    trained = mprnet.save_weights(tiny_model, tmp_path / "best.safetensors", task="derain", steps=7)
    path = resave_weights(trained, tmp_path / "bundled.safetensors", name="derain")
    state_dict, metadata = read_weights(path)
    assert (metadata["task"], metadata["steps"], metadata["name"]) == ("derain", "7", "derain")
    assert all(value.dtype == torch.float16 for value in state_dict.values() if value.is_floating_point())
    loaded = mprnet.load_model(path)
    assert all(torch.allclose(loaded.state_dict()[k], v, atol=1e-3) for k, v in _reference_state_dict().items())


@pytest.mark.parametrize("task", ["deblur", "denoise", "derain"])
def test_published_configurations_are_detected(task):
    state_dict = MPRNet(**PRESETS[task]).state_dict()
    model = model_from_state_dict(state_dict)
    assert {k: model.hparams[k] for k in PRESETS[task]} == PRESETS[task]
    assert model.hparams["num_cab"] == 8 and model.hparams["reduction"] == 4 and model.hparams["bias"] is False


@pytest.mark.parametrize(
    "config",
    [
        dict(n_feat=20, scale_unetfeats=12, scale_orsnetfeats=6, num_cab=3, reduction=4),
        dict(n_feat=17, scale_unetfeats=5, scale_orsnetfeats=3, num_cab=1, reduction=2, bias=True),
        dict(n_feat=12, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2, reduction=3, kernel_size=5),
        dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1, in_c=1, out_c=1),
    ],
)
def test_odd_widths_are_detected(config):
    torch.manual_seed(0)
    original = MPRNet(**config)
    model = model_from_state_dict(original.state_dict())
    assert {k: model.hparams[k] for k in config} == config
    channels = config.get("in_c", 3)
    image = torch.rand(1, channels, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(image)[0], original.eval()(image)[0])


def test_wrong_shapes_are_named(tmp_path):
    state_dict = _reference_state_dict()
    state_dict["tail.weight"] = torch.zeros(3, 5, 3, 3)
    with pytest.raises(CheckpointError, match=r"tail\.weight"):
        model_from_state_dict(
            state_dict, architecture="mprnet", config=json.loads((DATA / "tiny_config.json").read_text())
        )


def test_missing_and_unexpected_keys_are_named():
    state_dict = _reference_state_dict()
    del state_dict["sam12.conv1.weight"]
    state_dict["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing keys: sam12.conv1.weight.*unexpected keys: extra.weight"):
        model_from_state_dict(
            state_dict, architecture="mprnet", config=json.loads((DATA / "tiny_config.json").read_text())
        )


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"this is not a checkpoint at all", "not a readable PyTorch checkpoint"),
    ],
)
def test_damaged_files_get_one_clear_sentence(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        mprnet.load_model(path)


def test_truncated_checkpoint(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        mprnet.load_model(path)


def test_code_in_a_pickle_is_never_run(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused") as refused:
        mprnet.load_model(path)
    assert "weights_only" not in str(refused.value) and "could run code" in str(refused.value)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save({"epoch": 3, "notes": "x"}, path)
    with pytest.raises(CheckpointError, match="expected a state dict"):
        read_weights(path)


def test_unknown_architecture(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, path)
    with pytest.raises(CheckpointError, match="no known architecture"):
        mprnet.load_model(path)


def test_unknown_name_lists_the_bundled_models():
    with pytest.raises(CheckpointError, match="neither a weights file nor a bundled model"):
        mprnet.load_model("no-such-model")


def _crafted(tmp_path, tensors, **metadata):
    from safetensors.torch import save_file

    path = tmp_path / "crafted.safetensors"
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"config": "{not json"}, "metadata config is not JSON"),
        ({"config": "[1, 2]"}, "must be a mapping of hyper-parameters, found a list"),
        ({"config": '{"colour": 3}'}, "names 'colour', which is not a hyper-parameter of mprnet"),
        ({"config": '{"n_feat": -4}'}, "no mprnet network has"),
        ({"config": '{"n_feat": 400}'}, "n_feat=400"),
        ({"config": '{"num_cab": "many"}'}, "num_cab"),
        ({"architecture": "nafnet"}, "its tensors are a mprnet network"),
    ],
)
def test_crafted_metadata_is_refused_in_one_sentence(tmp_path, metadata, message):
    path = _crafted(tmp_path, _reference_state_dict(), **metadata)
    with pytest.raises(CheckpointError, match=message):
        mprnet.load_model(path)


def test_metadata_never_makes_the_loader_build_a_large_network(tmp_path, monkeypatch):
    """A tiny file that claims a huge width is refused before any weight is allocated (checks run on meta)."""
    allocated = []
    real_build = mprnet.models.registry.build

    def recording_build(architecture, config):
        model = real_build(architecture, config)
        allocated.append(sum(p.numel() for p in model.parameters() if p.device.type != "meta"))
        return model

    monkeypatch.setattr(mprnet.checkpoint, "build", recording_build)
    path = _crafted(tmp_path, _reference_state_dict(), architecture="mprnet", config='{"n_feat": 1200}')
    with pytest.raises(CheckpointError, match="n_feat=1200"):
        mprnet.load_model(path)
    assert allocated and not any(allocated)
    lone = _crafted(tmp_path, {"shallow_feat1.0.weight": torch.zeros(1200, 3, 3, 3)}, config='{"n_feat": 1200}')
    with pytest.raises(CheckpointError, match="match no known architecture"):
        mprnet.load_model(lone)


def test_metadata_may_describe_what_the_tensors_cannot_tell(tmp_path):
    nafnet = mprnet.create_model("nafnet", width=8, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1])
    path = mprnet.save_weights(nafnet, tmp_path / "n.safetensors")
    assert mprnet.load_model(path).hparams == nafnet.hparams


@pytest.mark.parametrize("command", [["info"], ["restore", "IMAGE", "-o", "OUT", "--weights"]])
def test_crafted_metadata_is_one_line_on_the_command_line(tmp_path, capsys, command):
    from PIL import Image

    from mprnet.cli import main

    path = _crafted(tmp_path, _reference_state_dict(), config='{"n_feat": 400}')
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    arguments = [
        str(tmp_path / "a.png") if a == "IMAGE" else str(tmp_path / "out") if a == "OUT" else a for a in command
    ]
    assert main([*arguments, str(path)]) == 1
    err = capsys.readouterr().err
    assert "describes another network" in err and "Traceback" not in err


def test_a_safetensors_file_whose_header_length_starts_like_a_pickle_is_read_as_safetensors(tmp_path):
    from safetensors.torch import save_file

    from mprnet.checkpoint import read_metadata, stored_format

    path = tmp_path / "x.safetensors"
    for pad in range(256):  # the header length's low byte is 0x80, pickle's first byte, for one padding in 256
        save_file({"w": torch.zeros(1)}, str(path), metadata={"note": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert stored_format(path) == "safetensors" and read_metadata(path)["note"].startswith("x")
