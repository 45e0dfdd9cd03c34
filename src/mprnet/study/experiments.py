"""The study's quality experiments: degrade test photos (or read the user's pairs), restore them with every method,
score the saved results, and cache each (condition, image, method) so a rerun or an interrupted run continues.

Every score is computed from the PNG files the study saves (8-bit, as published results are), so anyone can
recompute a table cell from the images next to the report.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..baselines import Baseline, get_baseline
from ..checkpoint import WEIGHT_SUFFIXES, bundled_models, read_weights
from ..data import PairedDataset, centre_crop, open_paired
from ..degrade import Degradation, Identity, seeded_rng
from ..errors import CheckpointError, DataError, MprnetError
from ..evaluate import default_protocol
from ..figures import to_uint8
from ..files import atomic_path
from ..io import ImageData, image_files, read_image, read_rgb, write_image
from ..metrics import evaluate_pair
from ..models.registry import architectures, detect
from ..restorers import get_restorer
from ..tasks import TASKS, task_of_layout

#: Words in the file names of the official releases that tell their task.
_FILENAME_TASKS = (
    ("deblur", "deblur"),
    ("gopro", "deblur"),
    ("denois", "denoise"),
    ("sidd", "denoise"),
    ("derain", "derain"),
    ("rain", "derain"),
)


@dataclass(frozen=True)
class Sample:
    """One test image: its clean version, the degraded input every method gets, and what the degradation knew."""

    name: str
    clean: np.ndarray
    degraded: np.ndarray
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Condition:
    """One column of the article: a task under one degradation, scored with one protocol."""

    slug: str
    title: str
    task: str
    protocol: str
    degradation: Callable[[], Degradation] | None = None  # None: the samples are the user's pairs
    pairs: PairedDataset | None = None
    passthrough: bool = False  # clean inputs: only the networks run, and the quality-versus-cost plots leave it out


@dataclass
class Method:
    """A row of a condition's table: a restorer, given the `given` parameters of each degradation (the true sigma
    or kernel); `restorer` is None when it cannot run here, and `note` says why."""

    name: str
    identity: str  # what the cache key records: a change of weights or method invalidates cached results
    restorer: Callable[..., np.ndarray] | None
    given: tuple[str, ...] = ()
    note: str = ""
    source: str | None = None  # the weights a network method runs

    def run(self, degraded: np.ndarray, params: dict) -> np.ndarray:
        assert self.restorer is not None  # only runnable methods run (run_condition skips the others)
        return self.restorer(degraded, **{name: params.get(name) for name in self.given})


@dataclass(frozen=True)
class Score:
    condition: str
    image: str
    method: str
    psnr: float
    ssim: float
    seconds: float


# ---- test photos and conditions ----------------------------------------------------------------------------------


def study_photos(
    folder: Path | None = None, count: int | None = None, crop: int | None = None
) -> dict[str, np.ndarray]:
    """The clean photos: `folder`, else scikit-image's sample photographs; the first `count` of them,
    centre-cropped to `crop` pixels."""
    if folder is None:
        from ..demo import sample_photos

        photos = sample_photos(min(crop or 256, 300))
    else:
        files = image_files(folder)
        if not files:
            raise DataError(f"Expected image files in {folder}, found none.")
        photos = {path.stem: read_rgb(path) for path in files[:count]}
    return {name: centre_crop(image, crop) for name, image in list(photos.items())[:count]}


def synthetic_conditions() -> list[Condition]:
    """The article's experiments on synthetic degradations of clean photos (the tasks' study conditions)."""
    return [
        Condition(study.slug, study.title, task.name, task.comparison_protocol, study.make)
        for task in TASKS.values()
        for study in task.study_conditions
    ]


def passthrough_conditions() -> list[Condition]:
    """Clean photos through each task's networks: how much a model changes a photo it should leave alone."""
    return [
        Condition(
            f"clean-{task.name}",
            f"Clean photos through the {task.name} networks"
            + (" (Y channel)" if task.comparison_protocol == "y" else ""),
            task.name,
            task.comparison_protocol,
            functools.partial(Identity, task.name),
            passthrough=True,
        )
        for task in TASKS.values()
    ]


def paired_condition(folder: Path) -> Condition:
    """A condition on the user's pairs (GoPro, Rain100L/H, SIDD), replacing the synthetic ones of its task."""
    dataset = open_paired(folder)
    task = task_of_layout(dataset.layout)
    if task is None:
        raise DataError(
            f"Expected GoPro, Rain100 or SIDD pairs in {folder}, found the {dataset.layout} layout, "
            f"whose task is unknown."
        )
    protocol = default_protocol(task)
    return Condition(
        f"{task}-{folder.name.lower()}", f"{task.capitalize()}, {folder.name} pairs", task, protocol, pairs=dataset
    )


def make_samples(
    condition: Condition, photos: dict[str, np.ndarray], seed: int, count: int | None = None, crop: int | None = None
) -> list[Sample]:
    """The condition's inputs, each degraded image rounded to 8 bits as a saved photo would be."""
    if condition.pairs is not None:
        pairs = condition.pairs
        loaded = [(name, *pairs.load(index)) for index, name in enumerate(pairs.names[:count])]
        return [
            Sample(name.replace("/", "_"), _as_8bit(centre_crop(target, crop)), _as_8bit(centre_crop(source, crop)))
            for name, source, target in loaded
        ]
    samples = []
    for name, clean in photos.items():
        assert condition.degradation is not None  # a condition without pairs degrades photos
        degraded, params = condition.degradation()(clean, seeded_rng(seed, condition.slug, name))
        samples.append(Sample(name, _as_8bit(clean), _as_8bit(degraded), params))
    return samples


def _as_8bit(image: np.ndarray) -> np.ndarray:
    return to_uint8(image).astype(np.float32) / 255


# ---- methods -----------------------------------------------------------------------------------------------------


def find_networks(weights_dir: Path | None = None) -> dict[tuple[str, str], str]:
    """(network label, task) -> weights: the bundled models, overridden by checkpoints in `weights_dir`
    (recognised by their keys, their task read from metadata, file name, or the architecture's releases)."""
    found = {}
    candidates = list(bundled_models().values())
    if weights_dir is not None:
        if not Path(weights_dir).is_dir():
            raise CheckpointError(
                f"Expected a folder of checkpoints for --weights-dir, found no folder at {weights_dir}."
            )
        candidates += sorted(p for p in Path(weights_dir).iterdir() if p.suffix.lower() in WEIGHT_SUFFIXES)
    for path in candidates:
        recognised = _recognise(path)
        if recognised:
            found[recognised] = str(path)
    return found


def _recognise(path: Path) -> tuple[str, str] | None:
    try:
        state_dict, metadata = read_weights(path)
        architecture, config = detect(state_dict)
    except (CheckpointError, ValueError):
        return None  # not a checkpoint of a known network: the study ignores it
    task = metadata.get("task") or _task_from_name(path.name) or architecture.release_task(config)
    return (architecture.title, task) if task else None


def _task_from_name(filename: str) -> str | None:
    lowered = filename.lower()
    return next((task for word, task in _FILENAME_TASKS if word in lowered), None)


def methods_for(task: str, networks: dict[tuple[str, str], str], device: str = "auto") -> list[Method]:
    """The rows of a task's table, each runnable or carrying the reason it is skipped: the degraded input, the
    networks whose releases address the task (MPRNet first), then the task's classic methods."""
    row = TASKS[task]
    found = [Method(row.degraded_name, "input", lambda degraded: degraded)]
    found += [
        _network(architecture.title, task, networks, device)
        for architecture in architectures()
        if task in architecture.release_tasks
    ]
    return found + [_classic(get_baseline(name)) for name in row.study_classics]


def methods_of(condition: Condition, task_methods: list[Method]) -> list[Method]:
    """The methods that run in a condition: all of its task's, or on clean photos only the networks."""
    return [method for method in task_methods if method.source] if condition.passthrough else task_methods


def _network(name: str, task: str, networks: dict, device: str) -> Method:
    """The network loaded once, here, so that no image's timing includes loading it."""
    source = networks.get((name, task))
    if source is None:
        return Method(
            name,
            name,
            None,
            note=f"{name} skipped: no {task} weights (not bundled; put the official release in --weights-dir)",
        )
    return Method(name, f"{name}:{_file_identity(source)}", get_restorer(model=source, device=device), source=source)


def _classic(baseline: Baseline) -> Method:
    """A classic method, given the true values it needs (sigma, kernel)."""
    given = baseline.needs
    label = f"{baseline.title} (true {' and '.join(given)})" if given else baseline.title
    if not baseline.available:
        note = f"{baseline.title} skipped: the optional package {baseline.package} is not installed"
        return Method(label, baseline.name, None, note=f"{note} (pip install {baseline.package})")
    return Method(label, baseline.name, baseline, given)


def _file_identity(path: str) -> str:
    stat = Path(path).stat()
    return f"{Path(path).name}:{stat.st_size}:{int(stat.st_mtime)}"


# ---- running, with the cache -------------------------------------------------------------------------------------


class ResultCache:
    """Restored PNGs under `root/<condition>/<image>/` and their scores in `root/scores.json`, each entry valid only
    for the same input pixels and the same method (weights included)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.index_path = self.root / "scores.json"
        self.entries = json.loads(self.index_path.read_text()) if self.index_path.exists() else {}

    def image_path(self, condition: str, image: str, name: str) -> Path:
        return self.root / condition / image / f"{_slug(name)}.png"

    def get(self, key: str, fingerprint: str) -> dict | None:
        entry = self.entries.get(key)
        if entry and entry["fingerprint"] == fingerprint and (self.root / entry["file"]).exists():
            return entry
        return None

    def put(self, key: str, entry: dict) -> None:
        self.entries[key] = entry
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.index_path) as temporary:
            temporary.write_text(json.dumps(self.entries, indent=1, sort_keys=True))


def run_condition(
    condition: Condition, samples: list[Sample], methods: list[Method], cache: ResultCache, progress=None
) -> list[Score]:
    """Score every runnable method on every sample; cached results are read back instead of recomputed."""
    scores = []
    for sample in samples:
        clean_path = save_png(sample.clean, cache.image_path(condition.slug, sample.name, "clean"))
        for method in methods:
            if method.restorer is None:
                continue
            score = _score_method(condition, sample, method, cache, clean_path)
            if score is not None:
                scores.append(score)
            if progress is not None:
                progress.update(1)
    return scores


def _score_method(
    condition: Condition, sample: Sample, method: Method, cache: ResultCache, clean_path: Path
) -> Score | None:
    key = f"{condition.slug}/{sample.name}/{method.name}"
    fingerprint = hashlib.sha256(to_uint8(sample.degraded).tobytes() + method.identity.encode()).hexdigest()[:16]
    entry = cache.get(key, fingerprint)
    if entry is None:
        path = cache.image_path(condition.slug, sample.name, method.name)
        start = time.perf_counter()
        try:
            restored = method.run(sample.degraded, sample.params)
        except MprnetError as error:
            method.note = f"{method.name} failed on {sample.name}: {error}"
            return None
        seconds = time.perf_counter() - start
        save_png(restored, path)
        measured = evaluate_pair(read_rgb(path), read_rgb(clean_path), condition.protocol)
        entry = {"fingerprint": fingerprint, "file": str(path.relative_to(cache.root)), "seconds": seconds, **measured}
        cache.put(key, entry)
    return Score(condition.slug, sample.name, method.name, entry["psnr"], entry["ssim"], entry["seconds"])


def save_png(image: np.ndarray, path: Path) -> Path:
    """An 8-bit RGB PNG of a float image in [0, 1]; rewritten only when its pixels change."""
    pixels = to_uint8(image)
    if path.exists() and np.array_equal(to_uint8(read_image(path).pixels), pixels):
        return path
    return write_image(path, ImageData(pixels.astype(np.float32) / 255))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-")
