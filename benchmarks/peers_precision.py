"""Each published peer configuration under fp32, bf16 and fp16 autocast: agreement with fp32 and speed.

Usage: python benchmarks/peers_precision.py [--device cuda] [--size 512] [--repeats 5]
Weights are random (the released ones are not bundled), perturbed so that no branch is switched off
(NAFNet's residual scales start at zero); the figures show numerical robustness, not restoration quality.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from functools import partial

import torch

from mprnet.models.registry import create_model, list_models, restoring_forward

#: Every configuration of every peer.
PRESETS = [name for name in list_models() if not name.startswith("mprnet")]


def perturbed(name: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name).eval().to(device)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.abs().max() == 0:  # zero-initialised residual scales and biases
                parameter.normal_(0, 0.05)
    return model


def run(model: torch.nn.Module, image: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    context = torch.autocast(image.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    with torch.inference_mode(), context:
        return restoring_forward(model, image).float()


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    image = torch.rand(1, 3, args.size, args.size, device=device)
    precisions = {"fp32": None, "bf16": torch.bfloat16}
    if device.type == "cuda":
        precisions["fp16"] = torch.float16
    print(f"device {device}, input {args.size}x{args.size}; max |output - fp32 output|, ms per image")
    for name in PRESETS:
        model = perturbed(name, device)
        reference = run(model, image, None)
        cells = []
        for label, dtype in precisions.items():
            output = run(model, image, dtype)
            error = (output - reference).abs().max().item()
            seconds = timed(partial(run, model, image, dtype), args.repeats, device)
            cells.append(f"{label} {error:.1e} {seconds * 1e3:7.1f} ms")
        print(f"{name:18s} finite={bool(torch.isfinite(reference).all())}  " + "  ".join(cells))
        del model


if __name__ == "__main__":
    main()
