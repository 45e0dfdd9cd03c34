import json
from pathlib import Path

import pytest
import torch

import mprnet

DATA = Path(__file__).parent / "data"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: The reference implementations' vectors, where ../shared is present (tests/formula.py says what stands in).
SHARED_GOLDEN = SHARED_DATA.parent / "golden"

# The test networks are tiny: one thread beats the overhead of sharing their small tensors between cores.
torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> dict:
    return json.loads((DATA / "tiny_config.json").read_text())


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny MPRNet (tiny_config.json) with formula weights, saved as the reference implementation saves its
    checkpoints ({"state_dict": ...})."""
    from formula import formula_weights

    path = tmp_path_factory.mktemp("tiny") / "tiny_checkpoint.pth"
    torch.save({"state_dict": formula_weights("mprnet")}, path)
    return path


@pytest.fixture
def tiny_model(tiny_checkpoint):
    return mprnet.load_model(tiny_checkpoint)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
