"""Print what each MPRNet preset costs: parameters, MACs, latency and peak memory.

Usage:
    python benchmarks/complexity_presets.py                       # CPU, latency at 128 x 128
    python benchmarks/complexity_presets.py --device cuda --size 256 --repeats 20
"""

from __future__ import annotations

import argparse
from functools import partial

import torch

import mprnet
from mprnet.complexity import (
    count_macs,
    count_parameters,
    forward_once,
    measure_latency,
    peak_cpu_memory,
    peak_cuda_memory,
)
from mprnet.models import get_architecture

PRESETS = [f"mprnet-{preset}" for preset in get_architecture("mprnet").presets]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=128, help="image side for latency and memory")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--memory", action="store_true", help="also measure peak memory (CPU: one child process each)")
    args = parser.parse_args()
    shape = (1, 3, args.size, args.size)
    card = torch.cuda.get_device_name(args.device) if "cuda" in args.device else "cpu"
    print(
        f"device {args.device} ({card}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"latency and memory at {args.size}x{args.size}"
    )
    for name in PRESETS:
        model = mprnet.create_model(name).eval()
        row = {
            "parameters (M)": count_parameters(model) / 1e6,
            "GMACs@256": count_macs(model) / 1e9,
            f"GMACs@{args.size}": count_macs(model, shape) / 1e9,
        }
        model.to(args.device)
        image = torch.rand(shape, device=args.device)
        run = partial(_forward, model, image)
        latency = measure_latency(run, args.repeats, args.warmup, device=args.device)
        row["median ms"], row["min ms"] = latency["median"] * 1e3, latency["min"] * 1e3
        if args.memory:
            row["peak MiB"] = _peak_memory(name, model, run, shape, args.device) / 2**20
        print(f"{name:<16}" + "  ".join(f"{key} {value:9.2f}" for key, value in row.items()), flush=True)


@torch.no_grad()
def _forward(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    return model(image)


def _peak_memory(name: str, model, run, shape: tuple[int, ...], device: str) -> float:
    """CUDA: most bytes allocated during a forward (weights included); CPU: RSS growth of a fresh process that
    builds the model and runs one forward."""
    if "cuda" in device:
        return peak_cuda_memory(run, device)
    return peak_cpu_memory(partial(forward_once, name, shape))["growth"]


if __name__ == "__main__":
    main()
