"""The inference engine: device and precision choice, padding, tiling with smooth blending.

`Engine(model)` is a restorer: `engine(image)` takes a float32 H x W x C array in [0, 1] and returns the restored
image of the same shape, clamped to [0, 1]. Any registered architecture works; the engine pads each input to the
multiple the network needs (reflect, like the reference demo) and crops back. Images larger than the tile are cut
into overlapping tiles whose outputs are blended with weights that fall off linearly across the overlap, so peak
memory is bounded by the tile, not the photograph, and no seam shows.
"""

from __future__ import annotations

import contextlib
import copy
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ImageError, MprnetError
from .models.registry import NUMBER_FORMATS, get_architecture

PRECISIONS = (*NUMBER_FORMATS, "auto")
#: What restoring photos computes in unless told: `auto` is bf16 where it is native and measured equal (a CPU with
#: AVX512-BF16 or AMX: 2.1-2.2x faster at 54.6-55.7 dB from fp32 on the bundled models; GPUs), fp32 elsewhere.
#: Evaluation and the study's quality tables keep fp32, the benchmarks' protocol.
DEFAULT_PRECISION = "auto"
MIN_SIZE = 8
#: Working memory of a forward pass per input pixel and per feature channel, in bytes (fp32, inference mode),
#: measured on MPRNet's presets; used to choose a tile that fits the memory at hand.
_BYTES_PER_PIXEL_CHANNEL = 80
_MAX_AUTO_TILE = 1024
#: On a CPU, tiles are no smaller than this, lest the pixels that neighbouring tiles share cost more than the cache
#: saves; and the last-level cache assumed where the system does not say.
_MIN_CACHE_TILE = 256
_DEFAULT_CACHE = 32 << 20

Progress = Callable[[int, int], None]
#: A network's pass on a padded N x C x H x W batch, run by another runtime (`mprnet.backends`).
Forward = Callable[[Tensor], Tensor]


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise MprnetError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise MprnetError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MprnetError(f"device={name!r} was asked for, but PyTorch sees no CUDA GPU here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MprnetError(f"device={name!r} was asked for, but PyTorch sees {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MprnetError("device='mps' was asked for, but this PyTorch has no MPS support")
    return device


def cpu_name() -> str:
    """The processor's model name, whether it has native bf16 and whether it has AMX, to name with every published
    figure (Linux reports the name and the flags in /proc/cpuinfo; platform.processor() is often empty)."""
    name = platform.processor() or platform.machine()
    info = _cpuinfo()
    models = [line for line in info.splitlines() if line.startswith("model name")]
    name = models[0].split(":", 1)[1].strip() if models else name
    amx = ", AMX" if "amx_bf16" in info else ""
    return f"{name} ({'native bf16' if cpu_has_fast_bf16() else 'no native bf16'}{amx})"


def _cpuinfo() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.read_text(errors="replace") if cpuinfo.exists() else ""


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def pick_precision(name: str, device: torch.device) -> str:
    """Resolve `auto` to the fastest precision that keeps outputs within ~45 dB of fp32 on this device."""
    if name not in PRECISIONS:
        raise MprnetError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"
    if name == "fp16" and device.type == "cpu":
        raise MprnetError("fp16 is not supported on the CPU; use precision='bf16' or 'fp32'")
    return name


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def available_memory(device: torch.device) -> int:
    """Bytes that a forward pass may use on `device`."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 4 << 30


def widest_layer(model: nn.Module) -> int:
    return max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=64)


def auto_tile(
    model: nn.Module, device: torch.device, multiple: int, budget_fraction: float = 0.25, fit_cache: bool = True
) -> int:
    """The largest square tile (a multiple of `multiple`, at most 1024) whose forward pass fits the memory budget;
    on a CPU, no larger than `cache_tile` unless `fit_cache` is false."""
    budget = available_memory(device) * budget_fraction
    pixels = budget / (_BYTES_PER_PIXEL_CHANNEL * widest_layer(model))
    side = int(min(_MAX_AUTO_TILE, pixels**0.5))
    if device.type == "cpu" and fit_cache:
        side = min(side, cache_tile(model))
    return max(side // multiple * multiple, multiple * 4, 64)


def cache_tile(model: nn.Module, cache_bytes: int | None = None) -> int:
    """The tile side at which one fp32 feature map of the widest layer fills the CPU's last-level cache (at least
    256 px). A CPU forward costs the least per pixel there: the bundled denoiser took 16.5 s/MP at 320 px against
    28.1 at 768 px in bf16 on a 32 MiB-cache AMD EPYC (`benchmarks/tile_threads.py`)."""
    cache = last_level_cache() if cache_bytes is None else cache_bytes
    return max(_MIN_CACHE_TILE, int((cache / (4 * widest_layer(model))) ** 0.5))


def last_level_cache() -> int:
    """Bytes of the CPU's largest cache as Linux reports it (32 MiB where it does not)."""
    sizes = [_cache_bytes(path) for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size")]
    return max([size for size in sizes if size], default=_DEFAULT_CACHE)


def _cache_bytes(path: Path) -> int:
    try:
        text = path.read_text().strip().upper()
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except (OSError, ValueError, IndexError):
        return 0


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering [0, length) with at least `overlap` pixels shared by neighbours."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def blend_ramp(length: int, overlap: int, taper_start: bool, taper_end: bool) -> Tensor:
    """1-D weights: 1 in the middle, 0 on the outer quarter of the overlap (where a tile's output suffers from
    missing context) and linear in between, on each side that a neighbouring tile shares."""
    position = torch.arange(length, dtype=torch.float32) + 0.5
    margin = overlap // 4
    ramp = torch.ones(length)
    if overlap > 0:
        if taper_start:
            ramp = torch.minimum(ramp, ((position - margin) / (overlap - 2 * margin)).clamp(min=0))
        if taper_end:
            ramp = torch.minimum(ramp, ((length - position - margin) / (overlap - 2 * margin)).clamp(min=0))
    return ramp


class Engine:
    """A network ready to restore images of any size: the restorer (`mprnet.restorers`) of every architecture.

    The engine works on its own copy of the network (in eval mode, on its device and memory layout), so the module
    it was given stays as it was: a model being trained, or one the caller still uses, is never changed."""

    name: str
    title: str
    task: str | None
    summary: str
    kind = "network"
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        tile: int | None = None,
        overlap: int = 32,
        channels_last: bool = True,
        forward: Forward | None = None,
    ):
        self.device = pick_device(str(device))
        self.precision = pick_precision(precision, self.device)
        self.architecture = get_architecture(cast(str, model.architecture))
        hparams = cast("dict[str, Any]", model.hparams)
        if self.precision not in self.architecture.precisions:
            raise MprnetError(
                f"{self.architecture.title} does not run in {self.precision}; choose one of "
                f"{', '.join(self.architecture.precisions)}"
            )
        if overlap < 0:
            raise MprnetError(f"overlap={overlap} is negative: tiles must share 0 or more pixels")
        self.multiple = self.architecture.size_multiple
        if tile is None:
            tile = auto_tile(model, self.device, self.multiple)
        if tile and tile < max(MIN_SIZE, self.multiple, 2 * overlap):
            raise MprnetError(
                f"tile={tile} is too small: tiles must be at least {max(MIN_SIZE, self.multiple)} px "
                f"and more than twice the overlap ({overlap} px)"
            )
        self.tile = int(tile) // self.multiple * self.multiple if tile else 0
        self.overlap = overlap
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.forward = forward  # None: the network's own pass, in PyTorch
        # Copied only once every setting is known to be valid. Module.to takes memory_format= (see its docstring);
        # torch's overloads leave it out.
        self.model: nn.Module = copy.deepcopy(model).eval().to(self.device, memory_format=self.memory_format)  # type: ignore[call-overload]
        self.in_channels = self.architecture.image_channels(hparams)
        metadata = getattr(model, "metadata", {}) or {}
        self.name, self.title = self.architecture.name, self.architecture.title
        self.task = metadata.get("task") or self.architecture.release_task(hparams)
        self.summary = metadata.get("summary") or (f"{self.title} ({self.task})" if self.task else self.title)

    def __call__(self, image: np.ndarray, progress: Progress | None = None, **known: Any) -> np.ndarray:
        """The restored image; `known` may carry sigma and kernel, which a blind network leaves aside (one call
        fits every restorer), and nothing else: a misspelt name is an error, not ignored."""
        unknown = sorted(set(known) - {"sigma", "kernel"})
        if unknown:
            raise MprnetError(
                f"unknown keyword argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: a network takes "
                "the image and progress (sigma and kernel are for the classic methods)"
            )
        self._check_image(image)
        tensor = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
        return self.restore_tensor(tensor, progress)[0].permute(1, 2, 0).numpy()

    def _check_image(self, image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] != self.in_channels:
            raise ImageError(f"the network takes H x W x {self.in_channels} images, got shape {tuple(image.shape)}")
        if min(image.shape[:2]) < MIN_SIZE:
            raise ImageError(
                f"the image is {image.shape[1]}x{image.shape[0]} px; at least {MIN_SIZE} px per side is needed"
            )

    def count_tiles(self, height: int, width: int) -> int:
        if not self.tile:
            return 1
        return len(tile_starts(height, self.tile, self.overlap)) * len(tile_starts(width, self.tile, self.overlap))

    @torch.inference_mode()
    def restore_tensor(self, image: Tensor, progress: Progress | None = None) -> Tensor:
        """N x C x H x W float in [0, 1] (any device) -> restored, on the CPU, clamped to [0, 1]."""
        height, width = image.shape[-2:]
        prepared = self._prepare(image)
        if not self.tile or (height <= self.tile and width <= self.tile):
            output = self._forward(image, prepared)
            if progress:
                progress(1, 1)
            return output
        return self._forward_tiled(image, prepared, progress)

    def _prepare(self, image: Tensor) -> dict:
        """What the architecture decides once on the whole image (still on the CPU) for all its tiles (see
        `Architecture.prepare`)."""
        if self.architecture.prepare is None:
            return {}
        with autocast(self.device, self.precision):
            return self.architecture.prepare(self.model, image)

    def _forward_tiled(self, image: Tensor, prepared: dict, progress: Progress | None) -> Tensor:
        height, width = image.shape[-2:]
        tile_h, tile_w = min(self.tile, height), min(self.tile, width)
        rows, cols = tile_starts(height, tile_h, self.overlap), tile_starts(width, tile_w, self.overlap)
        output = torch.zeros(image.shape[0], image.shape[1], height, width)
        weights = torch.zeros(1, 1, height, width)
        total, done = len(rows) * len(cols), 0
        for top in rows:
            ramp_h = blend_ramp(tile_h, self.overlap, top > 0, top + tile_h < height)
            for left in cols:
                ramp_w = blend_ramp(tile_w, self.overlap, left > 0, left + tile_w < width)
                weight = ramp_h[:, None] * ramp_w[None, :]
                restored = self._forward(image[..., top : top + tile_h, left : left + tile_w], prepared)
                output[..., top : top + tile_h, left : left + tile_w] += restored * weight
                weights[..., top : top + tile_h, left : left + tile_w] += weight
                done += 1
                if progress:
                    progress(done, total)
        return output / weights

    def _forward(self, image: Tensor, prepared: dict) -> Tensor:
        height, width = image.shape[-2:]
        padded = pad_to_multiple(image.float(), self.multiple)
        padded = padded.to(self.device).contiguous(memory_format=self.memory_format)
        if self.forward is not None:
            restored = self.forward(padded)
        else:
            with autocast(self.device, self.precision):
                restored = self.architecture.restore(self.model, padded, **prepared)
        return restored[..., :height, :width].float().clamp_(0, 1).cpu()


def pad_to_multiple(image: Tensor, multiple: int) -> Tensor:
    """Pad bottom and right to a multiple of `multiple` by reflection (replication where the image is too small)."""
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
