"""The study's cost table: parameters, MACs, latency and peak memory of every architecture and preset, and of the
bundled models, measured with `mprnet.complexity`; rows are cached so a rerun reports the same figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import bundled_models, load_model, read_metadata
from ..complexity import count_macs, count_parameters, measure_latency, peak_cpu_memory
from ..files import atomic_path
from ..infer import autocast, cpu_has_fast_bf16
from ..models.registry import create_model, describe, list_models, restoring_forward

MAC_SHAPES = {"256x256": (1, 3, 256, 256), "1280x720": (1, 3, 720, 1280)}


@dataclass(frozen=True)
class CostSettings:
    """Where and how latency and memory are measured (MACs are always counted at `MAC_SHAPES`)."""

    size: int = 128
    repeats: int = 3
    warmup: int = 1
    memory: bool = True

    def key(self) -> str:
        return f"{self.size}-{self.repeats}-{self.warmup}-{self.memory}-{torch.cuda.is_available()}"


def precisions(device: str) -> tuple[str, ...]:
    """bf16 is timed on GPUs and on CPUs with native bf16; emulated, it is 20-30 times slower than fp32 here."""
    return ("fp32", "bf16") if device == "cuda" or cpu_has_fast_bf16() else ("fp32",)


def bundled_configs() -> dict[str, list[str]]:
    """Configuration (sorted JSON) -> the bundled models that have it, read from the files' metadata alone."""
    found: dict[str, list[str]] = {}
    for name, path in bundled_models().items():
        config = json.loads(read_metadata(path)["config"])
        found.setdefault(json.dumps(config, sort_keys=True), []).append(name)
    return found


def macs(model: nn.Module, shape: tuple[int, ...] = MAC_SHAPES["256x256"]) -> int:
    """MACs of one restoring pass at `shape`, counted on the meta device."""
    return count_macs(model, shape, forward=restoring_forward)


def measure_row(name: str, model: nn.Module, settings: CostSettings) -> dict:
    """One row of the cost table: parameters (M), GMACs at each of `MAC_SHAPES`, latency in ms, peak memory in MiB."""
    model = model.eval()
    row = {"model": name, "architecture": describe(model).architecture, "parameters_M": count_parameters(model) / 1e6}
    row.update({f"GMACs_{label}": macs(model, shape) / 1e9 for label, shape in MAC_SHAPES.items()})
    shape = (1, 3, settings.size, settings.size)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for precision in precisions(device):
            row[f"ms_{device}_{precision}"] = _latency(model, shape, device, precision, settings) * 1e3
    model.to("cpu")
    if settings.memory:
        row["peak_MiB_cpu"] = peak_cpu_memory(partial(_forward_model, model, shape))["growth"] / 2**20
    return row


def _latency(model: nn.Module, shape: tuple[int, ...], device: str, precision: str, settings: CostSettings) -> float:
    model.to(device)
    image = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(device)

    def run() -> None:
        with torch.no_grad(), autocast(torch.device(device), precision):
            restoring_forward(model, image)

    return measure_latency(run, settings.repeats, settings.warmup, device=device)["median"]


def _forward_model(model: nn.Module, shape: tuple[int, ...]) -> None:
    with torch.no_grad():
        restoring_forward(model, torch.rand(shape))


def cost_table(
    cache_path: Path,
    settings: CostSettings,
    names: list[str] | None = None,
    include_bundled: bool = True,
    progress=None,
) -> list[dict]:
    """Rows for `names` (default: every distinct configuration, `list_models()`) and the bundled models, measured
    once per settings and cached.
    A bundled model shares the row of the preset it equals (its weights change none of the figures)."""
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    bundled = bundled_configs() if include_bundled else {}
    models = {}  # cache key -> (row label, builder)
    for name in list_models() if names is None else names:
        with torch.device("meta"):
            config = json.dumps(create_model(name).hparams, sort_keys=True)
        same = bundled.pop(config, None)
        models[name] = (f"{name} (= bundled {'/'.join(same)})" if same else name, partial(create_model, name))
    for same in bundled.values():
        label = f"bundled {'/'.join(same)}"
        models[label] = (label, partial(load_model, same[0]))
    if progress is not None:
        progress.reset(total=len(models))
    rows = []
    for name, (label, build) in models.items():
        key = f"{name}@{settings.key()}"
        if key not in cache:
            torch.manual_seed(0)
            cache[key] = measure_row(name, build(), settings)
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache_path) as temporary:
                temporary.write_text(json.dumps(cache, indent=1))
        rows.append({**cache[key], "model": label})
        if progress is not None:
            progress.update(1)
    return rows


def bf16_note() -> str:
    """How to read the bf16 CPU column on this machine."""
    return (
        ""
        if cpu_has_fast_bf16()
        else "bf16 is not timed on this CPU: without native bf16 arithmetic "
        "(AVX512-BF16 or AMX) it is emulated, and measured 20-30 times slower than fp32."
    )
