"""The CPU backends side by side on the bundled models: seconds per megapixel, quality and peak memory.

For each bundled model: torch eager fp32, torch at `--precision auto`, torch.compile (where it compiles within
--compile-limit seconds), onnxruntime, OpenVINO f32 and bf16, and OpenVINO int8 where the rule
(`mprnet.backends.INT8_LOSS_DB`) allows it. Each restores a 256x256 crop of a validation photo (val/mcmaster18,
degraded with the task's default level, seed 0) as one tile; the median of interleaved runs (so that the load of a
shared machine slows every candidate alike) gives seconds per megapixel, extrapolated to a 4000x3000 photo against
today's `--precision auto`. Quality: PSNR against torch fp32's output and against the clean crop. Then one larger
photo (../shared/data/photos, 1024x768) through the tiled engine, and the peak resident memory of one restore per
backend (a child process each). The table is written to docs/results/backends_<cpu kind>.txt.

With --int8-rule, instead: the PSNR that int8 loses against fp32 on 128 px crops of the 18 validation photos per
task (calibrated on train/bsds432), the figures of `INT8_LOSS_DB`.

    python benchmarks/backends.py [--tasks deblur denoise derain] [--repeats 3] [--photo-task denoise]
    python benchmarks/backends.py --int8-rule
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import mprnet
from mprnet import backends
from mprnet.complexity import peak_cpu_memory
from mprnet.degrade import seeded_rng
from mprnet.files import atomic_path
from mprnet.infer import Engine, cpu_name
from mprnet.metrics import psnr
from mprnet.tasks import TASKS, make_degradation

from timing import interleaved_medians

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
VALIDATION = SHARED / "val" / "mcmaster18"
PHOTOS = SHARED / "photos"
TASK_NAMES = ("deblur", "denoise", "derain")
#: A 4000x3000 photo, in megapixels: the issue's target is 3x today's `--precision auto` on it.
TARGET_MEGAPIXELS = 12.0


def degraded_crop(path: Path, task: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, degraded) centre crop of a photo, degraded by the task's default level with the photo's seed."""
    clean = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    top, left = (clean.shape[0] - height) // 2, (clean.shape[1] - width) // 2
    clean = np.ascontiguousarray(clean[top : top + height, left : left + width])
    degraded, _ = make_degradation(task)(clean, seeded_rng(0, path.name))
    return clean, degraded.astype(np.float32)


def quality(task: str, restored: np.ndarray, reference: np.ndarray) -> float:
    return psnr(restored, reference, y_channel=TASKS[task].comparison_protocol == "y")


def candidates(model: torch.nn.Module, tile: int, compile_limit: float) -> tuple[dict[str, Engine], list[str]]:
    """The engines to compare, by label, and the notes on those left out (torch.compile is not tried again once it
    failed for one model: on two shared cores each try costs minutes)."""
    engines = {
        "torch fp32": Engine(model, device="cpu", precision="fp32", tile=tile),
        "torch auto": Engine(model, device="cpu", precision="auto", tile=tile),
    }
    notes = []
    compiled = compiled_engine(model, tile, compile_limit) if not _COMPILE_FAILED and compile_limit > 0 else None
    if compile_limit <= 0:
        notes.append("torch.compile: left out (--compile-limit 0; benchmarks/cpu_profile.py measures it)")
    elif compiled is None:
        notes.append(f"torch.compile: not tried again (for {_COMPILE_FAILED[0]})")
    elif isinstance(compiled, str):
        notes.append(compiled)
        _COMPILE_FAILED.append(f"{backends.task_of(model)}, {compiled}")
    else:
        engines["torch.compile auto"] = compiled
    for label, backend, precision in (
        ("onnxruntime fp32", "onnxruntime", "fp32"),
        ("openvino f32", "openvino", "fp32"),
        ("openvino bf16", "openvino", "bf16"),
        ("openvino int8", "openvino-int8", "auto"),
    ):
        try:
            engines[label] = backends.make_engine(model, backend, device="cpu", precision=precision, tile=tile)
        except backends.BackendError as error:
            notes.append(f"{label}: left out ({error})")
    return engines, notes


#: Why torch.compile failed, once it has (the first model's note).
_COMPILE_FAILED: list[str] = []


class _TooSlow(Exception):
    pass


def compiled_engine(model: torch.nn.Module, tile: int, limit: float) -> Engine | str:
    """A `--precision auto` engine whose network is `torch.compile`d and compiled once, or why there is none."""
    engine = Engine(model, device="cpu", precision="auto", tile=tile)
    engine.model = torch.compile(engine.model)

    def stop(*_):
        raise _TooSlow

    started = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        engine.restore_tensor(torch.rand(1, 3, tile, tile))
    except _TooSlow:
        return f"torch.compile: left out, it had not compiled after {limit:.0f} s"
    except Exception as error:  # the compiler's failures are many and varied: say which, and go on
        return f"torch.compile: left out, it failed ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    print(f"  torch.compile compiled in {time.perf_counter() - started:.0f} s", flush=True)
    return engine


def speed_table(task: str, engines: dict[str, Engine], side: int, repeats: int) -> list[dict]:
    clean, degraded = degraded_crop(sorted(VALIDATION.glob("*.png"))[0], task, side, side)
    tensor = torch.from_numpy(degraded).permute(2, 0, 1)[None]
    calls: dict[str, Callable[[], object]] = {
        label: partial(engine.restore_tensor, tensor) for label, engine in engines.items()
    }
    outputs = {label: call() for label, call in calls.items()}  # warm-up, and the outputs to score
    seconds = interleaved_medians(calls, repeats)
    reference = outputs["torch fp32"][0].permute(1, 2, 0).numpy()
    rows = []
    for label, output in outputs.items():
        restored = output[0].permute(1, 2, 0).numpy()
        rows.append(
            {
                "label": label,
                "s_per_mp": seconds[label] / (side * side / 1e6),
                "vs_fp32": quality(task, restored, reference),
                "vs_clean": quality(task, restored, clean),
            }
        )
    return rows


def format_speed(task: str, rows: list[dict]) -> list[str]:
    today = next(row["s_per_mp"] for row in rows if row["label"] == "torch auto")
    lines = [
        f"{task}: 256x256 crop of a degraded validation photo, one tile",
        f"  {'candidate':20} {'s/MP':>7} {'x auto':>7} {'4000x3000':>10} {'dB vs fp32':>11} {'dB vs clean':>12}",
    ]
    for row in rows:
        lines.append(
            f"  {row['label']:20} {row['s_per_mp']:7.2f} {today / row['s_per_mp']:6.2f}x "
            f"{row['s_per_mp'] * TARGET_MEGAPIXELS:8.0f} s {row['vs_fp32']:11.1f} {row['vs_clean']:12.2f}"
        )
    return lines


def photo_figures(model: torch.nn.Module, task: str, labels: list[str], engines: dict[str, Engine]) -> list[str]:
    """One 1024x768 photo through the tiled engine (its own tile choice), once per candidate, interleaved."""
    _, degraded = degraded_crop(sorted(PHOTOS.glob("*.jpg"))[0], task, 1024, 768)
    tensor = torch.from_numpy(degraded).permute(2, 0, 1)[None]
    tiled = {  # the engine's own tile choice (the table's candidates restore one tile)
        label: Engine(model, device="cpu", precision=engines[label].precision, forward=engines[label].forward)
        for label in labels
        if label in engines
    }
    seconds = interleaved_medians({label: partial(engine.restore_tensor, tensor) for label, engine in tiled.items()}, 1)
    tile = next(iter(tiled.values())).tile
    lines = [f"{task}: a 1024x768 photo through the tiled engine ({tile} px tiles, overlap 32), one run each"]
    today = seconds["torch auto"]
    for label, value in seconds.items():
        lines.append(f"  {label:20} {value / (1024 * 768 / 1e6):7.2f} s/MP {today / value:6.2f}x")
    return lines


def restore_once(task: str, backend: str, precision: str, side: int) -> None:
    """A picklable job for `peak_cpu_memory`: load the bundled model and restore one random crop."""
    engine = backends.make_engine(mprnet.load_model(task), backend, device="cpu", precision=precision, tile=side)
    engine.restore_tensor(torch.rand(1, 3, side, side))


def memory_figures(task: str, labels: list[str], side: int) -> list[str]:
    settings = {
        "torch fp32": ("torch", "fp32"),
        "torch auto": ("torch", "auto"),
        "onnxruntime fp32": ("onnxruntime", "fp32"),
        "openvino f32": ("openvino", "fp32"),
        "openvino bf16": ("openvino", "bf16"),
        "openvino int8": ("openvino-int8", "auto"),
    }
    lines = [f"{task}: peak resident memory of loading the model and restoring one {side}x{side} tile (child process)"]
    for label in labels:
        if label in settings:
            peak = peak_cpu_memory(partial(restore_once, task, *settings[label], side))["peak"]
            lines.append(f"  {label:20} {peak / 2**20:7.0f} MiB")
    return lines


def int8_rule(tasks: list[str], side: int) -> list[str]:
    """The PSNR int8 loses against fp32 per task, on centre crops of every validation photo."""
    lines = [f"int8 rule: mean PSNR against the clean crop over {side} px centre crops of val/mcmaster18 (18 photos)"]
    measured = {}
    for task in tasks:
        model = mprnet.load_model(task)
        fp32 = Engine(model, device="cpu", precision="fp32", tile=0)
        precision = backends.choose("openvino-int8", "auto").precision
        forward = backends.build_forward(model, "openvino-int8", precision)
        int8 = Engine(model, device="cpu", precision=precision, tile=0, forward=forward)
        scores: dict[str, list[float]] = {"fp32": [], "int8": []}
        for path in sorted(VALIDATION.glob("*.png")):
            clean, degraded = degraded_crop(path, task, side, side)
            for name, engine in (("fp32", fp32), ("int8", int8)):
                scores[name].append(quality(task, engine(degraded), clean))
        loss = float(np.mean(scores["fp32"]) - np.mean(scores["int8"]))
        measured[task] = round(loss, 3)
        verdict = "allowed" if loss <= backends.INT8_MAX_LOSS_DB else "refused"
        lines.append(
            f"  {task:8} fp32 {np.mean(scores['fp32']):6.2f} dB  int8 ({precision} elsewhere) "
            f"{np.mean(scores['int8']):6.2f} dB  loss {loss:5.2f} dB  -> {verdict}"
        )
        print(lines[-1], flush=True)
    lines.append(f"  INT8_LOSS_DB = {measured}")
    return lines


def write_results(lines: list[str], name: str) -> Path:
    """The lines, after the command that printed them, as docs/results/<name>_<cpu kind>.txt."""
    path = ROOT / "docs" / "results" / f"{name}_{backends.cpu_kind()}.txt"
    command = " ".join(["python benchmarks/backends.py", *sys.argv[1:]])
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join([f"$ {command}", *lines]) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES, default=list(TASK_NAMES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument(
        "--compile-limit", type=float, default=240, help="seconds torch.compile may take (per model; 0: leave it out)"
    )
    parser.add_argument("--photo-task", default="denoise", help="the model restoring the larger photo (none: skip)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--int8-rule", action="store_true", help="measure the int8 rule instead")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/results alone")
    args = parser.parse_args()
    header = f"{cpu_name()}, kind {backends.cpu_kind()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    print(header, flush=True)
    lines = [header]
    if args.int8_rule:
        lines += int8_rule(args.tasks, backends.CALIBRATION_SIDE)
    for task in [] if args.int8_rule else args.tasks:
        model = mprnet.load_model(task)
        engines, notes = candidates(model, args.tile, args.compile_limit)
        block = [*format_speed(task, speed_table(task, engines, args.tile, args.repeats)), *(f"  {n}" for n in notes)]
        if task == args.photo_task:
            block += photo_figures(model, task, ["torch auto", "openvino bf16", "openvino int8"], engines)
            if not args.skip_memory:
                block += memory_figures(task, list(engines), args.tile)
        print("\n".join(block), flush=True)
        lines += block
    if not args.no_write:
        print(f"written to {write_results(lines, 'backends_int8_rule' if args.int8_rule else 'backends')}")


if __name__ == "__main__":
    main()
