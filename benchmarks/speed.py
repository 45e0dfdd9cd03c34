"""Inference speed and memory, side by side in one run, same random weights and inputs.

For each MPRNet preset and size: the reference-style forward (one call per patch, fp32, contiguous memory) against
the exact fast path (patches batched, channels-last, inference mode) and the bf16 path (autocast + channels-last).
Prints latency ratios, the largest absolute difference and the PSNR between outputs. With --bundled, instead: seconds
per megapixel of the three bundled models at fp32 and at `--precision auto`, side by side. Then the peak resident memory
of restoring a large photograph tiled (measured in a child process) against whole (measured at smaller sizes in
child processes, extrapolated linearly in pixels where the whole image cannot fit this machine).

    python benchmarks/speed.py [--presets deblur denoise derain] [--sizes 256x256 1280x720] [--repeats 2]
    python benchmarks/speed.py --bundled [--sizes 256x256] --skip-memory
"""

from __future__ import annotations

import argparse
import contextlib
import time
from functools import partial

import numpy as np
import torch

import mprnet
from mprnet.complexity import peak_cpu_memory
from mprnet.infer import Engine, cpu_name
from mprnet.models import get_architecture


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def _interleaved(fns: dict, repeats: int) -> dict[str, tuple[float, torch.Tensor]]:
    """Median seconds and last output of each function, runs interleaved so that load on a shared machine slows
    every path alike; one warm-up call each first."""
    outputs = {name: fn() for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: (float(np.median(times[name])), outputs[name]) for name in fns}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def compare_paths(preset: str, width: int, height: int, repeats: int, precisions: list[str]) -> None:
    torch.manual_seed(0)
    model = mprnet.create_model(preset).eval()
    image = torch.rand(1, 3, height, width)

    def reference():
        model.batch_patches = False
        with torch.no_grad():
            return model.to(memory_format=torch.contiguous_format)(image)[0].clamp(0, 1)

    def run_engine(precision: str):
        engine = Engine(model, device="cpu", precision=precision, tile=0)

        def restore():  # the model is shared with the reference path: put it back in the engine's state each time
            model.batch_patches = True
            model.to(memory_format=torch.channels_last)
            return engine.restore_tensor(image)

        return restore

    labels = {"fp32": "fast exact fp32", "bf16": "bf16 channels-last"}
    paths = {"reference-style fp32": reference, **{labels[p]: run_engine(p) for p in precisions}}
    results = _interleaved(paths, repeats)
    base_time, base = results.pop("reference-style fp32")
    print(f"{preset:8} {width}x{height:<5} reference-style fp32  {base_time:8.2f} s   1.00x")
    for label, (seconds, output) in results.items():
        difference = float((output - base).abs().max())
        print(
            f"{preset:8} {width}x{height:<5} {label:21} {seconds:8.2f} s {base_time / seconds:6.2f}x"
            f"   max |diff| {difference:.2e}   PSNR vs fp32 {_psnr(output, base):6.2f} dB",
            flush=True,
        )


def bundled_table(width: int, height: int, repeats: int) -> None:
    """Seconds per megapixel of each bundled model, whole image, at fp32 and at `--precision auto`, interleaved."""
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    megapixels = width * height / 1e6
    print(f"{'bundled model':14} {'fp32 s/MP':>10} {'auto s/MP':>10} {'auto is':>8} {'x fp32':>7} {'PSNR vs fp32':>13}")
    for task in ("deblur", "denoise", "derain"):
        model = mprnet.load_model(task)
        engines = {
            precision: Engine(model, device="cpu", precision=precision, tile=0) for precision in ("fp32", "auto")
        }
        results = _interleaved(
            {name: partial(engine.restore_tensor, image) for name, engine in engines.items()}, repeats
        )
        (fp32_seconds, fp32_output), (auto_seconds, auto_output) = results["fp32"], results["auto"]
        print(
            f"{task:14} {fp32_seconds / megapixels:10.2f} {auto_seconds / megapixels:10.2f} "
            f"{engines['auto'].precision:>8} {fp32_seconds / auto_seconds:7.2f} "
            f"{_psnr(auto_output, fp32_output):10.1f} dB",
            flush=True,
        )


class _EnoughTiles(Exception):
    pass


def restore_random(preset: str, width: int, height: int, tile: int, max_tiles: int | None) -> None:
    """Restore a random image with a fresh preset; stop after `max_tiles` tiles (memory peaks within the first tile
    and then stays flat, so the rest of a 12-megapixel run would only cost time)."""
    torch.manual_seed(0)
    engine = Engine(mprnet.create_model(preset), device="cpu", tile=tile)
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)

    def stop_early(done: int, total: int) -> None:
        if max_tiles and done >= max_tiles:
            raise _EnoughTiles

    with contextlib.suppress(_EnoughTiles):
        engine(image, progress=stop_early)


def compare_memory(
    preset: str, width: int, height: int, tile: int, max_tiles: int, probe_sizes: list[tuple[int, int]]
) -> None:
    tiled = peak_cpu_memory(partial(restore_random, preset, width, height, tile, max_tiles))
    print(
        f"{preset} {width}x{height} tiled ({tile} px tiles, first {max_tiles} tiles): "
        f"peak resident {tiled['peak'] / 2**30:.2f} GiB"
    )
    per_pixel = []
    for probe_w, probe_h in probe_sizes:
        whole = peak_cpu_memory(partial(restore_random, preset, probe_w, probe_h, 0, None))
        per_pixel.append(whole["growth"] / (probe_w * probe_h))
        print(
            f"{preset} {probe_w}x{probe_h} whole: peak resident {whole['peak'] / 2**30:.2f} GiB "
            f"(growth {whole['growth'] / 2**30:.2f} GiB)"
        )
    estimate = np.mean(per_pixel) * width * height
    print(
        f"{preset} {width}x{height} whole: about {estimate / 2**30:.0f} GiB (extrapolated from the probes; "
        f"does not fit this machine) -> tiling divides peak memory by about {estimate / tiled['peak']:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(get_architecture("mprnet").presets))
    parser.add_argument("--sizes", nargs="+", type=_size, default=[(256, 256), (1280, 720)])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16"],
        choices=["fp32", "bf16"],
        help="fast paths to compare with the reference (bf16 is emulated, so slow, on CPUs without AVX512-BF16/AMX)",
    )
    parser.add_argument("--memory-size", type=_size, default=(4000, 3000))
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--bundled", action="store_true", help="the bundled models at fp32 and --precision auto")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args()
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.bundled:
        for width, height in args.sizes:
            bundled_table(width, height, args.repeats)
    for width, height in [] if args.memory_only or args.bundled else args.sizes:
        for preset in args.presets:
            compare_paths(preset, width, height, args.repeats, args.precisions)
    if not args.skip_memory:
        compare_memory("deblur", *args.memory_size, tile=args.tile, max_tiles=2, probe_sizes=[(256, 256), (512, 384)])


if __name__ == "__main__":
    main()
