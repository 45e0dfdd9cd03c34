"""Where CPU inference time goes, and what the levers are worth, side by side in one run.

Profiles the bundled model's forward pass (the engine's path: patches batched, channels-last, inference mode) on a
256 x 256 crop with torch.profiler and prints the share of time per operator. Then times, interleaved on the same
input, the engine's path against: contiguous memory, and `torch.compile` of the forward (inductor, C++ on the CPU),
with seconds per megapixel, the ratio to the engine's path and the largest difference from it. Names the CPU.

    python benchmarks/cpu_profile.py [--task denoise] [--size 256] [--repeats 3] [--threads N] [--no-compile]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections import defaultdict
from functools import partial

import torch
from torch.profiler import ProfilerActivity, profile

import mprnet
from mprnet.infer import cpu_name
from mprnet.models.registry import restoring_forward

from timing import interleaved_medians


def operator_shares(model: torch.nn.Module, image: torch.Tensor) -> list[tuple[str, float]]:
    """(operator, share of self CPU time) over one forward pass, largest first."""
    with torch.inference_mode():
        restoring_forward(model, image)  # warm-up: oneDNN primitives are created on first use
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            restoring_forward(model, image)
    totals: dict[str, float] = defaultdict(float)
    for event in profiler.key_averages():
        totals[event.key] += event.self_cpu_time_total
    whole = sum(totals.values())
    return sorted(((name, value / whole) for name, value in totals.items()), key=lambda item: -item[1])


def timed(paths: dict, image: torch.Tensor, repeats: int) -> dict[str, tuple[float, torch.Tensor]]:
    """Median seconds and output of each path, runs interleaved so that machine load slows every path alike."""
    outputs = {}
    with torch.inference_mode():
        for name, forward in paths.items():
            started = time.perf_counter()
            outputs[name] = forward(image)
            print(f"  first call of {name}: {time.perf_counter() - started:.1f} s", flush=True)
        medians = interleaved_medians({name: partial(forward, image) for name, forward in paths.items()}, repeats)
    return {name: (medians[name], outputs[name]) for name in paths}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="denoise")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = mprnet.load_model(args.task).eval()
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    image_last = image.contiguous(memory_format=torch.channels_last)
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"bundled {args.task} model ({model.architecture}), {args.size}x{args.size}, fp32\n")
    print("share of forward time per operator (engine's path):")
    for name, share in operator_shares(last, image_last)[:12]:
        print(f"  {share:6.1%}  {name}")

    paths = {
        "engine (channels-last)": lambda x: restoring_forward(last, x.contiguous(memory_format=torch.channels_last)),
        "contiguous": lambda x: restoring_forward(model, x),
    }
    if not args.no_compile:
        compiled = torch.compile(last)
        paths["torch.compile"] = lambda x: restoring_forward(compiled, x.contiguous(memory_format=torch.channels_last))
    print()
    results = timed(paths, image, args.repeats)
    base_seconds, base_output = results["engine (channels-last)"]
    megapixels = args.size * args.size / 1e6
    print(f"\n{'path':<24} {'s/MP':>7} {'x engine':>9} {'max |diff|':>11}")
    for name, (seconds, output) in results.items():
        difference = float((output.float() - base_output.float()).abs().max())
        print(f"{name:<24} {seconds / megapixels:7.2f} {base_seconds / seconds:9.2f} {difference:11.2e}")


if __name__ == "__main__":
    main()
