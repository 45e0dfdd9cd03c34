"""How the degradation classifier (`mprnet.diagnose`) is trained, as `mprnet train` runs the `diagnose` task: on
fresh examples of every level of every task's degradation, and clean photos as cameras make them, cut from a folder
of clean photos."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checkpoint import read_weights
from ..degrade import CameraNoise, Degradation, GaussianNoise, PoissonGaussianNoise, seeded_rng
from ..degrade.camera import jpeg_round_trip
from ..errors import CheckpointError
from ..infer import autocast
from ..io import to_gray, to_rgb
from ..models.degradation_classifier import CLASSES, PATCH, DegradationClassifier
from ..tasks import make_degradation


def training_degradations() -> dict[str, list[Callable[[], Degradation]]]:
    """What each class is made of: every level of every task (noise from sigma 3 up, so that faint noise is still
    noise), and clean photos as cameras make them (made in `training_example`)."""
    blur: list[Callable[[], Degradation]] = [
        functools.partial(make_degradation, "deblur", level) for level in ("shake", "linear", "camera", 9)
    ]
    # Light rain twice: its few streaks are the hardest to find.
    rain: list[Callable[[], Degradation]] = [
        functools.partial(make_degradation, "derain", level) for level in ("light", "light", "medium", "heavy")
    ]
    noise: list[Callable[[], Degradation]] = [
        lambda: GaussianNoise(sigma_range=(3.0, 50.0)),
        PoissonGaussianNoise,
        CameraNoise,
        functools.partial(CameraNoise, jpeg_share=1.0),
    ]
    return {"clean": [], "denoise": noise, "deblur": blur, "derain": rain}


#: The name the classifier trains under (`task: diagnose`) and records in its weights.
CLASSIFIER_NAME = "degradation-classifier"


def new_classifier(**settings) -> DegradationClassifier:
    """A freshly initialised classifier carrying `.architecture` and `.hparams`, as the trainer exports networks."""
    network = DegradationClassifier(**settings)
    # nn.Module.__setattr__ is typed for tensors and modules only; it stores any other value as a plain attribute.
    network.architecture = CLASSIFIER_NAME  # type: ignore[assignment]
    network.hparams = {"width": network.width, **settings}  # type: ignore[assignment]
    return network


def training_example(
    photo: np.ndarray, label: int, makers: dict[str, list[Degradation]], rng: np.random.Generator, gray_share: float
) -> tuple[np.ndarray, float]:
    """A PATCH-pixel crop of the photo degraded as class `label` says, and its noise level (0-255; 0 for the other
    classes). The crop is taken at a random scale (up to half size, as crisp as a downscaled photo is), and made
    black and white (`gray_share` of the time) before it is degraded: a gray photo's noise is the same in its three
    channels, which a classifier that saw colour photos only takes for clean."""
    options = makers[CLASSES[label]]
    degradation = options[int(rng.integers(len(options)))] if options else None
    margin = degradation.margin if degradation is not None else 0
    size = min(PATCH + 2 * margin, *photo.shape[:2])
    crop = _scaled_crop(photo, size, float(rng.uniform(1.0, 2.0)), rng)
    if rng.random() < gray_share:
        crop = to_gray(crop)
    inner = (slice((size - PATCH) // 2, (size - PATCH) // 2 + PATCH),) * 2
    if degradation is None:
        return to_rgb(clean_as_cameras_make(crop, rng)[inner]), 0.0
    degraded, params = degradation(crop, rng)
    degraded = np.clip(degraded, 0.0, 1.0)[inner]
    sigma = noise_level(degraded - crop[inner], params) if CLASSES[label] == "denoise" else 0.0
    return to_rgb(degraded), sigma


def clean_as_cameras_make(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A clean crop as real clean photos come: sometimes with a trace of noise, often JPEG-compressed."""
    if rng.random() < 0.3:
        crop = crop + rng.normal(0.0, rng.uniform(0.0, 1.5) / 255.0, crop.shape)
    crop = np.clip(crop, 0.0, 1.0).astype(np.float32)
    return jpeg_round_trip(crop, int(rng.integers(60, 96))) if rng.random() < 0.5 else crop


def noise_level(added: np.ndarray, params: dict) -> float:
    """The noise level to learn (0-255): a Gaussian noise's sigma as drawn (clipping to [0, 1] shrinks what it
    adds, most in bright and dark photos, and the level users know is the sigma), else what the noise added."""
    if params.get("type") == GaussianNoise.param_type:
        return float(params["sigma"])
    return float(255.0 * np.std(added))


def _scaled_crop(photo: np.ndarray, size: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A size x size float32 crop of the photo shrunk by `scale` (as far as the photo allows), at a random place."""
    from PIL import Image

    region = min(round(size * scale), *photo.shape[:2])
    top, left = (int(rng.integers(0, extent - region + 1)) for extent in photo.shape[:2])
    crop = photo[top : top + region, left : left + region]
    crop = crop.astype(np.float32) / 255 if crop.dtype == np.uint8 else crop
    if region == size:
        return crop
    channels = [Image.fromarray(np.ascontiguousarray(crop[..., c]), mode="F") for c in range(crop.shape[2])]
    resized = [np.asarray(channel.resize((size, size), Image.Resampling.BOX)) for channel in channels]
    return np.stack(resized, axis=-1).astype(np.float32)


class DegradationExamples(Dataset):
    """`length` training examples made from a folder of clean photos, the classes in turn (item i is class
    i % len(CLASSES)): (3 x PATCH x PATCH float32 patch, quantised to 8 bits as photos are stored; the class; the
    noise level). Item i is drawn from the generator seeded by (seed, i) alone, so every run sees the same items."""

    def __init__(self, clean_dir: str | Path, length: int, seed: int, gray_share: float = 0.0):
        from ..data import clean_photos

        self.photos = clean_photos(clean_dir, PATCH)
        self.length, self.seed, self.gray_share = length, seed, gray_share
        self.makers: dict[str, list[Degradation]] | None = None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.makers is None:  # made in each data-loader worker, not pickled to it
            self.makers = {name: [make() for make in options] for name, options in training_degradations().items()}
        rng = seeded_rng(self.seed, index)
        label = index % len(CLASSES)
        photo = self.photos[int(rng.integers(len(self.photos)))]
        patch, sigma = training_example(photo, label, self.makers, rng, self.gray_share)
        quantised = np.round(np.clip(patch, 0.0, 1.0, dtype=np.float32) * 255) / 255
        return torch.from_numpy(quantised.transpose(2, 0, 1).copy()), torch.tensor(label), torch.tensor(sigma)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every item at once: patches, classes and noise levels stacked (a validation set)."""
        patches, labels, sigmas = zip(*(self[index] for index in range(self.length)))
        return torch.stack(patches), torch.stack(labels), torch.stack(sigmas)


def classifier_loss(outputs: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor, sigmas: torch.Tensor):
    """Cross-entropy on the class, plus a tenth of the L1 error of the noise level on the noisy examples."""
    logits, estimates = outputs
    loss = torch.nn.functional.cross_entropy(logits, labels)
    noisy = labels == CLASSES.index("denoise")
    if noisy.any():
        loss = loss + (estimates[noisy] - sigmas[noisy]).abs().mean() / 10.0
    return loss


def classifier_scores(
    network: torch.nn.Module,
    examples: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    device: torch.device,
    precision: str,
    batch: int = 256,
) -> dict[str, float]:
    """The share of examples classified right, and the mean noise-level error (0-255) on the noisy ones."""
    patches, labels, sigmas = examples
    was_training = network.training
    network.eval()
    logits, estimates = [], []
    with torch.no_grad():
        for start in range(0, len(patches), batch):
            with autocast(device, precision):
                output = network(patches[start : start + batch].to(device))
            logits.append(output[0].float().cpu())
            estimates.append(output[1].float().cpu())
    network.train(was_training)
    noisy = labels == CLASSES.index("denoise")
    error = (torch.cat(estimates)[noisy] - sigmas[noisy]).abs().mean() if noisy.any() else torch.tensor(0.0)
    return {"accuracy": float((torch.cat(logits).argmax(1) == labels).float().mean()), "sigma_error": float(error)}


def read_classifier(path: str | Path) -> DegradationClassifier:
    """A trained classifier's weights file (a run's export) as a network carrying `.architecture` and `.hparams`,
    built from the hyper-parameters the file records, so that `checkpoint.save_weights` can bundle it."""
    state_dict, metadata = read_weights(path)
    try:
        network = new_classifier(**json.loads(metadata.get("config", "{}")))
        network.load_state_dict(state_dict)
    except (TypeError, ValueError, RuntimeError) as error:  # another network's weights, or a foreign config
        raise CheckpointError(
            f"{path}: not a degradation classifier's weights ({str(error).splitlines()[0]})"
        ) from None
    return network.eval()
