"""What the server offers: the restorers of each task (loaded once, shared by every request) and the example images
(degraded samples of scikit-image's photographs, made on first use and kept in memory)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from ..baselines import BASELINES
from ..checkpoint import bundled_models
from ..demo import degrade_sample, sample_photos
from ..errors import MprnetError
from ..infer import Engine
from ..io import png_bytes
from ..restorers import AUTO, AutoRestorer, Restorer, get_restorer
from ..tasks import TASKS

AUTO_DEGRADATION = "whatever the photo has: the degradation classifier decides (clean photos come back unchanged)"


class UnknownChoice(MprnetError):
    """A task, method or option value the server does not offer."""


class Catalogue:
    """The restorers by task and method name; each task's network first, then its classic methods."""

    def __init__(self, offers: list[tuple[str, Restorer]]):
        self.tasks: dict[str, dict[str, Restorer]] = {}
        for task, restorer in offers:
            self.tasks.setdefault(task, {})[restorer.name] = restorer

    def get(self, task: str, name: str | None = None) -> Restorer:
        """The method `name` of `task`; without a name, the task's first (its network)."""
        if task not in self.tasks:
            raise UnknownChoice(f"unknown task {task!r}; this server offers {_choices(self.tasks)}")
        methods = self.tasks[task]
        if name is None:
            return next(iter(methods.values()))
        if name not in methods:
            raise UnknownChoice(f"unknown method {name!r} for {task}; choose one of {_choices(methods)}")
        return methods[name]

    def devices(self) -> set[str]:
        """The kinds of device the networks run on ("cpu", "cuda", "mps")."""
        return {
            restorer.device.type
            for methods in self.tasks.values()
            for restorer in methods.values()
            if isinstance(restorer, Engine)
        }

    def describe(self) -> list[dict]:
        return [
            {
                "name": task,
                "degradation": TASKS[task].demo_degradation if task in TASKS else AUTO_DEGRADATION,
                "methods": [describe(restorer) for restorer in methods.values()],
            }
            for task, methods in self.tasks.items()
        ]


def describe(restorer: Restorer) -> dict:
    """A restorer as the API lists it."""
    return {
        "name": restorer.name,
        "title": restorer.title,
        "kind": restorer.kind,
        "summary": restorer.summary,
        "needs": list(restorer.needs),
        "uses": list(restorer.uses),
    }


def _choices(names) -> str:
    return ", ".join(names) or "nothing (no model is installed)"


def load_catalogue(
    models: Mapping[str, str | os.PathLike] | None, device: str, precision: str, tile: int | None, with_baselines: bool
) -> Catalogue:
    """Load each task's network (`models`: task -> bundled name or weights file; None: the bundled models) and
    list the classic methods of those tasks whose optional packages are installed. With every task's bundled
    model loaded, task "auto" is offered too."""
    sources = bundled_sources() if models is None else dict(models)
    unknown = [task for task in sources if task not in TASKS]
    if unknown:
        raise UnknownChoice(f"expected models for tasks among {', '.join(TASKS)}, found {', '.join(unknown)}")
    offers = [
        (task, get_restorer(task=task, model=source, device=device, precision=precision, tile=tile))
        for task, source in sources.items()
    ]
    if models is None and set(sources) == set(TASKS):
        offers.append((AUTO, AutoRestorer(device=device, precision=precision, tile=tile)))
    if with_baselines:
        offers += [(b.task, b) for b in BASELINES.values() if b.task in sources and b.available]
    return Catalogue(offers)


def bundled_sources() -> dict[str, str]:
    """task -> bundled model name, for every task whose bundled model is installed."""
    return {task: task for task in TASKS if task in bundled_models()}


class Examples:
    """Degraded samples of each task, as PNG bytes, with their clean originals for PSNR/SSIM."""

    def __init__(self, tasks: list[str], size: int):
        self.tasks, self.size = tasks, size
        self._lock = threading.Lock()
        self._images: dict[tuple[str, str, str], bytes] | None = None
        self._maker: threading.Thread | None = None

    def describe(self) -> list[dict]:
        return [
            {
                "task": task,
                "photo": photo,
                "degradation": TASKS[task].demo_degradation,
                "degraded": f"/api/examples/{task}/{photo}/degraded.png",
                "clean": f"/api/examples/{task}/{photo}/clean.png",
            }
            for task, photo, kind in self._all()
            if kind == "degraded"
        ]

    def prepare_in_background(self) -> None:
        """Start making the examples now, so that the page's first request finds them ready sooner."""
        self._maker = threading.Thread(target=self._all, name="mprnet-examples", daemon=True)
        self._maker.start()

    def wait(self, timeout: float) -> None:
        """Let the background start finish: a thread still inside numpy or torch when the interpreter exits can
        abort the process (SIGABRT) instead of letting it stop cleanly."""
        if self._maker is not None:
            self._maker.join(timeout)

    def png(self, task: str, photo: str, kind: str) -> bytes:
        try:
            return self._all()[(task, photo, kind)]
        except KeyError:
            raise UnknownChoice(f"no example {task}/{photo}/{kind}.png; GET /api/examples lists them") from None

    def _all(self) -> dict[tuple[str, str, str], bytes]:
        with self._lock:
            if self._images is None:
                self._images = self._make()
            return self._images

    def _make(self) -> dict[tuple[str, str, str], bytes]:
        images = {}
        photos = sample_photos(self.size)
        for task in self.tasks:
            for number, (photo, clean) in enumerate(photos.items()):
                images[task, photo, "degraded"] = png_bytes(degrade_sample(task, clean, number))
                images[task, photo, "clean"] = png_bytes(clean)
        return images
