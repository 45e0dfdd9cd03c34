"""DID-MDN's whole released pipeline (hezhangsprinter/DID-MDN test.py): the generator file of the release folder
brings its density estimator along, the label is picked per image as test.py picks it, the output is stretched as
test.py stretches it. Stand-ins in the release's layouts (2018 state dicts: no BatchNorm batch counts) are made
from formula weights; the classifier's dense layer is sized for 64x64 inputs instead of 512x512."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mprnet.checkpoint import load_model, resave_weights
from mprnet.cli import main
from mprnet.errors import CheckpointError
from mprnet.models.did_mdn import DIDMDN, DenseRainResidual, DensityClassifier
from mprnet.models.registry import get_architecture, restoring_forward

from formula import formula_image, formula_state_dict

SIZE, HIDDEN = 64, 16
GENERATOR = "pre_trained/netG_epoch_9.pth"
CLASSIFIER = "classification/netG_epoch_9.pth"
RESIDUAL = "residual_heavy/netG_epoch_6.pth"


def as_2018(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A formula state dict as PyTorch 0.3 saved it: without BatchNorm's num_batches_tracked."""
    return {k: v for k, v in formula_state_dict(module).items() if not k.endswith("num_batches_tracked")}


def release_folder(root: Path, classifier_bias: list[float] | None = None, files=(GENERATOR, CLASSIFIER, RESIDUAL)):
    """The release's folder layout; `classifier_bias` forces the classifier's four logits."""
    classifier = as_2018(DensityClassifier(SIZE, HIDDEN))
    if classifier_bias is not None:
        classifier["dense_classifier1.bias"] = torch.tensor(classifier_bias)
    made = {GENERATOR: as_2018(DIDMDN()), CLASSIFIER: classifier, RESIDUAL: as_2018(DenseRainResidual())}
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        torch.save(made[name], root / name)
    return root / GENERATOR


def test_script(root: Path, image: torch.Tensor) -> torch.Tensor:
    """test.py's loop on one image in [-1, 1] at the classifier's size, with this package's layers."""
    generator, classifier, residual_net = DIDMDN().eval(), DensityClassifier(SIZE, HIDDEN).eval(), DenseRainResidual()
    for network, name in ((generator, GENERATOR), (classifier, CLASSIFIER), (residual_net, RESIDUAL)):
        network.load_state_dict(torch.load(root / name, weights_only=True), strict=False)
    residual_net.eval()
    with torch.no_grad():
        residue = image - residual_net(image, 0)
        label_final = torch.softmax(classifier(residue), 1).max(1)[1] + 1
        _, clean = generator(image, label_final)
    return (clean - clean.min()) / (clean.max() - clean.min())


test_script.__test__ = False  # a helper, not a test


def test_the_generator_file_brings_the_release_estimator_and_loads_without_batch_counts(tmp_path):
    model = load_model(release_folder(tmp_path))
    assert model.hparams["release_estimator_size"] == SIZE and model.hparams["release_estimator_hidden"] == HIDDEN
    counts = {k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
    assert counts and all(int(v) == 0 for v in counts.values())
    assert any(k.startswith("release.residual.dense2.") for k in model.state_dict())


def test_the_pipeline_is_test_py_at_the_classifiers_size(tmp_path):
    model = load_model(release_folder(tmp_path))
    image = formula_image((1, 3, SIZE, SIZE), phase=0.3).clamp(0, 1)
    with torch.no_grad():
        restored = restoring_forward(model, image)
    expected = test_script(tmp_path, image * 2 - 1)
    torch.testing.assert_close(restored, expected, rtol=0, atol=1e-5)
    assert restored.min() == 0 and restored.max() == 1  # stretched, not (x + 1) / 2


@pytest.mark.parametrize("bias, value", [([0, 40, 0, 0], 2), ([0, 0, 40, 0], 3), ([0, 0, 0, 40], 4)])
def test_the_label_is_the_winning_class_of_four_plus_one(tmp_path, bias, value):
    model = load_model(release_folder(tmp_path, classifier_bias=bias))
    image = formula_image((2, 3, 96, 128), phase=0.1).clamp(0, 1)
    prepared = get_architecture("did-mdn").prepare(model, image)
    assert prepared["label"].tolist() == [value, value]
    with torch.no_grad():
        restored = get_architecture("did-mdn").restore(model, image, **prepared)
        _, clean = model(image * 2 - 1, value)
    low, high = (bound.view(-1, 1, 1, 1) for bound in prepared["output_range"])
    torch.testing.assert_close(restored, ((clean - low) / (high - low)).clamp(0, 1))
    assert restored.shape == image.shape  # restored at full size, the range taken on the 64x64 copy


def test_a_generator_alone_loads_as_before(tmp_path):
    model = load_model(release_folder(tmp_path, files=(GENERATOR,)))
    assert model.release is None and model.hparams["release_estimator_size"] is None


def test_one_companion_alone_is_refused_naming_the_other(tmp_path):
    generator = release_folder(tmp_path, files=(GENERATOR, CLASSIFIER))
    with pytest.raises(CheckpointError, match=r"residual_heavy/netG_epoch_6\.pth is missing"):
        load_model(generator)


def test_a_companion_of_another_network_is_refused(tmp_path):
    generator = release_folder(tmp_path)
    torch.save(as_2018(DensityClassifier(SIZE, HIDDEN)), tmp_path / RESIDUAL)
    with pytest.raises(CheckpointError, match=r"do not fit|not a"):
        load_model(generator)


def test_restore_runs_the_release_folder_from_the_command_line(tmp_path):
    generator = release_folder(tmp_path / "DID-MDN")
    rainy = np.random.default_rng(1).integers(0, 255, (80, 96, 3), dtype=np.uint8)
    Image.fromarray(rainy).save(tmp_path / "rainy.png")
    code = main(["restore", str(tmp_path / "rainy.png"), "--weights", str(generator), "-o", str(tmp_path / "out")])
    assert code == 0
    restored = np.asarray(Image.open(tmp_path / "out" / "rainy.png"))
    assert restored.shape == rainy.shape and restored.min() < 5 and restored.max() > 250


def test_the_whole_pipeline_saved_as_one_file_loads_the_same(tmp_path):
    model = load_model(release_folder(tmp_path / "DID-MDN"))
    single = resave_weights(tmp_path / "DID-MDN" / GENERATOR, tmp_path / "did-mdn-release.safetensors", dtype=None)
    again = load_model(single)
    image = formula_image((1, 3, SIZE, SIZE), phase=0.7).clamp(0, 1)
    with torch.no_grad():
        torch.testing.assert_close(restoring_forward(again, image), restoring_forward(model, image))
    assert again.hparams == model.hparams
