"""The one restorer protocol, and the one factory that the CLI, the API, the server, the study and the demo take
their restorers from.

A restorer is a callable `restorer(image, progress=None, **known) -> image` on float32 H x W x 3 arrays in [0, 1],
where `known` may carry `sigma` (0-255 scale) or `kernel` for the classic non-blind methods, and `progress(done,
total)` hears about tiles. It also says what it is: `name` (the method: a network's architecture, such as
"mprnet" or "nafnet", or a classic method's name), `title`, `task`, `kind` ("network" or "classic"), `summary`,
`needs` (known values it cannot run without) and `uses` (those it takes when given).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import nn

from .backends import make_engine
from .baselines import BASELINES, get_baseline
from .checkpoint import bundled_models, load_model, read_metadata
from .diagnose import Diagnosis, diagnose
from .errors import CheckpointError, MprnetError
from .infer import DEFAULT_PRECISION, Engine, Progress
from .io import is_gray
from .models.registry import ARCHITECTURES
from .tasks import TASKS


@runtime_checkable
class Restorer(Protocol):
    # Read-only properties, so that frozen dataclasses (`Baseline`) satisfy the protocol as well as plain attributes.
    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def task(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def needs(self) -> tuple[str, ...]: ...
    @property
    def uses(self) -> tuple[str, ...]: ...

    def __call__(self, image: np.ndarray, progress: Progress | None = None, **known: Any) -> np.ndarray: ...


#: The task that asks the degradation classifier which task a photo needs.
AUTO = "auto"


@dataclass(frozen=True)
class AutoRestorer:
    """Restores each image with the bundled model of the task the degradation classifier picks for it, then with
    a second task's where the classifier finds in the result a degradation that `diagnose.SECOND_STEPS` lets follow
    (rain after noise: noise comes off first, the order that measured best); an image it finds clean, or is not
    sure enough about, comes back unchanged."""

    device: str = "auto"
    precision: str = DEFAULT_PRECISION
    tile: int | None = None
    overlap: int = 32
    backend: str = "torch"
    name: str = AUTO
    title: str = "Automatic (degradation classifier, then the bundled model of its task)"
    task: str = AUTO
    kind: str = "network"
    summary: str = "finds whether a photo is noisy, blurred, rainy or clean, and restores it with the matching model"
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()

    def decide(self, image: np.ndarray, check_blur: bool = True) -> Diagnosis:
        return diagnose(image, check_blur=check_blur)

    def restorer_for(self, task: str, image: np.ndarray | None = None) -> Restorer:
        """What restores the image for the task: the task's bundled model, or for a black-and-white image the
        task's `gray_method` where the bundled model has not learned such photos (`gray_method_for`)."""
        gray_method = gray_method_for(task)
        if gray_method and image is not None and is_gray(image):
            return get_baseline(gray_method)
        return get_restorer(task, None, None, self.device, self.precision, self.tile, self.overlap, self.backend)

    def choose(self, image: np.ndarray) -> tuple[Diagnosis, AutoSteps | None]:
        """The diagnosis of the image and what restores it (None: leave the image as it is)."""
        diagnosis = self.decide(image)
        return diagnosis, None if diagnosis.task is None else AutoSteps(self, diagnosis, image)

    def __call__(self, image: np.ndarray, progress: Progress | None = None, **known: Any) -> np.ndarray:
        _, chosen = self.choose(image)
        return np.array(image, dtype=np.float32) if chosen is None else chosen(image, progress, **known)


class AutoSteps:
    """What `AutoRestorer` restores one image with: its diagnosed task's model, then the classifier on the result
    and, where that finds another degradation, the second task's model. `diagnosis` says, once it has run, what
    was done (`steps`). It is a restorer like the first model, whose name and task it gives."""

    def __init__(self, auto: AutoRestorer, diagnosis: Diagnosis, image: np.ndarray):
        assert diagnosis.task is not None
        self.auto, self.diagnosis, self.first = auto, diagnosis, auto.restorer_for(diagnosis.task, image)
        self.name, self.title, self.kind = self.first.name, self.first.title, self.first.kind
        self.task, self.summary = self.first.task, self.first.summary
        self.needs, self.uses = (), ()

    @property
    def remark(self) -> str:
        """What the printed decision adds where the first step is a classic method instead of the bundled model."""
        if self.first.kind != "classic":
            return ""
        return (
            f"; restored with {self.first.name} (black and white: the bundled {self.first.task} model has not "
            f"learned such photos)"
        )

    def __call__(self, image: np.ndarray, progress: Progress | None = None, **known: Any) -> np.ndarray:
        # A classic denoiser (`AutoRestorer.restorer_for` gives one a gray photo) needs the noise level: the
        # classifier's, at least 1.
        restored = self.first(image, progress, **{"sigma": max(1.0, self.diagnosis.noise_sigma), **known})
        if not self.diagnosis.followers:
            return restored
        # The kernel check is for blur that a step would undo, and deblurring never follows.
        look = self.auto.decide(restored, check_blur="deblur" in self.diagnosis.followers)
        self.diagnosis = self.diagnosis.followed_by(look)
        if self.diagnosis.then is None:
            return restored
        return self.auto.restorer_for(self.diagnosis.then.decision, restored)(restored, progress, **known)


@functools.cache
def learned_gray(task: str) -> bool:
    """Whether the bundled model of the task learned black-and-white photos too: its recipe's `data.gray_share`,
    which the trainer writes into the weights' metadata."""
    path = bundled_models().get(task)
    recipe = json.loads(read_metadata(path).get("recipe", "{}")) if path else {}
    return float(recipe.get("gray_share", 0.0)) > 0


def gray_method_for(task: str | None) -> str | None:
    """The classic method that restores black-and-white photos of the task (its `gray_method`) while the task's
    bundled model has not learned them; None where the bundled model is to restore them."""
    gray_method = TASKS[task].gray_method if task in TASKS else None
    return None if gray_method is None or learned_gray(str(task)) else gray_method


def resolve(restorer: Restorer, image: np.ndarray) -> tuple[Diagnosis | None, Restorer | None]:
    """What restores this image: the restorer itself (and no diagnosis), or, for `AutoRestorer`, what it chooses
    and why (None: the image is to be left as it is). Front ends that report decisions call this once per image,
    and `decided` after restoring it."""
    return restorer.choose(image) if isinstance(restorer, AutoRestorer) else (None, restorer)


def decided(diagnosis: Diagnosis, chosen: Restorer | None) -> Diagnosis:
    """The diagnosis `resolve` gave, with the second task the restoration found, if it found one."""
    return chosen.diagnosis if isinstance(chosen, AutoSteps) else diagnosis


def remark(chosen: Restorer | None) -> str:
    """What a printed decision adds about how the image was restored ("" where by the task's bundled model)."""
    return chosen.remark if isinstance(chosen, AutoSteps) else ""


def method_names() -> list[str]:
    """What `method` may name: an architecture (its network) or a classic method."""
    return [*ARCHITECTURES, *BASELINES]


def get_restorer(
    task: str | None = None,
    model: str | os.PathLike | nn.Module | None = None,
    method: str | None = None,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
    tile: int | None = None,
    overlap: int = 32,
    backend: str = "torch",
) -> Restorer:
    """A classic method when `method` names one; otherwise a network: `model` (a bundled name, a weights file or a
    module), else the bundled model of `task`, checked to be of the architecture `method` names, if it names one.

    Networks loaded from names or files are cached (a module is not: the caller may change it between calls).
    Task "auto" gives an `AutoRestorer`, which picks the bundled model per image. `backend` runs the network's
    pass (`mprnet.backends`: torch, onnxruntime, openvino, openvino-int8 or auto)."""
    if task == AUTO:
        if model is not None or method is not None:
            raise MprnetError("task auto picks the bundled models itself: leave out the weights and the method")
        return AutoRestorer(device, precision, tile, overlap, backend)
    if method in BASELINES:
        return get_baseline(method)
    if method is not None and method not in ARCHITECTURES:
        raise MprnetError(f"unknown method {method!r}; choose one of {', '.join(method_names())}")
    if isinstance(model, nn.Module):
        engine = make_engine(model, backend, device=device, precision=precision, tile=tile, overlap=overlap)
    else:
        engine = _engine(str(_model_source(task, model)), device, precision, tile, overlap, backend)
    if method is not None and engine.name != method:
        raise CheckpointError(
            f"method {method} was asked for, but {model or f'the bundled {task} model'} is a {engine.title} network"
        )
    return engine


def _model_source(task: str | None, model: str | os.PathLike | None) -> str | os.PathLike:
    if model is not None:
        return model
    if task is None:
        raise MprnetError(
            f"say which network to use: a task ({', '.join(TASKS)} or {AUTO}) or weights (model=/--weights)"
        )
    if task not in TASKS:
        raise MprnetError(f"unknown task {task!r}; choose one of {', '.join(TASKS)} or {AUTO}")
    if task not in bundled_models():
        raise CheckpointError(
            f"no bundled model for {task} is installed yet; pass a weights file "
            f"(--weights PATH, or model=PATH in Python)"
        )
    return task


@functools.lru_cache(maxsize=4)
def _engine(source: str, device: str, precision: str, tile: int | None, overlap: int, backend: str) -> Engine:
    return make_engine(load_model(source), backend, device=device, precision=precision, tile=tile, overlap=overlap)
