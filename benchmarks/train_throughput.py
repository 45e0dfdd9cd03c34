"""Training throughput (patches per second), side by side in one run: a reference-style MPRNet training step
(fp32, contiguous memory, stage 1 and 2 sub-networks called once per patch) against the fast path the trainer uses
(patches batched, channels-last, and bf16 autocast where the CPU has native bf16). Steps of the two are
interleaved so that a busy machine slows both alike.

    python benchmarks/train_throughput.py [--preset derain] [--batch 4] [--patch 128] [--steps 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import mprnet
from mprnet.infer import autocast, cpu_has_fast_bf16
from mprnet.models.mprnet import training_loss as mprnet_loss


def make_step(model, batched: bool, precision: str, channels_last: bool):
    loss_fn = mprnet_loss("deblur")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.batch_patches = batched
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory_format).train()
    device = torch.device("cpu")

    def step(degraded: torch.Tensor, clean: torch.Tensor) -> float:
        degraded = degraded.contiguous(memory_format=memory_format)
        with autocast(device, precision):
            outputs = model(degraded)
        loss = loss_fn([o.float() for o in outputs], clean)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="derain")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    fast_precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    torch.manual_seed(0)
    steps = {
        "reference-style (fp32, per patch, contiguous)": make_step(
            mprnet.create_model(args.preset), False, "fp32", channels_last=False
        ),
        f"batched patches ({fast_precision}, contiguous)": make_step(
            mprnet.create_model(args.preset), True, fast_precision, channels_last=False
        ),
        f"batched patches ({fast_precision}, channels-last)": make_step(
            mprnet.create_model(args.preset), True, fast_precision, channels_last=True
        ),
    }
    times = {name: [] for name in steps}
    clean = torch.rand(args.batch, 3, args.patch, args.patch)
    degraded = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    for step in steps.values():
        step(degraded, clean)  # warm-up
    for _ in range(args.steps):
        for name, step in steps.items():
            start = time.perf_counter()
            step(degraded, clean)
            times[name].append(time.perf_counter() - start)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_has_fast_bf16()}; "
        f"MPRNet {args.preset}, batch {args.batch} x {args.patch}x{args.patch}"
    )
    reference = None
    for name, measured in times.items():
        rate = args.batch / float(np.median(measured))
        reference = reference or rate
        print(f"  {name:55} {rate:7.2f} patches/s   {rate / reference:5.2f}x")


if __name__ == "__main__":
    main()
