"""Which tile size and how many threads per process restore fastest on this CPU, side by side in one run.

Tiles: seconds per megapixel of the bundled denoiser restoring one photo-sized image with tiles of each size (32 px
overlap, so small tiles redo more pixels) and whole, at the given precision; the tile the engine picks by itself
(`infer.auto_tile`) is marked. Threads: photos per minute of 256 px crops, one process using every core against
one process per core with one thread each (as `torchrun --nproc_per_node` gives on a CPU).

    python benchmarks/tile_threads.py [--size 1024x768] [--tiles 256 384 512 768] [--precision auto] [--crops 8]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from mprnet.infer import Engine, auto_tile, cpu_name, pick_device
from mprnet.restorers import get_restorer


def _image(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


def seconds(engine: Engine, image: np.ndarray) -> float:
    start = time.perf_counter()
    engine(image)
    return time.perf_counter() - start


def tile_table(width: int, height: int, tiles: list[int], precision: str) -> None:
    image = _image(width, height)
    megapixels = width * height / 1e6
    picked = get_restorer("denoise", precision=precision, device="cpu")
    assert isinstance(picked, Engine)
    chosen = auto_tile(picked.model, pick_device("cpu"), picked.multiple)
    memory_only = auto_tile(picked.model, pick_device("cpu"), picked.multiple, fit_cache=False)
    print(
        f"tiles: bundled denoiser, {width}x{height}, precision {precision}; the engine's choice: {chosen} px "
        f"(cache-sized), {memory_only} px by memory alone (the choice before)"
    )
    picked(image[:64, :64])  # warm up
    results = {}
    for tile in [*sorted({*tiles, chosen, memory_only}), 0]:
        engine = Engine(picked.model, device="cpu", precision=precision, tile=tile)
        results[tile] = seconds(engine, image) / megapixels
        label = "whole" if tile == 0 else f"{tile} px"
        print(f"  {label:>8s}: {engine.count_tiles(height, width):3d} tiles  {results[tile]:6.2f} s/MP", flush=True)
    best = min(results, key=results.__getitem__)
    print(f"  fastest: {'whole' if best == 0 else f'{best} px'} ({results[best]:.2f} s/MP)")
    print(f"  cache-sized tiles against memory-sized ones: {results[memory_only] / results[chosen]:.2f}x faster")


def _crops_per_minute(crops: int, precision: str, threads: int) -> float:
    torch.set_num_threads(threads)
    restorer = get_restorer("denoise", precision=precision, device="cpu", tile=0)
    restorer(_image(64, 64))
    start = time.perf_counter()
    for index in range(crops):
        restorer(_image(256, 256, index))
    return crops / (time.perf_counter() - start) * 60


def thread_table(crops: int, precision: str) -> None:
    cores = os.cpu_count() or 1
    print(f"threads: bundled denoiser, {crops} crops of 256 px per process, precision {precision}, {cores} cores")
    whole = _crops_per_minute(crops, precision, cores)
    print(f"  1 process x {cores} threads: {whole:6.1f} crops/min", flush=True)
    with ProcessPoolExecutor(cores) as pool:
        shares = list(pool.map(_crops_per_minute, [crops] * cores, [precision] * cores, [1] * cores))
    print(f"  {cores} processes x 1 thread: {sum(shares):6.1f} crops/min ({sum(shares) / whole:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of the tiled image (default: 1024x768)")
    parser.add_argument("--tiles", nargs="+", type=int, default=[256, 384, 512])
    parser.add_argument("--precision", default="auto", choices=["fp32", "bf16", "auto"])
    parser.add_argument("--crops", type=int, default=8, help="crops per process in the thread table (default: 8)")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.lower().split("x"))
    print(f"{cpu_name()}, torch {torch.__version__}")
    tile_table(width, height, args.tiles, args.precision)
    thread_table(args.crops, args.precision)


if __name__ == "__main__":
    main()
