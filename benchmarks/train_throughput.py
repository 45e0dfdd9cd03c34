"""Training throughput (patches per second), side by side in one run.

On the CPU (the default): a reference-style MPRNet training step (fp32, contiguous memory, stage 1 and 2
sub-networks called once per patch) against the fast path the trainer uses (patches batched, channels-last, and
bf16 autocast where the CPU has native bf16). Steps of the two are interleaved so that a busy machine slows both
alike.

    python benchmarks/train_throughput.py [--preset derain] [--batch 4] [--patch 128] [--steps 6]

With --device cuda: the trainer itself (`mprnet train CONFIG`, from random weights, no validation), in today's
configuration of the bundled runs (three processes of 16 patches of 128 px side by side on one GPU) and in the
one-process configurations that replace it, each for --seconds, one after another in the same call. Prints, per
configuration, patches/s in the steady state (the first third of the logged steps, compilation included, left
out), the GPU's arithmetic in TFLOP/s (training counted as three forward passes, MACs counted on the meta
device), peak memory and the seconds to the first logged step.

    python benchmarks/train_throughput.py --device cuda [--config bundled-denoise] [--seconds 45]
        [--compile-allowance 120] [--set K=V ...]
    python benchmarks/train_throughput.py --trainer --scale 0.0625 --seconds 25 --set model=... (a CPU check)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


#: (processes side by side, batch per process, patch size, compiled) of each configuration the trainer is timed in.
TRAINER_CONFIGURATIONS = {
    "today: 3 processes x 16 of 128 px": (3, 16, 128, False),
    "1 process x 64 of 128 px": (1, 64, 128, False),
    "1 process x 64 of 128 px, compiled": (1, 64, 128, True),
    "1 process x 32 of 256 px": (1, 32, 256, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="derain")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--device", default="cpu", help="cuda: time the trainer's configurations")
    parser.add_argument("--trainer", action="store_true", help="time the trainer's configurations on the CPU too")
    parser.add_argument("--config", default="bundled-denoise", help="the training config the trainer is timed on")
    parser.add_argument("--seconds", type=float, default=45.0, help="time budget of each trainer configuration")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="batch sizes times this (below 1: a check at tiny size)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every run")
    args = parser.parse_args()
    if args.trainer or args.device != "cpu":
        time_trainer(args)
    else:
        time_steps(args)


def time_trainer(args: argparse.Namespace) -> None:
    from mprnet.cli.train import parse_overrides
    from mprnet.train import load_config
    from mprnet.train.objectives import objective_for

    work = Path(tempfile.mkdtemp(prefix="train-throughput-"))
    settings = ["init_weights=null", "val.dir=null", "log_every=5", "checkpoint_every=1000000000"]
    settings += [f"device={args.device}", *args.set]
    model = objective_for(load_config(args.config, parse_overrides(settings))).build_model()
    print(f"torch {torch.__version__}, {_device_name(args.device)}; {args.config}, {args.seconds:g} s each")
    print("| configuration | patches/s | TFLOP/s | peak memory, MiB | s to first step |")
    print("|---|---|---|---|---|")
    for name, configuration in TRAINER_CONFIGURATIONS.items():
        print(f"| {name} | {time_configuration(args, model, settings, configuration, work / str(len(name)))} |")


def time_configuration(args, model, settings: list[str], configuration: tuple, work: Path) -> str:
    """One row's figures: the configuration's processes trained side by side for --seconds (compiled ones get
    --compile-allowance more, which their first step takes)."""
    from mprnet.complexity import count_macs

    processes, batch, patch, compiled = configuration
    batch = max(1, round(batch * args.scale))
    budget = args.seconds + args.compile_allowance * compiled
    extra = [f"batch_size={batch}", f"patch_size={patch}", f"compile={str(compiled).lower()}"]
    extra += [f"data.workers={max(1, ((os.cpu_count() or 2) - 2) // processes)}", f"time_budget_s={budget}"]
    runs = [work / f"process-{index}" for index in range(processes)]
    children = []
    for run in runs:
        run.mkdir(parents=True)
        command = [sys.executable, "-m", "mprnet", "train", args.config]
        command += [part for setting in [*settings, *extra, f"out_dir={run}"] for part in ("--set", setting)]
        with open(run / "console.txt", "w") as console:
            children.append(subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT))
    for child in children:
        try:
            child.wait(timeout=budget + 300)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    failed = [run for run, child in zip(runs, children, strict=True) if child.returncode]
    if failed:
        last_line = (failed[0] / "console.txt").read_text().strip().splitlines()[-1:]
        return f"failed: {last_line[0] if last_line else 'killed'} | | |"
    measured = [steady_rate(run, batch) for run in runs]
    if None in measured:
        return "too few steps logged: give more --seconds | | |"
    rates, peaks, firsts = zip(*measured, strict=True)
    rate = sum(rates)
    flops = rate * 3 * 2 * count_macs(model, (1, 3, patch, patch)) / 1e12
    return f"{rate:.0f} | {flops:.1f} | {max(peaks)} | {max(firsts):.0f}"


def steady_rate(run: Path, batch: int) -> tuple[float, int, float] | None:
    """Patches/s over the last two thirds of a run's logged steps, its peak memory and the seconds to its first step
    (None where too few steps were logged)."""
    from mprnet.train.runlog import RunRecord

    record = RunRecord.read(run)
    steps = record.steps
    if len(steps) < 2 or steps[-1]["step"] == steps[len(steps) // 3]["step"]:
        return None
    first, last = steps[len(steps) // 3], steps[-1]
    rate = (last["step"] - first["step"]) * batch / (last["time"] - first["time"])
    return rate, max(entry.get("peak_memory_mib", 0) for entry in steps), steps[0]["time"] - record.began


def _device_name(device: str) -> str:
    from mprnet.infer import cpu_name

    return (
        torch.cuda.get_device_name()
        if device.startswith("cuda")
        else f"{cpu_name()}, {torch.get_num_threads()} threads"
    )


def time_steps(args: argparse.Namespace) -> None:
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
