"""Exported models for other runtimes: ONNX (checked with onnxruntime) and TorchScript, for every architecture.

An exported model is the network's restoring pass alone: it takes N x C x H x W float32 RGB in [0, 1], H and W
multiples of the network's `size_multiple` (the caller pads, by reflection, and crops back; the model's metadata
says the multiple), and returns the restored image, clamped to [0, 1]. Each export is compared with PyTorch on
random images before it is kept; a model that differs by more than `TOLERANCE` is not written. It restores one image
at a time (a batch of 1).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from .errors import MprnetError
from .files import atomic_path
from .models.registry import describe, get_architecture, restoring_forward

FORMATS = ("onnx", "torchscript")
#: The largest difference from PyTorch (fp32, values in [0, 1]) an export may show.
TOLERANCE = 1e-4
#: The side of the images an export is checked on, a multiple of every network's size multiple and above every
#: network's minimum size; a dynamic export is also checked on a second, other shape.
_CHECK_SIDE = 64


class ExportError(MprnetError):
    exit_code = 2


class RestoringPass(nn.Module):
    """A network's restoring pass as a module of one tensor, as the exported model runs it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return restoring_forward(self.model, image).clamp(0, 1)


@dataclass(frozen=True)
class ExportReport:
    path: Path
    format: str
    shapes: list[tuple[int, ...]]  # the input shapes it was checked on
    max_difference: float

    def summary(self) -> str:
        checked = " and ".join("x".join(map(str, shape)) for shape in self.shapes)
        return f"{self.path}: {self.format}, max abs difference from PyTorch {self.max_difference:.2g} on {checked}"


def export_model(
    model: nn.Module, path: str | os.PathLike, fmt: str, height: int | None = None, width: int | None = None
) -> ExportReport:
    """Write `model` (a loaded network) as `fmt` to `path`: for inputs of `height` x `width`, or of any height and
    width (multiples of the network's) when both are None; checked against PyTorch before it replaces `path`."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose {' or '.join(FORMATS)}")
    info = describe(model)
    architecture = get_architecture(info.architecture)
    multiple = architecture.size_multiple
    channels = architecture.image_channels(info.hparams)
    dynamic = height is None and width is None
    if not dynamic:
        _check_size(height, width, multiple, architecture.title)
    side_h, side_w = (height, width) if not dynamic else (_CHECK_SIDE, _CHECK_SIDE)
    shapes: list[tuple[int, ...]] = [(1, channels, cast(int, side_h), cast(int, side_w))]
    if dynamic:
        shapes.append((1, channels, _CHECK_SIDE + 2 * max(multiple, 16), _CHECK_SIDE))
    module = RestoringPass(model.float().cpu().eval()).eval()
    metadata = {
        "architecture": architecture.name,
        "task": str(getattr(model, "metadata", {}).get("task", "")),
        "size_multiple": str(multiple),
        "input": f"1 x {channels} x H x W float32 RGB in [0, 1] (one image at a time); H, W multiples of size_multiple",
    }
    path = Path(path)
    with atomic_path(path) as temporary:
        if fmt == "onnx":
            _write_onnx(module, temporary, shapes[0], dynamic, multiple, metadata)
        else:
            _write_torchscript(module, temporary, shapes[0], metadata)
        difference = max(_difference(module, temporary, fmt, shape) for shape in shapes)
        if not difference <= TOLERANCE:
            raise ExportError(
                f"the {fmt} export differs from PyTorch by {difference:.2g} (more than {TOLERANCE:g}); not written"
            )
    return ExportReport(path, fmt, shapes, difference)


def _check_size(height: int | None, width: int | None, multiple: int, title: str) -> None:
    if height is None or width is None:
        raise ExportError("give both --height and --width, or neither (--dynamic)")
    for name, value in (("height", height), ("width", width)):
        if value < 1 or value % multiple:
            raise ExportError(f"--{name} must be a positive multiple of {multiple} for {title}, found {value}")


def _write_onnx(
    module: nn.Module, path: Path, shape: tuple[int, ...], dynamic: bool, multiple: int, metadata: dict
) -> None:
    onnx = _optional("onnx")
    _optional("onnxscript")  # the exporter's translator
    example = torch.rand(shape)
    dynamic_shapes = None
    if dynamic:
        height, width = (torch.export.Dim(name, min=1, max=16384 // multiple) for name in ("height", "width"))
        dynamic_shapes = {"image": {2: height * multiple, 3: width * multiple}}
    with _quiet():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            input_names=["image"],
            output_names=["restored"],
            external_data=False,
        )
    if program is None:
        raise ExportError("the ONNX exporter returned no model")
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def _write_torchscript(module: nn.Module, path: Path, shape: tuple[int, ...], metadata: dict) -> None:
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(module, torch.rand(shape), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"mprnet.json": json.dumps(metadata)})


def _difference(module: nn.Module, path: Path, fmt: str, shape: tuple[int, ...]) -> float:
    image = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = module(image).numpy()
    if fmt == "onnx":
        runtime = _optional("onnxruntime")
        session = runtime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        found = session.run(None, {"image": image.numpy()})[0]
    else:
        with torch.no_grad():
            found = torch.jit.load(str(path))(image).numpy()
    if found.shape != expected.shape:
        return float("inf")
    return float(np.abs(found - expected).max())


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ExportError(f"{name} is not installed; pip install 'mprnet[export]'") from None


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and warnings, kept off the user's terminal."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
