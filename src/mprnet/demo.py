"""The main job, end to end: degrade scikit-image's sample photographs (fixed seeds), restore each with the bundled
model of its task, score before and after, and write side-by-side figures (degraded | restored | clean); and the
same models on real degraded photos, measured without references."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .checkpoint import bundled_models
from .data import centre_crop
from .degrade import seeded_rng
from .errors import DataError, MprnetError
from .figures import image_grid, save_figure
from .infer import DEFAULT_PRECISION
from .io import ImageData, image_files, read_rgb
from .metrics import evaluate_pair
from .pipeline import restore_image
from .restorers import Restorer, get_restorer
from .tasks import TASK_NAMES, TASKS

SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee")


def sample_photos(size: int = 256) -> dict[str, np.ndarray]:
    """Centre crops of scikit-image's sample photographs, float32 in [0, 1]."""
    from skimage import data

    photos = {}
    for name in SAMPLE_PHOTOS:
        photos[name] = centre_crop(getattr(data, name)().astype(np.float32) / 255, size)
    return photos


def figure_path(out_dir: str | Path, task: str, real: bool = False) -> Path:
    """Where the demo draws a task's figure (`real-<task>.png` for real photos)."""
    return Path(out_dir) / f"{'real-' if real else ''}{task}.png"


def scores_path(out_dir: str | Path, real: bool = False) -> Path:
    return Path(out_dir) / f"{'real-' if real else ''}scores.json"


def demo_outputs(out_dir: str | Path, tasks: tuple[str, ...], real: bool = False) -> list[Path]:
    """Every file a demo of `tasks` may write: a figure per task and the scores."""
    return [figure_path(out_dir, task, real) for task in tasks] + [scores_path(out_dir, real)]


def degrade_sample(task: str, clean: np.ndarray, number: int, seed: int = 0) -> np.ndarray:
    """The demo's degraded version of sample photo `number` for `task` (the same for the same seed)."""
    degraded, _ = TASKS[task].demo()(clean, seeded_rng(seed, number))
    return np.clip(degraded, 0, 1).astype(np.float32)


def restored_pixels(pixels: np.ndarray, restorer: Restorer) -> np.ndarray:
    """A photo's pixels restored through the one image pipeline (`pipeline.restore_image`), as `mprnet restore`
    restores a file."""
    return restore_image(ImageData(pixels), restorer).image.pixels


def run_demo(
    out_dir: str | Path,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
    size: int = 256,
    tasks: tuple[str, ...] = TASK_NAMES,
    seed: int = 0,
) -> list[dict]:
    """Restore the degraded samples of each task; return one record per image and write `<task>.png` figures.
    Scores compare the float images with the task's in-memory protocol (RGB, or Y for deraining)."""
    missing = [task for task in tasks if task not in bundled_models()]
    if missing:
        raise MprnetError(f"no bundled model for {', '.join(missing)}; this installation lacks its weights")
    out_dir = Path(out_dir)
    photos = sample_photos(size)
    records = []
    for task in tasks:
        description, protocol = TASKS[task].demo_degradation, TASKS[task].comparison_protocol
        restorer = get_restorer(task=task, device=device, precision=precision)
        rows = []
        for number, (name, clean) in enumerate(photos.items()):
            degraded = degrade_sample(task, clean, number, seed)
            restored = restored_pixels(degraded, restorer)
            before, after = evaluate_pair(degraded, clean, protocol), evaluate_pair(restored, clean, protocol)
            records.append(
                {
                    "task": task,
                    "image": name,
                    "degradation": description,
                    "protocol": protocol,
                    "psnr_before": before["psnr"],
                    "ssim_before": before["ssim"],
                    "psnr_after": after["psnr"],
                    "ssim_after": after["ssim"],
                }
            )
            rows.append(
                [
                    (degraded, f"degraded {before['psnr']:.2f} dB"),
                    (restored, f"restored {after['psnr']:.2f} dB"),
                    (clean, f"clean ({name})"),
                ]
            )
        save_figure(image_grid(rows, title=f"mprnet {task}: {description}"), figure_path(out_dir, task))
    return records


def run_real_demo(
    real_dir: str | Path,
    out_dir: str | Path,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
    size: int = 256,
    tasks: tuple[str, ...] = TASK_NAMES,
) -> list[dict]:
    """Restore real degraded photos (no clean references) with the bundled models: the photos of each task lie in
    real_dir/<what its inputs are called> (noisy/, blurry/, rainy/). Each photo's centre crop of `size` pixels is
    restored; `real-<task>.png` shows input and output side by side, and each record holds the task's
    no-reference measure before and after."""
    real_dir, out_dir = Path(real_dir), Path(out_dir)
    folders = {task: real_dir / TASKS[task].degraded_name for task in tasks}
    found = {task: image_files(folder) for task, folder in folders.items() if folder.is_dir()}
    if not any(found.values()):
        names = ", ".join(f"{TASKS[task].degraded_name}/" for task in tasks)
        raise DataError(f"Expected photos in {names} under {real_dir}, found none.")
    missing = [task for task in found if task not in bundled_models()]
    if missing:
        raise MprnetError(f"no bundled model for {', '.join(missing)}; this installation lacks its weights")
    records = []
    for task, paths in found.items():
        measure = TASKS[task].no_reference_measure
        restorer = get_restorer(task=task, device=device, precision=precision)
        rows = []
        for path in paths:
            degraded = centre_crop(read_rgb(path), size)
            restored = restored_pixels(degraded, restorer)
            record: dict = {"task": task, "image": path.name}
            labels = [path.stem[:20], "bundled MPRNet"]
            if measure is not None:
                record.update(measure=measure.name, before=measure.measure(degraded), after=measure.measure(restored))
                labels = [f"{labels[0]}: {record['before']:.1f}", f"{labels[1]}: {record['after']:.1f}"]
            records.append(record)
            rows.append([(degraded, labels[0]), (restored, labels[1])])
        title = f"mprnet {task}, real photos" + (f": {measure.name}" if measure else "")
        save_figure(image_grid(rows, title=title), figure_path(out_dir, task, real=True))
    return records
