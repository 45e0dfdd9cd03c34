"""The peer architectures of the study: NAFNet, MIMO-UNet(+), DID-MDN and SRN against the published networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mprnet.checkpoint import load_model, model_from_state_dict, save_weights
from mprnet.errors import CheckpointError, ImageError
from mprnet.models.did_mdn import DIDMDN
from mprnet.models.nafnet import LocalMeanPool, NAFNet, _tlc_window
from mprnet.models.registry import create_model, detect, get_architecture
from mprnet.models.srn import SRNDeblurNet

from formula import CASES, formula_cases, formula_weights, stored_outputs

GOLDEN = Path(__file__).parent / "data" / "peers"
#: The reference implementations' tiny golden files kept out of the repository (MIMO-UNet, MIMO-UNet+, DID-MDN:
#: 11 MB), read from here where present; vectors of formula weights (tests/formula.py) stand in for them everywhere.
SHARED_GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden" / "peers"
TOLERANCE = 1e-5

#: manifest -> (architecture, the parameter count the issue publishes, in millions)
PUBLISHED = {
    "nafnet_sidd_w32": ("nafnet", 29.16),
    "nafnet_sidd_w64": ("nafnet", 115.98),
    "nafnet_gopro_w32": ("nafnet", 17.11),
    "nafnet_gopro_w64": ("nafnet", 67.89),
    "mimounet": ("mimo-unet", 6.81),
    "mimounet_plus": ("mimo-unet", 16.11),
    "didmdn_dense_rain": ("did-mdn", 0.373),
}
#: golden file -> architecture; each holds {"config", "state_dict", "inputs", "outputs"} of a tiny network; the
#: architectures' own names are the formula vectors (tests/formula.py).
TINY = {
    "nafnet_tiny": "nafnet",
    "mimounet_tiny": "mimo-unet",
    "mimounet_plus_tiny": "mimo-unet",
    "didmdn_dense_rain": "did-mdn",
    "mimo-unet": "mimo-unet",
    "did-mdn": "did-mdn",
}


def manifest(name: str) -> dict:
    return json.loads((GOLDEN / f"keys_{name}.json").read_text())


def meta_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The published network's state dict as shapes only (no memory, no file)."""
    return {key: torch.empty(shape, device="meta") for key, shape in manifest(name)["keys"].items()}


def golden(name: str) -> dict:
    """A golden file from tests/data/peers, or from ../shared/golden/peers for those kept out of the repository, or
    the formula vectors of an architecture, in the same layout."""
    if name in CASES:
        _architecture, config, _shapes, labels = CASES[name]
        images, labels = zip(*formula_cases(name), strict=True)
        state_dict = formula_weights(name)
        return {
            "config": config,
            "state_dict": state_dict,
            "inputs": images,
            "labels": labels,
            "outputs": stored_outputs(name),
        }
    for folder in (GOLDEN, SHARED_GOLDEN):
        if (folder / f"{name}.pt").exists():
            return torch.load(folder / f"{name}.pt", weights_only=True)
    pytest.skip(f"{name}.pt is kept in ../shared/golden/peers only, which is not present")


def forward(model: torch.nn.Module, image: torch.Tensor, label: int | None):
    with torch.no_grad():
        return model(image) if label is None else model(image, label)


def golden_cases(name: str):
    data = golden(name)
    labels = data.get("labels", [None] * len(data["inputs"]))
    return data, list(zip(data["inputs"], labels, data["outputs"]))


# --- published configurations: keys, shapes, order, parameter counts, detection ---------------------------


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_configuration_has_the_exact_keys_shapes_and_parameter_count(name):
    architecture, millions = PUBLISHED[name]
    expected = manifest(name)
    with torch.device("meta"):
        model = create_model(architecture, **expected["config"])
    state_dict = model.state_dict()
    assert list(state_dict) == list(expected["keys"])
    assert {key: list(value.shape) for key, value in state_dict.items()} == expected["keys"]
    count = sum(parameter.numel() for parameter in model.parameters())
    assert count == expected["num_parameters"]
    assert round(count / 1e6, 3 if millions < 1 else 2) == millions


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_checkpoint_is_detected_and_rebuilt(name):
    architecture, _ = PUBLISHED[name]
    with torch.device("meta"):
        model = model_from_state_dict(meta_state_dict(name))
    assert model.architecture == architecture
    for key, value in manifest(name)["config"].items():
        assert model.hparams[key] == value


def test_detection_knows_the_release_habits():
    """TLC for NAFNet's deblurring layout (its published numbers need it), dropout for MIMO-UNet+."""
    assert detect(meta_state_dict("nafnet_gopro_w32"))[1]["tlc_train_size"] == 256
    assert detect(meta_state_dict("nafnet_sidd_w32"))[1]["tlc_train_size"] is None
    assert detect(meta_state_dict("mimounet_plus"))[1]["dropout"] == 0.1
    assert detect(meta_state_dict("mimounet"))[1]["dropout"] == 0.0


def test_a_truncated_published_checkpoint_is_refused_with_a_clear_error():
    state_dict = meta_state_dict("mimounet")
    state_dict.pop("SCM2.conv.main.0.bias")
    with torch.device("meta"), pytest.raises(CheckpointError, match=r"missing keys: SCM2\.conv\.main\.0\.bias"):
        model_from_state_dict(state_dict)


@pytest.mark.parametrize("preset, millions", [("srn-lstm", 8.06), ("srn-color", 6.88)])
def test_srn_parameter_counts_match_the_authors_layers(preset, millions):
    with torch.device("meta"):
        model = create_model(preset)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions


@pytest.mark.parametrize(
    "preset, millions",
    [
        ("nafnet-sidd-w32", 29.16),
        ("nafnet-sidd-w64", 115.98),
        ("nafnet-gopro-w32", 17.11),
        ("nafnet-gopro-w64", 67.89),
        ("mimo-unet", 6.81),
        ("mimo-unet-plus", 16.11),
        ("did-mdn", 0.373),
    ],
)
def test_presets_are_the_published_networks(preset, millions):
    with torch.device("meta"):
        model = create_model(preset)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 3 if millions < 1 else 2) == millions


# --- tiny configurations: reference outputs --------------------------------------------------------------


@pytest.mark.parametrize("name", TINY)
def test_tiny_network_reproduces_the_reference_outputs(name):
    data, cases = golden_cases(name)
    model = create_model(TINY[name], **data["config"]).eval()
    assert list(model.state_dict()) == list(data["state_dict"])
    model.load_state_dict(data["state_dict"])
    for image, label, expected in cases:
        outputs = forward(model, image, label)
        outputs = [outputs] if isinstance(outputs, torch.Tensor) else outputs
        assert len(outputs) == len(expected)
        for output, reference in zip(outputs, expected):
            torch.testing.assert_close(output, reference, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", TINY)
def test_tiny_checkpoint_is_detected_and_loaded_by_model_from_state_dict(name):
    data, cases = golden_cases(name)
    model = model_from_state_dict(data["state_dict"])
    assert model.architecture == TINY[name]
    image, label, expected = cases[0]
    output = forward(model, image, label)
    torch.testing.assert_close(
        output if isinstance(output, torch.Tensor) else output[-1], expected[-1], rtol=0, atol=TOLERANCE
    )


@pytest.mark.parametrize("name, wrapper", [("nafnet_tiny", "params"), ("mimo-unet", "model"), ("did-mdn", None)])
def test_release_style_file_loads_with_load_model(name, wrapper, tmp_path):
    """NAFNet releases wrap the weights in "params", MIMO-UNet in "model", DID-MDN stores them bare."""
    data, cases = golden_cases(name)
    path = tmp_path / "release.pth"
    torch.save(data["state_dict"] if wrapper is None else {wrapper: data["state_dict"]}, path)
    model = load_model(path)
    image, label, expected = cases[-1]
    output = forward(model, image, label)
    torch.testing.assert_close(
        output if isinstance(output, torch.Tensor) else output[-1], expected[-1], rtol=0, atol=TOLERANCE
    )


def test_the_plus_layout_with_its_dropout_reproduces_the_reference_in_eval_mode():
    data, cases = golden_cases("mimo-unet")
    model = create_model("mimo-unet", **data["config"], dropout=0.1).eval()
    model.load_state_dict(data["state_dict"])
    for image, label, expected in cases:
        for output, reference in zip(forward(model, image, label), expected, strict=True):
            torch.testing.assert_close(output, reference, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", ["nafnet_tiny", "mimo-unet", "did-mdn"])
def test_saved_tiny_peer_round_trips_through_safetensors(name, tmp_path):
    data, cases = golden_cases(name)
    model = create_model(TINY[name], **data["config"])
    model.load_state_dict(data["state_dict"])
    loaded = load_model(save_weights(model, tmp_path / "peer.safetensors", task="test"))
    assert (loaded.architecture, loaded.hparams) == (model.architecture, model.hparams)
    assert loaded.metadata["task"] == "test"
    image, label, expected = cases[0]
    output = forward(loaded, image, label)
    torch.testing.assert_close(
        output if isinstance(output, torch.Tensor) else output[-1], expected[-1], rtol=0, atol=TOLERANCE
    )


def tiny_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "mprnet": create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1),
        "nafnet": create_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]),
        "mimo-unet": create_model("mimo-unet", num_res=1, base_channel=8),
        "srn": create_model("srn", width=8, num_res=1),
        "did-mdn": create_model("did-mdn", classifier_size=64, classifier_hidden=16),
    }


def test_each_architecture_claims_only_its_own_state_dicts():
    models = tiny_models()
    for name, model in models.items():
        claims = [arch for arch in models if get_architecture(arch).detect(model.state_dict()) is not None]
        assert claims == [name]


@pytest.mark.parametrize("name", ["nafnet", "mimo-unet", "srn", "did-mdn"])
def test_detection_recovers_every_hyper_parameter_of_a_tiny_peer(name):
    model = tiny_models()[name]
    rebuilt = model_from_state_dict(model.state_dict())
    for key, value in model.hparams.items():
        assert rebuilt.hparams[key] == value


# --- restore semantics and sizes -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nafnet", "mimo-unet", "srn", "did-mdn"])
def test_restore_maps_an_image_to_an_image_of_the_same_shape(name):
    model = tiny_models()[name].eval()
    architecture = get_architecture(name)
    image = torch.rand(2, 3, 32, 48)
    assert 32 % architecture.size_multiple == 0 and 48 % architecture.size_multiple == 0
    with torch.no_grad():
        restored = architecture.restore(model, image)
    assert restored.shape == image.shape
    assert torch.isfinite(restored).all()


@pytest.mark.parametrize(
    "name, size", [("mimo-unet", (30, 32)), ("srn", (40, 32)), ("did-mdn", (36, 40)), ("did-mdn", (24, 24))]
)
def test_sizes_the_network_cannot_take_are_refused(name, size):
    model = tiny_models()[name].eval()
    with pytest.raises(ValueError, match="multiples of"):
        get_architecture(name).restore(model, torch.rand(1, 3, *size))


def test_nafnet_takes_any_size_by_padding_itself():
    model = tiny_models()["nafnet"].eval()
    image = torch.rand(1, 3, 33, 27)
    with torch.no_grad():
        restored = model(image)
        padded = model(F.pad(image, (0, 1, 0, 3)))
    assert restored.shape == image.shape
    torch.testing.assert_close(restored, padded[..., :33, :27])


# --- NAFNet TLC ------------------------------------------------------------------------------------------


def test_tlc_windows_are_one_and_a_half_training_crops_at_every_level():
    assert [_tlc_window(256, level) for level in range(5)] == [384, 192, 96, 48, 24]
    assert _tlc_window(None, 0) is None


@pytest.mark.parametrize("window, size", [(5, (9, 12)), (4, (4, 11)), (6, (7, 6))])
def test_local_mean_pool_is_the_box_mean_with_replicated_borders(window, size):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    box = (min(window, size[0]), min(window, size[1]))
    means = F.avg_pool2d(x, box, stride=1)
    pad_h, pad_w = size[0] - means.shape[-2], size[1] - means.shape[-1]
    expected = F.pad(means, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode="replicate")
    torch.testing.assert_close(LocalMeanPool(window)(x), expected)


def test_local_mean_pool_is_the_global_mean_on_images_within_the_window():
    x = torch.randn(1, 2, 6, 5)
    torch.testing.assert_close(LocalMeanPool(6)(x), x.mean((2, 3), keepdim=True))


def test_tlc_changes_nafnet_only_on_images_larger_than_the_training_crops():
    torch.manual_seed(0)
    config = dict(width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    plain = NAFNet(**config).eval()
    with torch.no_grad():  # random attention weights, so that pooling matters
        for name, parameter in plain.named_parameters():
            if name.endswith(("beta", "gamma")):
                parameter.normal_()
    tlc = NAFNet(**config, tlc_train_size=16).eval()
    tlc.load_state_dict(plain.state_dict())
    small, large = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tlc(small), plain(small))
        assert (tlc(large) - plain(large)).abs().max() > 1e-4


# --- DID-MDN ---------------------------------------------------------------------------------------------


def test_did_mdn_takes_one_density_label_per_image():
    data, cases = golden_cases("did-mdn")
    model = create_model("did-mdn").eval()
    model.load_state_dict(data["state_dict"])
    image = cases[0][0]
    batch = image.repeat(2, 1, 1, 1)
    with torch.no_grad():
        _residual, clean = model(batch, torch.tensor([0, 2]))
        assert not torch.allclose(clean[0], clean[1])
        torch.testing.assert_close(clean[:1], cases[0][2][1], rtol=0, atol=TOLERANCE)
        torch.testing.assert_close(clean[1:], model(image, 2)[1], rtol=0, atol=TOLERANCE)


def test_did_mdn_restores_at_full_size_with_the_label_its_classifier_picks():
    torch.manual_seed(0)
    model = create_model("did-mdn", classifier_size=64, classifier_hidden=16).eval()
    with torch.no_grad():
        model.classifier.dense_classifier1.bias.copy_(torch.tensor([0.0, 0.0, 50.0, 100.0]))  # force "light"
        image = torch.rand(1, 3, 96, 128)
        labels = model.classify(image * 2 - 1)
        restored = get_architecture("did-mdn").restore(model, image)
        expected = (model(image * 2 - 1, 2)[1] + 1) / 2
    assert labels.tolist() == [2]  # the fourth, never-trained output is ignored
    assert restored.shape == image.shape
    torch.testing.assert_close(restored, expected)
    assert restored.min() >= 0 and restored.max() <= 1


def test_did_mdn_classifier_size_is_detected_from_its_dense_layer():
    with torch.device("meta"):
        published = create_model("did-mdn-with-classifier")
    assert sum(p.numel() for p in published.classifier.parameters()) == 65_501_084  # the release's vgg19ca
    assert detect(published.state_dict())[1] == {"classifier_size": 512, "classifier_hidden": 512}


def test_did_mdn_layers_unused_by_the_release_are_frozen_and_the_rest_all_learn():
    model = create_model("did-mdn").train()
    residual, clean = model(torch.rand(2, 3, 32, 32) * 2 - 1, torch.tensor([0, 1]))
    (clean.mean() + residual.mean()).backward()
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert all(model.get_parameter(name).grad is not None for name in trainable)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert "dense0.conv21.weight" in frozen and "dense1.refine3.weight" in frozen and "batchnorm20.weight" in frozen
    assert "dense0.conv11.weight" not in frozen


def test_did_mdn_refuses_unknown_density_labels():
    with pytest.raises(ValueError, match="0 \\(heavy\\), 1 \\(medium\\) or 2 \\(light\\)"):
        DIDMDN(default_density=3)


# --- SRN -------------------------------------------------------------------------------------------------


def test_srn_returns_three_scales_and_runs_colour_through_the_one_channel_model_per_channel():
    torch.manual_seed(0)
    model = SRNDeblurNet(channels=1, lstm=True, width=8, num_res=1).eval()
    image = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        scales = model(image)
        green = model(image[:, 1:2])
    assert [tuple(s.shape) for s in scales] == [(2, 3, 8, 12), (2, 3, 16, 24), (2, 3, 32, 48)]
    torch.testing.assert_close(green[-1], scales[-1][:, 1:2])


def test_srn_lstm_hidden_state_reaches_the_finer_scales():
    torch.manual_seed(0)
    model = SRNDeblurNet(channels=3, lstm=True, width=8, num_res=1).eval()
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        with_memory = model(image)[-1]
        model.lstm.conv.weight[:, model.lstm.conv.weight.shape[1] // 2 :] = 0  # ignore the hidden state
        without_memory = model(image)[-1]
    assert (with_memory - without_memory).abs().max() > 1e-6


def test_srn_refuses_images_whose_channels_it_cannot_split():
    model = SRNDeblurNet(channels=3, lstm=False, width=8, num_res=1)
    with pytest.raises(ImageError, match="3-channel"):
        model(torch.rand(1, 4, 32, 32))


# --- trainability ----------------------------------------------------------------------------------------


def training_loss(name: str, model: torch.nn.Module, blurry: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
    """Each peer's raw output against the target: multi-scale where the network predicts several scales."""
    if name == "did-mdn":
        _residual, clean = model(blurry * 2 - 1, 1)
        return F.l1_loss(clean, sharp * 2 - 1)
    outputs = model(blurry)
    outputs = [outputs] if isinstance(outputs, torch.Tensor) else outputs
    return sum(F.mse_loss(out, F.interpolate(sharp, size=out.shape[-2:], mode="area")) for out in outputs)


@pytest.mark.parametrize("name", ["nafnet", "mimo-unet", "srn", "did-mdn"])
def test_a_few_training_steps_lower_the_loss(name):
    model = tiny_models()[name].train()
    torch.manual_seed(1)
    sharp = torch.rand(2, 3, 32, 32)
    blurry = F.avg_pool2d(sharp, 3, stride=1, padding=1, count_include_pad=False)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(8):
        optimiser.zero_grad()
        loss = training_loss(name, model, blurry, sharp)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
