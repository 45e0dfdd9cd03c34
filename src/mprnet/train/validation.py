"""Validation during training: a fixed set of degraded crops, scored with the task's benchmark protocol."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data import centre_crop, open_paired
from ..degrade import seeded_rng
from ..errors import DataError
from ..infer import Engine
from ..io import image_files, read_rgb
from ..metrics import evaluate_pair
from ..tasks import TASKS, make_degradation
from .config import TrainConfig


def validation_pairs(config: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(degraded, clean) float32 crops: a paired folder's first `count` pairs, or clean photos degraded with
    per-image seeds derived from `val.seed` (the same pairs in every run)."""
    val = config.val
    assert val.dir is not None  # validation runs only where val.dir is set
    try:
        dataset = open_paired(val.dir)
    except DataError:  # not a paired layout: a folder of clean photos
        dataset = None
    if dataset is not None:
        pairs = [dataset.load(i) for i in range(min(val.count, len(dataset)))]
        return [(centre_crop(a, val.crop), centre_crop(b, val.crop)) for a, b in pairs]
    degradation = make_degradation(config.task, val.level if val.level is not None else config.data.level)
    pairs = []
    for index, path in enumerate(image_files(val.dir)[: val.count]):
        clean = centre_crop(read_rgb(path), val.crop)
        degraded, _ = degradation(clean, seeded_rng(val.seed, index))
        pairs.append((degraded.astype(np.float32), clean))
    if not pairs:
        raise DataError(f"val.dir {val.dir}: no images to validate on; add photos or pairs, or leave val.dir out")
    return pairs


def validate(
    model: nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]], task: str, device: torch.device, precision: str
) -> dict[str, float]:
    engine = Engine(model, device=device, precision=precision, tile=0)
    scores = [evaluate_pair(engine(degraded), clean, TASKS[task].benchmark_protocol) for degraded, clean in pairs]
    return {key: float(np.mean([score[key] for score in scores])) for key in ("psnr", "ssim")}
