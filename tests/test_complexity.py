from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

import mprnet
from mprnet.complexity import count_macs, count_parameters, measure_latency, peak_cpu_memory, peak_cuda_memory
from mprnet.errors import MetricError

TINY = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)


def test_conv2d_macs_by_hand():
    conv = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)
    # Every output value (16 channels x 32 x 32) takes 3 x 3 x 3 multiply-accumulates.
    assert count_macs(conv, (1, 3, 32, 32)) == 16 * 32 * 32 * 3 * 3 * 3
    assert count_macs(conv, (2, 3, 32, 32)) == 2 * 16 * 32 * 32 * 27


def test_matmul_macs_by_hand():
    assert count_macs(nn.Linear(10, 4), (5, 10)) == 5 * 10 * 4
    assert count_macs(nn.Identity(), (2, 3, 7), forward=lambda _, x: x @ x.transpose(1, 2)) == 2 * 3 * 3 * 7


def test_meta_and_real_device_count_the_same():
    model = mprnet.create_model("mprnet", **TINY)
    assert count_macs(model, (1, 3, 16, 16)) == count_macs(model, (1, 3, 16, 16), device="cpu") > 0
    assert next(model.parameters()).device.type == "cpu"  # the meta count left the model alone


def test_mprnet_macs_grow_with_pixels():
    model = mprnet.create_model("mprnet", **TINY)
    small, large = count_macs(model, (1, 3, 16, 16)), count_macs(model, (1, 3, 32, 32))
    # Convolutions scale with the pixels; only the channel attention's 1 x 1 layers on pooled vectors do not.
    assert 3.9 * small < large < 4 * small


def test_shared_prelu_counts_once():
    model = mprnet.create_model("mprnet", **TINY)
    state_dict = model.state_dict()
    prelu = next(m for m in model.modules() if isinstance(m, nn.PReLU)).weight
    prelu_keys = [key for key, value in state_dict.items() if value.data_ptr() == prelu.data_ptr()]
    assert len(prelu_keys) > 1
    assert count_parameters(model) == sum(v.numel() for v in state_dict.values()) - (len(prelu_keys) - 1)


def test_published_deblur_preset_size():
    model = mprnet.create_model("mprnet-deblur")
    assert count_parameters(model) == pytest.approx(20.1e6, rel=0.01)
    assert 700e9 < count_macs(model, (1, 3, 256, 256)) < 800e9


def test_latency_statistics():
    calls = []
    result = measure_latency(lambda: calls.append(1), repeats=5, warmup=3)
    assert len(calls) == 8
    assert result["repeats"] == 5
    assert 0 <= result["min"] <= result["median"] <= result["max"]
    with pytest.raises(MetricError):
        measure_latency(lambda: None, repeats=0)


def allocate_and_touch(megabytes: int) -> None:
    np.ones(megabytes * 2**20, dtype=np.uint8)


def test_peak_cpu_memory_sees_a_known_allocation():
    memory = peak_cpu_memory(partial(allocate_and_touch, 150))
    assert 145 * 2**20 < memory["growth"] < 165 * 2**20  # the kernel updates its counters in batches
    assert memory["peak"] == memory["baseline"] + memory["growth"]
    assert memory["baseline"] > 10 * 2**20  # a Python process with torch imported


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_peak_cuda_memory_sees_a_known_allocation():
    before = torch.cuda.memory_allocated()
    peak = peak_cuda_memory(lambda: torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda"))
    assert peak - before >= 64 * 2**20
