import json
from pathlib import Path

import pytest
import torch

import mprnet

DATA = Path(__file__).parent / "data"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The test networks are tiny: one thread beats the overhead of sharing their small tensors between cores.
torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> dict:
    return json.loads((DATA / "tiny_config.json").read_text())


@pytest.fixture
def tiny_model(tiny_config):
    return mprnet.load_model(DATA / "tiny_checkpoint.pth")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
