"""What a network costs: parameters, multiply-accumulates, latency and peak memory.

MACs are half the FLOPs that `torch.utils.flop_counter.FlopCounterMode` counts, which covers convolutions and
matrix products (the bulk of the work) and leaves out element-wise operations, pooling and interpolation.
"""

from __future__ import annotations

import contextlib
import copy
import multiprocessing
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .errors import MetricError

DEFAULT_INPUT_SHAPE = (1, 3, 256, 256)
_PROC_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameter values; a parameter shared by several modules counts once.

    MPRNet's one PReLU appears under dozens of state-dict keys, so counting the state dict would over-count.
    """
    return sum(parameter.numel() for parameter in model.parameters())  # parameters() yields each tensor once


def count_macs(
    model: nn.Module,
    input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE,
    forward: Callable[[nn.Module, torch.Tensor], object] | None = None,
    device: str | torch.device = "meta",
) -> int:
    """Multiply-accumulates of one forward pass on an input of `input_shape`.

    By default the pass runs on a copy of the model on the "meta" device: shapes only, no arithmetic, no memory,
    so even large inputs count instantly. Give a real `device` for networks with operations that lack meta kernels.
    `forward(model, input)` replaces the plain `model(input)` call.
    """
    device = torch.device(device)
    runnable = copy.deepcopy(model).to(device) if device.type == "meta" else model.to(device)
    image = torch.zeros(input_shape, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(runnable, image) if forward else runnable(image)
    return counter.get_total_flops() // 2


def measure_latency(
    fn: Callable[[], object], repeats: int = 10, warmup: int = 2, device: str | torch.device | None = None
) -> dict[str, float]:
    """Seconds per call of `fn()`: median, min, mean and max over `repeats` timed calls after `warmup` untimed ones.

    For a CUDA `device` every call is synchronised, so the times cover the GPU work and not only its launch.
    """
    if repeats < 1 or warmup < 0:
        raise MetricError(f"expected repeats >= 1 and warmup >= 0, found repeats={repeats}, warmup={warmup}")
    synchronize = _synchronizer(device)
    for _ in range(warmup):
        fn()
        synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return {
        "median": statistics.median(times),
        "min": min(times),
        "mean": statistics.fmean(times),
        "max": max(times),
        "repeats": repeats,
    }


def _synchronizer(device: str | torch.device | None) -> Callable[[], None]:
    if device is not None and torch.device(device).type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def peak_cuda_memory(fn: Callable[[], object], device: str | torch.device = "cuda") -> int:
    """The most bytes PyTorch held allocated on a CUDA device while `fn()` ran (weights already there included)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def peak_cpu_memory(fn: Callable[[], object]) -> dict[str, int]:
    """Resident memory, in bytes, of a fresh Python process running `fn()`: `baseline` just before the call,
    `peak` the most during it, and `growth` their difference (what `fn` needed: its weights and activations).

    `fn` runs in a spawned child, so it must be picklable (a module-level function or a `functools.partial` of
    one): in this process, memory that the allocator kept from earlier work would hide part of the need. Linux only
    (it reads the kernel's high-water mark, which `getrusage` cannot reset and even carries over from the parent).
    """
    if not Path(_PROC_STATUS).exists():
        raise MetricError(f"measuring peak CPU memory needs Linux's {_PROC_STATUS}, which this system lacks")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        baseline, peak = pool.apply(_resident_memory_around, (fn,))
    return {"peak": peak, "baseline": baseline, "growth": peak - baseline}


def forward_once(model_name: str, input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE, **overrides) -> None:
    """Build `model_name` (an architecture or preset) and run it once without gradients: a picklable job for
    `peak_cpu_memory`, e.g. `peak_cpu_memory(partial(forward_once, "mprnet-deblur", (1, 3, 256, 256)))`."""
    from .models.registry import create_model, restoring_forward

    model = create_model(model_name, **overrides).eval()
    with torch.no_grad():
        restoring_forward(model, torch.rand(input_shape))


def _resident_memory_around(fn: Callable[[], object]) -> tuple[int, int]:
    """(resident bytes before `fn()`, most resident bytes during it), in the calling process."""
    # Where the reset fails, the mark also covers the imports before the call, so `peak` may read high.
    with contextlib.suppress(OSError):
        Path(_CLEAR_REFS).write_text("5")  # resets the high-water mark to the current size (Linux >= 4.0)
    before = _proc_status_bytes("VmRSS")
    fn()
    return before, max(before, _proc_status_bytes("VmHWM"))


def _proc_status_bytes(field: str) -> int:
    for line in Path(_PROC_STATUS).read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # the kernel writes kilobytes
    raise MetricError(f"{_PROC_STATUS} has no {field} line")
