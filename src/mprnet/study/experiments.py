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

from .. import hub
from ..baselines import Baseline, get_baseline
from ..checkpoint import BUNDLED_DIR, bundled_models, read_weights
from ..checkpoint import WEIGHT_SUFFIXES as LOADABLE_SUFFIXES
from ..data import PairedDataset, centre_crop, open_paired
from ..degrade import Degradation, Identity, seeded_rng
from ..errors import CheckpointError, DataError, MprnetError
from ..evaluate import default_protocol, task_of_data
from ..figures import to_uint8
from ..files import atomic_path
from ..io import ImageData, image_files, read_image, read_rgb, write_image
from ..metrics import evaluate_pair
from ..models.registry import architectures, detect
from ..restorers import get_restorer
from ..tasks import TASKS

#: The files the study reads in --weights-dir: those `load_model` is documented for, and `.pkl`, the name of
#: MIMO-UNet's releases (torch.save files, which `load_model` reads by their bytes, as restore and info do), and
#: `.index`, SRN's TensorFlow checkpoint (converted in memory; its data shard beside it).
WEIGHT_SUFFIXES = (*LOADABLE_SUFFIXES, ".pkl", ".index")
#: (network, task) -> the official release the article uses, by its name in `mprnet.hub.CATALOGUE` (what
#: `mprnet weights fetch` takes), which the notes on a missing or bundled column point to.
OFFICIAL_RELEASES = {
    ("MPRNet", "deblur"): "mprnet-gopro",
    ("MPRNet", "denoise"): "mprnet-sidd",
    ("MPRNet", "derain"): "mprnet-rain13k",
    ("NAFNet", "denoise"): "nafnet-sidd-width64",
    ("MIMO-UNet", "deblur"): "mimo-unet-plus-gopro",
    ("SRN", "deblur"): "srn-color-gopro",
    ("DID-MDN", "derain"): "did-mdn-classifier",  # brings the generator along: the method as the authors test it
}
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
    sha256: str = ""  # of `source`

    @property
    def source_label(self) -> str:
        """The file behind the column, in words: a bundled model's name, else the path it was found at."""
        if self.source is None:
            return "the degraded input" if self.identity == "input" else f"classic method {self.identity}"
        path = Path(self.source)
        return f"bundled model {path.stem}" if path.parent == BUNDLED_DIR else str(path)

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
    source: str = ""  # the method's source_label
    sha256: str = ""  # of its weights file


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
    """A condition on the user's pairs (GoPro, also as MPRNet's GoPro/test/input + target, Rain100L/H, SIDD),
    replacing the synthetic ones of its task."""
    dataset = open_paired(folder)
    task = task_of_data(dataset.layout, folder)
    if task is None:
        raise DataError(
            f"Expected GoPro, Rain100 or SIDD pairs in {folder}, found input/ + target/ folders whose task is "
            f"unknown: their folder tells it (GoPro/test, Rain100L)."
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


def find_networks(weights_dir: Path | None = None, skipped: list[str] | None = None) -> dict[tuple[str, str], str]:
    """(network label, task) -> weights: the bundled models, overridden by checkpoints in `weights_dir`
    (recognised by their keys, their task read from metadata, file name, or the architecture's releases).

    A file of `weights_dir` that is no checkpoint of a known network, whose task cannot be told, or whose column an
    earlier file fills is left out, with a line saying so appended to `skipped`."""
    skipped = [] if skipped is None else skipped
    found: dict[tuple[str, str], str] = {}
    taken = set()  # the columns a file of weights_dir fills: a bundled model gives way to it, it to no later file
    candidates = list(bundled_models().values())
    if weights_dir is not None:
        candidates += _weights_dir_files(weights_dir)
    for path in candidates:
        try:
            column = _recognise(path)
        except (CheckpointError, ValueError) as error:
            skipped.append(f"{path.name} in --weights-dir skipped: {_reason(error, path)}")
            continue
        if column in taken:
            skipped.append(
                f"{path.name} in --weights-dir skipped: {Path(found[column]).name} fills the {column[0]} "
                f"{column[1]} column already (the first by name is used)"
            )
            continue
        found[column] = str(path)
        if path.parent != BUNDLED_DIR:
            taken.add(column)
    return found


def _weights_dir_files(weights_dir: Path) -> list[Path]:
    """The checkpoints in the folder, or those of the official checkpoints it names, comma-separated (mprnet
    weights list; fetched on first use)."""
    names = str(weights_dir).split(",")
    if not Path(weights_dir).is_dir() and all(hub.is_official(name) for name in names):
        return [hub.loadable_path(name) for name in names]
    if not Path(weights_dir).is_dir():
        raise CheckpointError(
            f"Expected a folder of checkpoints for --weights-dir, or official checkpoints' names (mprnet weights "
            f"list), found no folder at {weights_dir}."
        )
    return sorted(path for path in Path(weights_dir).iterdir() if path.suffix.lower() in WEIGHT_SUFFIXES)


def _recognise(path: Path) -> tuple[str, str]:
    """(network label, task) of a weights file; CheckpointError or ValueError (no known network) saying why not."""
    state_dict, metadata = read_weights(path)
    architecture, config = detect(state_dict)
    task = metadata.get("task") or _task_from_name(path.name) or architecture.release_task(config)
    if not task:
        example = f"{architecture.name}_{(architecture.release_tasks or tuple(TASKS))[0]}{path.suffix}"
        raise CheckpointError(
            f"neither its metadata, its file name nor its size tells the task of this {architecture.title} "
            f"checkpoint; name the file after its task (e.g. {example})"
        )
    return architecture.title, task


def _reason(error: Exception, path: Path | str) -> str:
    """The error's message without the path it starts with (the note names the file)."""
    return str(error).removeprefix(f"{path}: ")


def _task_from_name(filename: str) -> str | None:
    lowered = filename.lower()
    return next((task for word, task in _FILENAME_TASKS if word in lowered), None)


def methods_for(
    task: str,
    networks: dict[tuple[str, str], str],
    device: str = "auto",
    tile: int | None = None,
    overlap: int = 32,
) -> list[Method]:
    """The rows of a task's table, each runnable or carrying the reason it is skipped: the degraded input, the
    networks whose releases address the task (MPRNet first), then the task's classic methods. The networks restore
    with the engine's `tile` (None: chosen from free memory; 0: whole images) and `overlap`."""
    row = TASKS[task]
    found = [Method(row.degraded_name, "input", lambda degraded: degraded)]
    found += [
        _network(architecture.title, task, networks, device, tile, overlap)
        for architecture in architectures()
        if task in architecture.release_tasks
    ]
    return found + [_classic(get_baseline(name)) for name in row.study_classics]


def methods_of(condition: Condition, task_methods: list[Method]) -> list[Method]:
    """The methods that run in a condition: all of its task's, or on clean photos only the networks."""
    return [method for method in task_methods if method.source] if condition.passthrough else task_methods


def _network(name: str, task: str, networks: dict, device: str, tile: int | None, overlap: int) -> Method:
    """The network loaded once, here, so that no image's timing includes loading it; a file that does not load is
    a note, not the end of the study."""
    source = networks.get((name, task))
    if source is None:
        return Method(name, name, None, note=f"{name} skipped: no {task} weights (not bundled; {_release(name, task)})")
    try:
        restorer = get_restorer(model=source, device=device, precision="fp32", tile=tile, overlap=overlap)
    except CheckpointError as error:
        note = f"{name} skipped: {Path(source).name} does not load: {_reason(error, source)}"
        return Method(name, name, None, note=f"{note} ({_release(name, task)})")
    identity = f"{name}:{_file_identity(source)}" + ("" if tile is None else f":tile {tile}, overlap {overlap}")
    bundled = Path(source).parent == BUNDLED_DIR
    note = f"{name} ({task}): the bundled model, small and briefly trained; {_release(name, task)}" if bundled else ""
    return Method(name, identity, restorer, note=note, source=source, sha256=hub.sha256_of(Path(source)))


def _release(name: str, task: str) -> str:
    """Where the official weights of a column come from."""
    release = OFFICIAL_RELEASES.get((name, task))
    fetch = f"`mprnet weights fetch {release}` gets the official release; " if release else ""
    return f"{fetch}put it in --weights-dir"


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
    return Score(
        condition.slug,
        sample.name,
        method.name,
        entry["psnr"],
        entry["ssim"],
        entry["seconds"],
        method.source_label,
        method.sha256,
    )


def save_png(image: np.ndarray, path: Path) -> Path:
    """An 8-bit RGB PNG of a float image in [0, 1]; rewritten only when its pixels change."""
    pixels = to_uint8(image)
    if path.exists() and np.array_equal(to_uint8(read_image(path).pixels), pixels):
        return path
    return write_image(path, ImageData(pixels.astype(np.float32) / 255))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-")
