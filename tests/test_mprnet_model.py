import json

import pytest
import torch

from mprnet.models.mprnet import PRESETS, MPRNet

from conftest import DATA, SHARED_GOLDEN
from formula import formula_cases, formula_network, outputs_of, stored_outputs


@pytest.mark.parametrize("task", ["deblur", "denoise", "derain"])
def test_state_dict_keys_and_shapes_match_the_published_network(task):
    manifest = json.loads((DATA / f"keys_{task}.json").read_text())
    model = MPRNet(**PRESETS[task])
    shapes = {key: list(value.shape) for key, value in model.state_dict().items()}
    assert list(shapes) == list(manifest["keys"])
    assert shapes == manifest["keys"]
    assert sum(p.numel() for p in model.parameters()) == manifest["num_parameters"]


@pytest.mark.parametrize("batch_patches", [True, False])
def test_the_reference_implementations_vectors_all_three_stages(tiny_config, batch_patches):
    """Against the reference MPRNet's outputs (seeded random weights), kept in ../shared/golden."""
    if not (SHARED_GOLDEN / "tiny_vectors.pt").exists():
        pytest.skip("the reference vectors are kept in ../shared/golden, which is not present")
    model = MPRNet(**tiny_config, batch_patches=batch_patches).eval()
    model.load_state_dict(torch.load(SHARED_GOLDEN / "tiny_checkpoint.pth", weights_only=True)["state_dict"])
    vectors = torch.load(SHARED_GOLDEN / "tiny_vectors.pt", weights_only=True)
    with torch.no_grad():
        for image, expected in zip(vectors["inputs"], vectors["outputs"]):
            for produced, reference in zip(model(image), expected):
                assert (produced - reference).abs().max() <= 1e-5


@pytest.mark.parametrize("batch_patches", [True, False])
def test_formula_vectors_all_three_stages(batch_patches):
    """Against this implementation's outputs with formula weights, made when it matched the reference's."""
    model = formula_network("mprnet")
    model.batch_patches = batch_patches
    for (image, label), expected in zip(formula_cases("mprnet"), stored_outputs("mprnet"), strict=True):
        for produced, reference in zip(outputs_of(model, image, label), expected, strict=True):
            assert (produced - reference).abs().max() <= 1e-5


def test_batched_patches_equal_one_call_per_patch(tiny_config):
    torch.manual_seed(0)
    model = MPRNet(**tiny_config).eval()
    image = torch.rand(2, 3, 48, 80)
    with torch.no_grad():
        batched = model(image)
        model.batch_patches = False
        reference = model(image)
    for a, b in zip(batched, reference):
        assert torch.allclose(a, b, atol=1e-6)


def test_sizes_that_are_not_multiples_of_8_are_refused_with_a_clear_message(tiny_config):
    with pytest.raises(ValueError, match="multiples of 8"):
        MPRNet(**tiny_config)(torch.rand(1, 3, 30, 32))


def test_one_prelu_is_shared_by_every_block():
    model = MPRNet(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
    prelus = {id(m) for m in model.modules() if isinstance(m, torch.nn.PReLU)}
    assert len(prelus) == 1
