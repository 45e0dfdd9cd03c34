"""Benchmarking a restorer on a paired data set: per-image and mean PSNR/SSIM under a benchmark's protocol."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .data import PairedDataset, open_paired
from .files import OverwriteError, atomic_path, refuse_existing, refuse_inside
from .io import ImageData, write_image
from .metrics import Protocol, evaluate_pair, get_protocol
from .tasks import TASKS, task_of_layout

CSV_FIELDS = ("name", "psnr", "ssim", "seconds")

Restorer = Callable[..., np.ndarray]


def default_protocol(task: str | None = None, layout: str | None = None) -> str:
    """The benchmark protocol of a task, else of the task of a data-set layout, else plain RGB."""
    task = task or task_of_layout(layout or "")
    return TASKS[task].benchmark_protocol if task else "rgb"


def task_of_data(layout: str, root: str | os.PathLike) -> str | None:
    """The task of a paired data set in `root`: its layout's, else, for generic input/ + target/ folders, deblurring
    where the folder or the one above it is GoPro's (MPRNet's own test set is `Datasets/GoPro/test/input` +
    `target`)."""
    root = Path(root).resolve()
    if layout == "folders" and any(name.lower().startswith("gopro") for name in (root.name, root.parent.name)):
        return "deblur"
    return task_of_layout(layout)


def evaluate(
    restorer: Restorer,
    dataset: PairedDataset | str | os.PathLike,
    protocol: str | Protocol = "rgb",
    save_dir: str | os.PathLike | None = None,
    on_image: Callable[[dict], None] | None = None,
) -> dict:
    """Restore every input of `dataset` (a `PairedDataset` or its folder) and score it against its target.

    Returns `{"protocol", "count", "psnr", "ssim", "seconds", "images": [{"name", "psnr", "ssim", "seconds"}]}`,
    the top-level figures being means over the images (as benchmarks report them). With `save_dir`, each restored
    image is written there as an 8-bit PNG named after its pair; `on_image` gets each image's row as it is done.
    """
    if not isinstance(dataset, PairedDataset):
        dataset = open_paired(dataset)
    protocol = get_protocol(protocol)
    rows = []
    for index, name in enumerate(dataset.names):
        source, target = dataset.load(index)
        started = time.perf_counter()
        restored = restorer(source)
        seconds = time.perf_counter() - started
        if save_dir is not None:
            write_image(saved_image_path(save_dir, name), ImageData(pixels=restored))
        rows.append({"name": name, **evaluate_pair(restored, target, protocol), "seconds": seconds})
        if on_image:
            on_image(rows[-1])
    return {"protocol": protocol.name, "count": len(rows), **_means(rows), "images": rows}


def saved_image_path(save_dir: str | os.PathLike, name: str) -> Path:
    """Where `evaluate` saves the restored image of the pair `name`."""
    return Path(save_dir) / f"{name}.png"


def check_outputs(
    dataset: PairedDataset,
    root: str | os.PathLike,
    save_dir: Path | None,
    reports: dict[str, Path | None],
    overwrite: bool = False,
) -> None:
    """OverwriteError, before any work, where an output would replace a file of the data set in `root` (or lie
    among its images), or an existing file without `overwrite`, or another output. `reports`: option -> file."""
    if save_dir is not None and save_dir.exists() and not save_dir.is_dir():
        raise OverwriteError(f"--save-dir {save_dir} is a file; name a folder")
    data_folders = {Path(root), *(path.parent for pair in dataset.pairs for path in pair)}
    outputs = {option: path for option, path in {"--save-dir": save_dir, **reports}.items() if path is not None}
    for option, path in outputs.items():
        refuse_inside(path, option, sorted(data_folders), "the data set")
    files = [(option, path) for option, path in reports.items() if path is not None]
    if save_dir is not None:
        files += [("--save-dir", saved_image_path(save_dir, name)) for name in dataset.names]
    seen: dict[Path, str] = {}
    for option, path in files:
        refuse_existing(path, option, overwrite)
        if path.resolve() in seen:
            raise OverwriteError(f"{option} {path} is also written by {seen[path.resolve()]}; choose another name")
        seen[path.resolve()] = option


def _means(rows: list[dict]) -> dict[str, float]:
    return {field: float(np.mean([row[field] for row in rows])) for field in ("psnr", "ssim", "seconds")}


def write_csv(results: dict, path: str | os.PathLike) -> Path:
    """One row per image, then a "mean" row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(results["images"])
        writer.writerow({"name": "mean", **{field: results[field] for field in CSV_FIELDS[1:]}})
    return path


def write_json(results: dict, path: str | os.PathLike) -> Path:
    """The whole result; an infinite PSNR (a perfect restoration) is written as the string "inf"."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
    return path


def _json_safe(value):
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
