"""Training the peers with their published recipes, and restoring with them through the engine and the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

import mprnet
from mprnet.cli import main
from mprnet.data import SyntheticPairs
from mprnet.degrade import GaussianNoise, Rain
from mprnet.errors import DataError, MprnetError
from mprnet.infer import Engine
from mprnet.losses import fft_l1, psnr_loss
from mprnet.models.did_mdn import training_loss as did_mdn_loss
from mprnet.models.mimo_unet import training_loss as mimo_unet_loss
from mprnet.models.registry import create_model
from mprnet.models.srn import training_loss as srn_loss
from mprnet.train import Trainer, learning_rate, load_config
from mprnet.train.objectives import objective_for, training_patches

#: name -> (tiny network, task, degradation level, recipe settings)
PEERS = {
    "nafnet": (
        {"name": "nafnet", "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]},
        "denoise",
        25,
        {"optimizer": "adamw", "betas": [0.9, 0.9], "lr": 1e-3, "lr_min": 1e-7},
    ),
    "mimo-unet": (
        {"name": "mimo-unet", "num_res": 1, "base_channel": 8},
        "deblur",
        5,
        {"lr": 1e-3, "schedule": "step", "step_every": 4},
    ),
    "srn": (
        {"name": "srn", "channels": 1, "lstm": True, "width": 8, "num_res": 1},
        "deblur",
        5,
        {"lr": 1e-3, "lr_min": 0.0, "schedule": "poly", "poly_power": 0.3},
    ),
    "did-mdn": (
        {"name": "did-mdn", "classifier_size": 32, "classifier_hidden": 8},
        "derain",
        "heavy",
        {"lr": 1e-3, "lr_min": 0.0, "schedule": "poly", "betas": [0.5, 0.999], "weight_decay": 5e-5},
    ),
}
PATCH = 32


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two smooth clean photos with some texture, just larger than the patches."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, 40)
    for index in range(2):
        clean = 0.2 + 0.5 * ramp[:, None, None] * ramp[None, :, None] * rng.random(3) + 0.1 * rng.random((40, 40, 3))
        Image.fromarray(np.uint8(np.clip(clean, 0, 1) * 255)).save(folder / f"{index}.png")
    return folder


def write_config(folder: Path, values: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def peer_config(name: str, photos: Path, out: Path, **settings):
    model, task, level, recipe = PEERS[name]
    values = {
        "task": task,
        "model": model,
        "data": {"clean_dir": str(photos), "level": level, "workers": 0},
        "steps": 12,
        "batch_size": 2,
        "patch_size": PATCH,
        "precision": "fp32",
        "checkpoint_every": 100,
        "log_every": 1,
        "out_dir": str(out / "run"),
        **recipe,
        **settings,
    }
    return load_config(write_config(out, values))


def schedule(tmp_path: Path, **settings):
    values = {"data": {"clean_dir": "x"}, "steps": 100, "lr": 1.0, "lr_min": 0.0, **settings}
    return load_config(write_config(tmp_path, values))


# --- schedules and optimizers -----------------------------------------------------------------------------


def test_step_schedule_multiplies_by_gamma_every_step_every_steps(tmp_path):
    config = schedule(tmp_path, schedule="step", step_every=30, step_gamma=0.5)
    rates = [learning_rate(config, step) for step in (0, 29, 30, 59, 60, 99)]
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
    assert learning_rate(config, 0, time_share=0.65) == 0.25  # a time budget moves the steps on


def test_poly_schedule_follows_the_power_to_lr_min(tmp_path):
    config = schedule(tmp_path, schedule="poly", poly_power=0.3, lr_min=0.1, warmup_steps=10)
    assert learning_rate(config, 4) == pytest.approx(0.5)  # warm-up first
    assert learning_rate(config, 10) == pytest.approx(1.0)
    assert learning_rate(config, 55) == pytest.approx(0.1 + 0.9 * 0.5**0.3)
    assert learning_rate(config, 100) == pytest.approx(0.1)


def test_cosine_stays_the_default(tmp_path):
    config = schedule(tmp_path)
    assert config.schedule == "cosine" and config.optimizer == "adam"
    assert learning_rate(config, 50) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"optimizer": "sgd"}, "optimizer must be one of adam, adamw"),
        ({"schedule": "linear"}, "schedule must be one of cosine, poly, step"),
        ({"schedule": "step"}, "step_every >= 1"),
    ],
)
def test_unknown_recipe_settings_get_clear_messages(tmp_path, settings, message):
    with pytest.raises(MprnetError, match=message):
        schedule(tmp_path, **settings)


def test_the_config_picks_the_optimizer(tmp_path, photos):
    trainer = Trainer(peer_config("nafnet", photos, tmp_path, weight_decay=1e-3))
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    group = trainer.optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.9) and group["weight_decay"] == 1e-3


@pytest.mark.parametrize(
    "name,architecture,millions",
    [
        ("nafnet-denoise", "nafnet", 29.16),
        ("nafnet-deblur", "nafnet", 17.11),
        ("mimo-unet-deblur", "mimo-unet", 6.81),
        ("srn-deblur", "srn", 8.06),
        ("did-mdn-derain", "did-mdn", 0.373 + 65.501),
        ("nafnet-denoise-cpu", "nafnet", 4.09),
        ("mimo-unet-deblur-cpu", "mimo-unet", 3.83),
        ("srn-deblur-cpu", "srn", 3.81),
        ("did-mdn-derain-cpu", "did-mdn", 0.887),
        ("nafnet-denoise-peer", "nafnet", 1.263),
        ("mimo-unet-deblur-peer", "mimo-unet", 1.307),
        ("srn-deblur-peer", "srn", 1.331),
        ("did-mdn-derain-peer", "did-mdn", 0.887),
    ],
)
def test_peer_configs_build_the_published_and_the_smaller_networks(name, architecture, millions):
    config = load_config(name)
    with torch.device("meta"):
        model = objective_for(config).build_model()
    assert model.architecture == architecture
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.006)


@pytest.mark.parametrize(
    "name", ["nafnet-denoise-peer", "mimo-unet-deblur-peer", "srn-deblur-peer", "did-mdn-derain-peer"]
)
def test_the_campaign_peers_are_small_and_learn_from_what_their_mprnet_learns(name):
    """At most 1.5 M parameters (fp16 weights at most 3 MB: every bundled model travels with each GPU run), on the
    data, patches, batch, validation and plan of the bundled MPRNet of their task."""
    peer = load_config(name)
    mprnet_config = load_config(f"bundled-{peer.task}")
    with torch.device("meta"):
        parameters = sum(p.numel() for p in objective_for(peer).build_model().parameters())
    assert parameters <= 1.5e6 and 2 * parameters <= 3e6
    shared = ("data", "val", "patch_size", "batch_size", "steps", "time_budget_s", "schedule_follows_budget")
    assert {key: getattr(peer, key) for key in shared} == {key: getattr(mprnet_config, key) for key in shared}


# --- losses on hand-made tensors --------------------------------------------------------------------------


def test_psnr_loss_is_minus_the_mean_psnr_of_the_images():
    target = torch.rand(2, 3, 8, 8)
    prediction = target + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)  # 20 dB and 40 dB
    assert float(psnr_loss(prediction, target)) == pytest.approx(-30, abs=1e-3)


def test_fft_l1_of_a_constant_shift_is_half_the_shift():
    # A shift c only moves the DC coefficient, by c * H * W; the mean runs over H * W real and H * W imaginary parts.
    target = torch.rand(1, 3, 8, 12)
    assert float(fft_l1(target + 0.3, target)) == pytest.approx(0.15, rel=1e-4)
    assert float(fft_l1(target, target)) == 0


def scales(target: torch.Tensor) -> list[torch.Tensor]:
    return [F.interpolate(target, scale_factor=s, mode="bilinear", align_corners=False) for s in (0.25, 0.5)] + [target]


def test_mimo_unet_loss_is_l1_at_three_scales_plus_a_tenth_of_the_spectral_l1():
    target = torch.rand(2, 3, 16, 16)
    assert float(mimo_unet_loss("deblur")(scales(target), target)) == pytest.approx(0, abs=1e-6)
    shifted = [*scales(target)[:2], target + 0.2]
    assert float(mimo_unet_loss("deblur")(shifted, target)) == pytest.approx(0.2 + 0.1 * 0.1, rel=1e-4)


def test_srn_loss_sums_the_mean_squared_errors_of_the_three_scales():
    target = torch.rand(2, 1, 16, 16)
    assert float(srn_loss("deblur")(scales(target), target)) == pytest.approx(0, abs=1e-9)
    shifted = [output + 0.1 for output in scales(target)]
    assert float(srn_loss("deblur")(shifted, target)) == pytest.approx(3 * 0.01, rel=1e-4)


def test_did_mdn_loss_is_l1_in_minus_one_to_one_plus_the_classifier_cross_entropy():
    target = torch.rand(2, 3, 8, 8)
    residual, clean = torch.zeros_like(target), target * 2 - 1 + 0.2
    labels = torch.tensor([0, 2])
    loss = did_mdn_loss("derain")
    assert float(loss([residual, clean], target, labels)) == pytest.approx(0.2, rel=1e-5)
    logits = torch.zeros(2, 4)
    expected = 0.2 + math.log(4)  # uniform logits over the release's four outputs
    assert float(loss([residual, clean, logits], target, labels)) == pytest.approx(expected, rel=1e-5)
    confident = torch.tensor([[20.0, 0, 0, 0], [0, 0, 20.0, 0]])
    assert float(loss([residual, clean, confident], target, labels)) == pytest.approx(0.2, abs=1e-5)


# --- data with density labels -----------------------------------------------------------------------------


def test_synthetic_rain_pairs_carry_the_density_label_when_asked(photos):
    plain = SyntheticPairs(photos, Rain.heavy(), PATCH, length=4, seed=3)
    labelled = SyntheticPairs(photos, Rain.mixed(), PATCH, length=4, seed=3, with_labels=True)
    assert len(plain[0]) == 2
    degraded, clean, label = labelled[1]
    assert degraded.shape == clean.shape == (3, PATCH, PATCH) and label.dtype == torch.long
    labels = {int(labelled[index][2]) for index in range(4)}
    assert labels <= {0, 2} and len(labels) == 2  # mixed rain: heavy (0) or light (2)


def test_labels_from_a_degradation_that_records_none_are_refused(photos):
    with pytest.raises(DataError, match="rain-density label"):
        SyntheticPairs(photos, GaussianNoise(sigma=10), PATCH, length=1, with_labels=True)[0]


def test_did_mdn_refuses_data_without_density_labels(tmp_path, photos):
    config = peer_config("did-mdn", photos, tmp_path, task="denoise")
    with pytest.raises(MprnetError, match=r"set task: derain and data\.clean_dir"):
        training_patches(config, 4, with_labels=True)


# --- a few steps of the real trainer lower each peer's loss --------------------------------------------


def loss_on(trainer: Trainer, batch: tuple) -> float:
    degraded, *targets = batch
    objective = trainer.objective
    with torch.no_grad():
        return float(objective.loss(objective.forward(trainer.model, degraded, *targets), *targets))


def first_batch(config) -> tuple:
    dataset = training_patches(config, config.batch_size, with_labels=config.task == "derain")
    return tuple(torch.stack(items) for items in zip(*(dataset[i] for i in range(config.batch_size))))


@pytest.mark.parametrize("name", PEERS)
def test_a_few_trainer_steps_lower_the_peer_loss(name, tmp_path, photos):
    config = peer_config(name, photos, tmp_path)
    torch.manual_seed(0)
    trainer = Trainer(config)
    batch = first_batch(config)
    trainer.model.train()
    before = loss_on(trainer, batch)
    summary = trainer.run()
    assert summary["step"] == config.steps
    assert loss_on(trainer, batch) < before
    assert trainer.lr == pytest.approx(learning_rate(config, config.steps - 1))


def test_did_mdn_training_teaches_the_classifier_and_the_deraining_network(tmp_path, photos):
    config = peer_config("did-mdn", photos, tmp_path, steps=3)
    trainer = Trainer(config)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.run()
    changed = {name for name, p in trainer.model.named_parameters() if not torch.equal(p, before[name])}
    assert "classifier.dense_classifier1.weight" in changed and "refine3.weight" in changed
    assert "dense0.conv21.weight" not in changed  # frozen: unused by the release's forward


# --- restoring: the density label is chosen once per image, then the CLI -------------------------------


def test_did_mdn_chooses_the_density_once_on_the_whole_image_for_every_tile():
    torch.manual_seed(0)
    model = create_model("did-mdn", classifier_size=32, classifier_hidden=8).eval()
    with torch.no_grad():
        model.classifier.dense_classifier1.bias.copy_(torch.tensor([0.0, 0.0, 50.0, 100.0]))  # always "light"
    seen = []
    classify = model.classify
    model.classify = lambda image: seen.append(tuple(image.shape)) or classify(image)
    same_weights = create_model("did-mdn", default_density=2).eval()
    same_weights.load_state_dict(model.state_dict(), strict=False)
    image = np.random.default_rng(1).random((64, 96, 3), dtype=np.float32)
    engine = Engine(model, device="cpu", tile=32, overlap=8)
    tiled = engine(image)
    assert engine.count_tiles(64, 96) > 1 and seen == [(1, 3, 64, 96)]
    expected = Engine(same_weights, device="cpu", tile=32, overlap=8)(image)
    np.testing.assert_allclose(tiled, expected, atol=1e-6)


@pytest.fixture(scope="module")
def peer_weights(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    files = {}
    for name, (model, task, _, _) in PEERS.items():
        settings = dict(model)
        network = create_model(settings.pop("name"), **settings)
        files[name] = str(mprnet.save_weights(network, folder / f"{name}.safetensors", task=task))
    return files


@pytest.mark.parametrize("name", PEERS)
def test_each_peer_restores_through_the_cli_tiled_in_bf16(name, peer_weights, tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (48, 72, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    options = ["--tile", "32", "--overlap", "8", "--precision", "bf16", "--device", "cpu"]
    assert (
        main(
            [
                "restore",
                str(tmp_path / "photo.png"),
                "-o",
                str(tmp_path / "out"),
                "--weights",
                peer_weights[name],
                "--arch",
                name,
                *options,
            ]
        )
        == 0
    )
    restored = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    engine = Engine(mprnet.load_model(peer_weights[name]), device="cpu", precision="bf16", tile=32, overlap=8)
    expected = np.rint(engine(pixels.astype(np.float32) / 255) * 255)
    assert engine.count_tiles(48, 72) > 1
    assert restored.shape == pixels.shape and np.abs(restored - expected).max() <= 1


def test_arch_guards_against_weights_of_another_architecture(peer_weights, tmp_path, capsys):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "photo.png")
    arguments = ["restore", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--device", "cpu"]
    assert main([*arguments, "--weights", peer_weights["srn"], "--arch", "nafnet"]) == 1
    assert "--arch nafnet was asked for, but" in capsys.readouterr().err
    assert main([*arguments, "--arch", "nafnet", "--task", "denoise"]) == 2
    assert "pass --weights PATH too" in capsys.readouterr().err
    assert main([*arguments, "--weights", peer_weights["srn"], "--arch", "resnet"]) == 2
    assert "unknown architecture 'resnet'" in capsys.readouterr().err
