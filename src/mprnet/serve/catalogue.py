"""What the server offers: the methods of each task (loaded once, shared by every request) and the example images
(degraded samples of scikit-image's photographs, made on first use and kept in memory)."""
from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
import threading
from typing import Mapping

from ..api import TASKS, Restorer, get_restorer
from ..checkpoint import bundled_models
from ..demo import DEMO_CASES, degrade_sample, sample_photos
from ..errors import MprnetError
from ..io import pixels_to_pil

NETWORK = "mprnet"


@dataclasses.dataclass(frozen=True)
class Method:
    """One way to restore images of one task."""

    task: str
    name: str
    summary: str
    restorer: Restorer = dataclasses.field(repr=False)
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()

    @property
    def is_network(self) -> bool:
        return self.name == NETWORK

    def describe(self) -> dict:
        return {"name": self.name, "summary": self.summary, "needs": list(self.needs), "uses": list(self.uses)}


class UnknownChoice(MprnetError):
    """A task, method or option value the server does not offer."""


class Catalogue:
    """The methods by task; networks come first, then the classic baselines when `mprnet.baselines` is there."""

    def __init__(self, methods: list[Method]):
        self.tasks: dict[str, dict[str, Method]] = {}
        for method in methods:
            self.tasks.setdefault(method.task, {})[method.name] = method

    def get(self, task: str, name: str) -> Method:
        if task not in self.tasks:
            raise UnknownChoice(f"unknown task {task!r}; this server offers {_choices(self.tasks)}")
        methods = self.tasks[task]
        if name not in methods:
            raise UnknownChoice(f"unknown method {name!r} for {task}; choose one of {_choices(methods)}")
        return methods[name]

    def devices(self) -> set[str]:
        """The kinds of device the networks run on ("cpu", "cuda", "mps")."""
        return {method.restorer.device.type for methods in self.tasks.values() for method in methods.values()
                if method.is_network}

    def describe(self) -> list[dict]:
        return [{"name": task, "degradation": DEMO_CASES[task][0],
                 "methods": [method.describe() for method in methods.values()]}
                for task, methods in self.tasks.items()]


def _choices(names) -> str:
    return ", ".join(names) or "nothing (no model is installed)"


def load_catalogue(models: Mapping[str, str | os.PathLike] | None, device: str, precision: str, tile: int | None,
                   with_baselines: bool) -> Catalogue:
    """Load each task's network (`models`: task -> bundled name or weights file; None: the bundled models) and
    list the baselines of those tasks."""
    sources = bundled_sources() if models is None else dict(models)
    unknown = [task for task in sources if task not in TASKS]
    if unknown:
        raise UnknownChoice(f"expected models for tasks among {', '.join(TASKS)}, found {', '.join(unknown)}")
    methods = [_network(task, source, device, precision, tile) for task, source in sources.items()]
    if with_baselines:
        methods += _baselines(set(sources))
    return Catalogue(methods)


def bundled_sources() -> dict[str, str]:
    """task -> bundled model name, for every task whose bundled model is installed."""
    return {task: task for task in TASKS if task in bundled_models()}


def _network(task: str, source: str | os.PathLike, device: str, precision: str, tile: int | None) -> Method:
    engine = get_restorer(task=task, model=source, device=device, precision=precision, tile=tile)
    metadata = getattr(engine.model, "metadata", None) or {}
    return Method(task, NETWORK, metadata.get("summary", f"MPRNet ({task})"), engine)


def _baselines(tasks: set[str]) -> list[Method]:
    try:
        from ..baselines import BASELINES
    except ImportError:
        return []
    return [Method(b.task, b.name, b.summary, b, b.needs, b.uses) for b in BASELINES.values()
            if b.task in tasks and (b.package is None or importlib.util.find_spec(b.package) is not None)]


class Examples:
    """Degraded samples of each task, as PNG bytes, with their clean originals for PSNR/SSIM."""

    def __init__(self, tasks: list[str], size: int):
        self.tasks, self.size = tasks, size
        self._lock = threading.Lock()
        self._images: dict[tuple[str, str, str], bytes] | None = None

    def describe(self) -> list[dict]:
        return [{"task": task, "photo": photo, "degradation": DEMO_CASES[task][0],
                 "degraded": f"/api/examples/{task}/{photo}/degraded.png",
                 "clean": f"/api/examples/{task}/{photo}/clean.png"}
                for task, photo, kind in self._all() if kind == "degraded"]

    def prepare_in_background(self) -> None:
        """Start making the examples now, so that the page's first request finds them ready sooner."""
        threading.Thread(target=self._all, name="mprnet-examples", daemon=True).start()

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
                images[task, photo, "degraded"] = _png(degrade_sample(task, clean, number))
                images[task, photo, "clean"] = _png(clean)
        return images


def _png(pixels) -> bytes:
    buffer = io.BytesIO()
    pixels_to_pil(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
