"""Runtimes for a network's forward pass on the CPU: PyTorch eager, onnxruntime and OpenVINO (bf16/f32, or int8
through NNCF's post-training quantisation), behind one interface.

A backend replaces only the network's pass on a padded tile batch (`Engine(forward=...)`): padding, tiling and
blending stay the engine's. The other runtimes run the project's exported pass (`mprnet.export.RestoringPass`),
converted once per weights and shape policy and kept in a cache folder (`cache_folder()`), so a second restore with
the same weights starts in a second. `auto` picks, among the installed backends, the one measured fastest at equal
output on this kind of CPU (`MEASURED_FASTEST`, from `benchmarks/backends.py`); int8 loses a little quality and is
used only where asked for and where `INT8_LOSS_DB` allows it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from .degrade import seeded_rng
from .errors import UsageError
from .export import RestoringPass, _quiet, export_model
from .files import atomic_path
from .infer import Engine, Forward, _cpuinfo, cpu_has_fast_bf16, pick_device, pick_precision
from .models.registry import get_architecture
from .tasks import make_degradation

AUTO = "auto"
#: How the converted models take their input: one image of any height and width (multiples of the network's).
SHAPE_POLICY = "1xCxHxW"


class BackendError(UsageError):
    """A backend that is not installed, cannot run these settings, or (int8) may not run this task."""


@dataclass(frozen=True)
class Backend:
    name: str
    summary: str
    #: The modules it imports, and the extra of pyproject.toml that installs them.
    modules: tuple[str, ...]
    extra: str | None
    #: The precisions it runs in (int8 backends: of the layers left in floating point).
    precisions: tuple[str, ...]

    def installed(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.modules)

    def check_installed(self) -> None:
        if not self.installed():
            missing = ", ".join(m for m in self.modules if importlib.util.find_spec(m) is None)
            raise BackendError(f"backend {self.name} needs {missing}: pip install 'mprnet[{self.extra}]'")


BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend("torch", "PyTorch eager (autocast for bf16)", ("torch",), None, ("fp32", "bf16", "fp16")),
        Backend(
            "onnxruntime", "onnxruntime on the ONNX export", ("onnx", "onnxscript", "onnxruntime"), "export", ("fp32",)
        ),
        Backend("openvino", "OpenVINO on the CPU", ("openvino",), "openvino", ("fp32", "bf16")),
        Backend("openvino-int8", "OpenVINO, int8 through NNCF", ("openvino", "nncf"), "openvino", ("fp32", "bf16")),
    )
}
BACKEND_NAMES = (*BACKENDS, AUTO)

#: What `auto` picks on each kind of CPU (`cpu_kind()`) and precision: the backend with the lowest median seconds
#: per megapixel on the bundled models at 256 px tiles whose output matched torch's at that precision, and why.
#: Measured with `python benchmarks/backends.py` (docs/results/backends_<kind>.txt); unmeasured kinds get torch.
#: avx512bf16: docs/results/backends_avx512bf16.txt (OpenVINO bf16 59-63 dB from fp32, as torch's bf16).
MEASURED_FASTEST: dict[str, dict[str, tuple[str, str]]] = {
    "avx512bf16": {
        "bf16": (
            "openvino",
            "measured fastest at bf16 on a 2-core AMD EPYC (Zen 4): 1.26-1.37x torch on the bundled models "
            "(denoiser 13.1 s/MP against 18.0)",
        ),
        "fp32": (
            "openvino",
            "measured fastest at fp32 on a 2-core AMD EPYC (Zen 4): 1.11-1.25x torch on the bundled models "
            "(denoiser 28.6 s/MP against 33.9)",
        ),
    },
}

#: The PSNR that int8 lost against fp32 (dB, mean over 128 px crops of val/mcmaster18 degraded at the task's
#: default level, seed 0), per bundled task, calibrated on degraded crops of train/bsds432: `python
#: benchmarks/backends.py --int8-rule`. A task may run int8 where the loss is at most `INT8_MAX_LOSS_DB`.
#: On a 2-core AMD EPYC (docs/results/backends_int8_rule_avx512bf16.txt) every bundled task lost more: int8 is
#: refused for all three until a calibration recipe does better.
INT8_LOSS_DB: dict[str, float] = {"deblur": 0.121, "denoise": 0.404, "derain": 0.137}
INT8_MAX_LOSS_DB = 0.1
#: The calibration set: crops of this side, this many, degraded with the task's default level.
CALIBRATION_SIDE = 128
CALIBRATION_CROPS = 16
#: NNCF's preset: "mixed" quantises activations asymmetrically (they are not centred on zero in these networks);
#: the bundled denoiser lost 0.40 dB with it, 0.39 dB with the symmetric "performance" preset.
INT8_PRESET = "mixed"


def cpu_kind() -> str:
    """The kind of CPU that decides which backend is fastest: amx, avx512bf16, avx512, avx2 or the machine name."""
    flags = _cpuinfo()
    if "amx_bf16" in flags:
        return "amx"
    if cpu_has_fast_bf16():
        return "avx512bf16"
    for kind in ("avx512f", "avx2"):
        if kind in flags:
            return kind.removesuffix("f")
    return os.uname().machine


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    reason: str

    def describe(self) -> str:
        return f"backend {self.backend} ({self.precision}): {self.reason}"


def choose(name: str, precision: str = "fp32", device: str = AUTO) -> Choice:
    """The backend that `name` (a backend or auto) runs at `precision` (auto: the backend's fastest within ~45 dB
    of fp32), and why; BackendError where it is not installed or cannot run that precision. The backends other
    than torch run on the CPU: auto picks torch where `device` is a GPU."""
    if name not in BACKEND_NAMES:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    on_cpu = pick_device(device).type == "cpu"
    if name == "torch" or (name == AUTO and not on_cpu):
        return Choice("torch", precision, "PyTorch eager" if name == "torch" else "auto: torch, the one GPU backend")
    if not on_cpu and device != AUTO:
        raise BackendError(f"backend {name} runs on the CPU; leave out the device {device!r} or use backend torch")
    if name == AUTO:
        return _choose_auto(precision)
    backend = BACKENDS[name]
    backend.check_installed()
    return Choice(name, _backend_precision(backend, precision), "asked for")


def _choose_auto(precision: str) -> Choice:
    resolved = pick_precision(precision, torch.device("cpu"))
    kind = cpu_kind()
    measured = MEASURED_FASTEST.get(kind, {}).get(resolved)
    if measured is None:
        return Choice("torch", resolved, f"auto: no backend measured faster at {resolved} on this CPU kind ({kind})")
    fastest, why = measured
    if not BACKENDS[fastest].installed():
        return Choice(
            "torch",
            resolved,
            f"auto: {fastest} was {why}, but it is not installed (pip install 'mprnet[{BACKENDS[fastest].extra}]')",
        )
    return Choice(fastest, resolved, f"auto: {why} ({kind})")


def _backend_precision(backend: Backend, precision: str) -> str:
    if precision == AUTO:
        return "bf16" if "bf16" in backend.precisions and cpu_has_fast_bf16() else "fp32"
    if precision not in backend.precisions:
        raise BackendError(f"backend {backend.name} runs {' or '.join(backend.precisions)} on the CPU, not {precision}")
    return precision


def make_engine(
    model: nn.Module,
    backend: str = "torch",
    device: str = "auto",
    precision: str = "fp32",
    tile: int | None = None,
    overlap: int = 32,
) -> Engine:
    """An `Engine` whose network pass runs on `backend` (torch: the engine's own)."""
    choice = choose(backend, precision, device)
    if choice.backend == "torch":
        return Engine(model, device=device, precision=precision, tile=tile, overlap=overlap)
    _check_runs_elsewhere(model, choice.backend)
    forward = build_forward(model, choice.backend, choice.precision)
    return Engine(model, device="cpu", precision=choice.precision, tile=tile, overlap=overlap, forward=forward)


def _check_runs_elsewhere(model: nn.Module, backend: str) -> None:
    architecture = get_architecture(cast(str, model.architecture))
    if architecture.prepare is not None:
        raise BackendError(f"{architecture.title} decides per image before its tiles; run it with backend torch")
    if backend == "openvino-int8":
        check_int8_allowed(task_of(model))


def task_of(model: nn.Module) -> str | None:
    return (getattr(model, "metadata", {}) or {}).get("task")


def check_int8_allowed(task: str | None) -> None:
    """BackendError unless the rule (`INT8_LOSS_DB`) lets the task's model run int8."""
    loss = INT8_LOSS_DB.get(task or "")
    if loss is not None and loss <= INT8_MAX_LOSS_DB:
        return
    measured = f"it lost {loss:.2f} dB against fp32 on validation crops" if loss is not None else "it was not measured"
    raise BackendError(
        f"int8 is not allowed for {task or 'weights without a task'}: {measured} (at most {INT8_MAX_LOSS_DB} dB "
        f"allowed); use backend openvino"
    )


def build_forward(model: nn.Module, backend: str, precision: str) -> Forward:
    """The network's pass on a padded N x C x H x W batch, on `backend` at `precision`."""
    if backend == "onnxruntime":
        return _onnxruntime_forward(model)
    if backend == "openvino":
        return _openvino_forward(openvino_model(model), precision)
    if backend == "openvino-int8":
        return _openvino_forward(int8_model(model, task_of(model)), precision)
    raise BackendError(f"backend {backend} has no forward of its own")


def _one_at_a_time(run: Callable[[np.ndarray], np.ndarray]) -> Forward:
    """A batch forward from a runtime that takes one image at a time (the exports' shape policy)."""

    def forward(batch: Tensor) -> Tensor:
        images = [run(np.ascontiguousarray(image[None].float().numpy())) for image in batch.cpu()]
        return torch.from_numpy(np.concatenate(images))

    return forward


def _threads() -> int:
    return torch.get_num_threads()


def _onnxruntime_forward(model: nn.Module) -> Forward:
    import onnxruntime

    path = cache_folder() / f"{weights_key(model)}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_model(model, path, "onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return _one_at_a_time(lambda image: session.run(None, {"image": image})[0])


def _openvino_forward(ov_model: Any, precision: str) -> Forward:
    import openvino

    config = {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": _threads(),
    }
    compiled = openvino.Core().compile_model(ov_model, "CPU", config)

    def run(image: np.ndarray) -> np.ndarray:
        request = compiled.create_infer_request()  # one per call: calls from several threads stay apart
        request.infer({0: image})
        return request.get_output_tensor(0).data.copy()

    return _one_at_a_time(run)


def cache_folder() -> Path:
    """Where converted models are kept: $MPRNET_CACHE, else $XDG_CACHE_HOME/mprnet (~/.cache/mprnet), + backends."""
    root = os.environ.get("MPRNET_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mprnet"
    return Path(root) / "backends"


def weights_key(model: nn.Module) -> str:
    """The cache key of a network: sha256 of its architecture, hyper-parameters and weights, and the shape policy."""
    digest = hashlib.sha256(f"{model.architecture}|{sorted(cast(dict, model.hparams).items())}|{SHAPE_POLICY}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return f"{model.architecture}-{digest.hexdigest()[:32]}"


def openvino_model(model: nn.Module) -> Any:
    """The network's restoring pass as an OpenVINO model (f32 weights), converted from the torch module once."""
    return _cached_openvino(f"{weights_key(model)}-f32", lambda: _convert(model))


def int8_model(model: nn.Module, task: str | None) -> Any:
    """The OpenVINO model quantised to int8 by NNCF, calibrated on `calibration_crops(task)`; made once."""
    if task is None:
        raise BackendError("int8 calibrates on the task's degradations: these weights name no task")

    def quantize() -> Any:
        import nncf

        nncf.set_log_level(logging.ERROR)
        crops = calibration_crops(task)
        with _quiet(), contextlib.redirect_stderr(io.StringIO()):  # NNCF's progress bars
            return nncf.quantize(
                openvino_model(model),
                nncf.Dataset(crops),
                preset=nncf.QuantizationPreset(INT8_PRESET),
                subset_size=len(crops),
            )

    recipe = f"{task}-{INT8_PRESET}-{CALIBRATION_CROPS}x{CALIBRATION_SIDE}"
    return _cached_openvino(f"{weights_key(model)}-int8-{recipe}", quantize)


def _convert(model: nn.Module) -> Any:
    import openvino

    architecture = get_architecture(cast(str, model.architecture))
    channels = architecture.image_channels(cast("dict[str, Any]", model.hparams))
    side = 8 * architecture.size_multiple
    module = RestoringPass(model.float().cpu().eval()).eval()
    with torch.no_grad(), _quiet():
        return openvino.convert_model(
            module,
            example_input=torch.rand(1, channels, side, side),
            input=[openvino.PartialShape([1, channels, -1, -1])],
        )


def _cached_openvino(key: str, make: Callable[[], Any]) -> Any:
    """The OpenVINO model saved under `key` in the cache folder, made and saved first where it is not there."""
    import openvino

    folder = cache_folder()
    xml = folder / f"{key}.xml"
    if xml.exists():
        return openvino.Core().read_model(xml)
    made = make()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as temporary:
        openvino.save_model(made, Path(temporary) / xml.name, compress_to_fp16=False)
        # The weights first, the .xml last: a model whose .xml is there is complete.
        os.replace(Path(temporary) / xml.with_suffix(".bin").name, xml.with_suffix(".bin"))
        with atomic_path(xml) as target:
            shutil.copyfile(Path(temporary) / xml.name, target)
    return made


def calibration_folder() -> Path:
    """The clean training photos that int8 calibrates on: $MPRNET_CALIBRATION_IMAGES, else the project's
    ../shared/data/train/bsds432 (never validation photos)."""
    default = Path(__file__).resolve().parents[3] / "shared" / "data" / "train" / "bsds432"
    return Path(os.environ.get("MPRNET_CALIBRATION_IMAGES") or default)


def calibration_crops(task: str, folder: Path | None = None, seed: int = 0) -> list[np.ndarray]:
    """`CALIBRATION_CROPS` crops (1 x 3 x side x side float32) of the first photos of `folder`, each degraded by
    the task's default level with its own seeded generator."""
    folder = calibration_folder() if folder is None else folder
    photos = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:CALIBRATION_CROPS]
    if len(photos) < CALIBRATION_CROPS:
        raise BackendError(
            f"int8 calibrates on {CALIBRATION_CROPS} training photos; {folder} has {len(photos)} "
            "(set MPRNET_CALIBRATION_IMAGES to a folder of clean photos)"
        )
    degradation = make_degradation(task)
    crops = []
    for photo in photos:
        rng = seeded_rng(seed, photo.name)
        clean = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32) / 255
        top = int(rng.integers(0, clean.shape[0] - CALIBRATION_SIDE + 1))
        left = int(rng.integers(0, clean.shape[1] - CALIBRATION_SIDE + 1))
        degraded, _ = degradation(clean[top : top + CALIBRATION_SIDE, left : left + CALIBRATION_SIDE], rng)
        crops.append(np.ascontiguousarray(degraded.transpose(2, 0, 1)[None], dtype=np.float32))
    return crops
