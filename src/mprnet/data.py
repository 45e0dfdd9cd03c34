"""Torch data sets: paired folders people download, synthetic pairs made on the fly, and training patches.

Paired layouts (`open_paired` detects them): generic or Rain13K/Rain100 `input/` + `target/` (also `rainy/` or
`rain/` + `norain/`), GoPro `<sequence>/blur|sharp/`, SIDD medium scene folders of `*NOISY*` + `*GT*` files.
Training patches (`SyntheticPairs`, `PairedPatches`) are random crops under one of the 8 dihedral transforms,
drawn from a generator seeded by (seed, epoch, index): the same item is the same whatever the worker count.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .degrade import Degradation
from .errors import DataError, ImageError
from .io import image_files, read_rgb, to_gray, to_rgb

_PROBLEMS_SHOWN = 10
_RAIN_FOLDERS = (("input", "target"), ("rainy", "norain"), ("rain", "norain"))
_RAIN_PREFIX = re.compile(r"^(no)?rain(y)?[-_]?", re.IGNORECASE)

PathLike = str | os.PathLike
Pairs = list[tuple[Path, Path]]


# ---- images ------------------------------------------------------------------------------------------------------


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """A float32 H x W x C array as a C x H x W tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


# ---- crops and flips ---------------------------------------------------------------------------------------------


def dihedral(image: np.ndarray, transform: int) -> np.ndarray:
    """One of the 8 symmetries of the square: transform % 4 quarter turns, then a left-right flip if >= 4."""
    turned = np.rot90(image, transform % 4, axes=(0, 1))
    return turned[:, ::-1] if transform >= 4 else turned


def random_patches(images: Sequence[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random size x size crop and the same random dihedral transform of each (equally sized) image."""
    height, width = images[0].shape[:2]
    top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    transform = int(rng.integers(0, 8))
    return [np.ascontiguousarray(dihedral(image[top : top + size, left : left + size], transform)) for image in images]


def trim_border(image: np.ndarray, margin: int) -> np.ndarray:
    """The image without `margin` pixels on each side."""
    return image[margin : image.shape[0] - margin, margin : image.shape[1] - margin] if margin else image


def centre_crop(image: np.ndarray, size: int | None) -> np.ndarray:
    """The central `size` x `size` square (or less where the image is smaller); the whole image when size is None."""
    if not size:
        return image
    top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
    return np.ascontiguousarray(image[top : top + size, left : left + size])


class _PatchDataset(Dataset):
    """What training patch data sets share: size checks, length, and the per-(seed, epoch, index) generator."""

    def __init__(self, patch_size: int, seed: int, length: int | None, count: int):
        if int(patch_size) != patch_size or patch_size < 1:
            raise DataError(f"Expected a positive integer patch size, found {patch_size!r}.")
        if length is not None and (int(length) != length or length < 1):
            raise DataError(f"Expected a positive integer length, found {length!r}.")
        if int(seed) != seed or seed < 0:
            raise DataError(f"Expected a non-negative integer seed, found {seed!r}.")
        self.patch_size, self.seed, self.epoch = int(patch_size), int(seed), 0
        self.length = count if length is None else int(length)

    def set_epoch(self, epoch: int) -> None:
        """Draw different patches for a new epoch (call it in every worker's copy, e.g. before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _generator(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} is out of range for a data set of {self.length} items")
        return np.random.default_rng([self.seed, self.epoch, index])


def _check_sizes(sizes: dict[str, tuple[int, int]], least: int) -> None:
    small = [f"{name} ({width}x{height})" for name, (width, height) in sizes.items() if min(width, height) < least]
    if small:
        raise DataError(f"Expected images of at least {least}x{least} pixels, found smaller ones: {_listing(small)}.")


# ---- synthetic pairs ---------------------------------------------------------------------------------------------


class SyntheticPairs(_PatchDataset):
    """(degraded, clean) float32 C x H x W patches made from clean photos: photo `index % count`, a random crop
    and dihedral transform, then the degradation.

    For degradations that need context (blur: `degradation.margin` = the largest kernel radius), the crop is
    taken that much larger on each side (as far as the photo allows), degraded, then centre-cropped to
    patch_size, so the kernel sees real image content rather than boundary padding.

    With `with_labels`, items are (degraded, clean, label): the rain-density label (0 heavy, 1 medium, 2 light)
    that the degradation records, which DID-MDN trains on. With `gray_share`, that share of the pairs is black and
    white: the crop's luma is degraded, then repeated in the three channels, as a gray photo is read.
    """

    def __init__(
        self,
        clean_dir_or_paths: PathLike | Sequence[PathLike],
        degradation: Degradation,
        patch_size: int,
        length: int | None = None,
        seed: int = 0,
        cache_images: bool = True,
        with_labels: bool = False,
        gray_share: float = 0.0,
    ):
        self.paths = _clean_paths(clean_dir_or_paths)
        super().__init__(patch_size, seed, length, len(self.paths))
        self.degradation = degradation
        self.with_labels = with_labels
        self.gray_share = gray_share
        self.images = _decoded(self.paths, self.patch_size) if cache_images else None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        rng = self._generator(index)
        photo = self._photo(index % len(self.paths))
        margin = min(self.degradation.margin, (min(photo.shape[:2]) - self.patch_size) // 2)
        (crop,) = random_patches([photo], self.patch_size + 2 * margin, rng)
        crop = crop.astype(np.float32) / 255 if crop.dtype == np.uint8 else crop
        gray = bool(self.gray_share) and rng.random() < self.gray_share  # no draw without it: the pairs as before
        crop = to_gray(crop) if gray else crop
        degraded, params = self.degradation(crop, rng)
        degraded, crop = trim_border(degraded, margin), trim_border(crop, margin)
        if gray:
            degraded, crop = to_rgb(degraded), to_rgb(crop)
        pair = to_tensor(degraded), to_tensor(crop)
        return (*pair, _density_label(params)) if self.with_labels else pair

    def _photo(self, number: int) -> np.ndarray:
        if self.images is not None:
            return self.images[number]
        photo = read_rgb(self.paths[number])
        _check_sizes({str(self.paths[number]): (photo.shape[1], photo.shape[0])}, self.patch_size)
        return photo


def _density_label(params: dict) -> torch.Tensor:
    if "density_label" not in params:
        raise DataError(
            f"Expected a degradation that records a rain-density label (rain), found one of type "
            f"{params.get('type', 'unknown')!r}."
        )
    return torch.tensor(params["density_label"], dtype=torch.long)


def _clean_paths(source: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise DataError(f"Expected a folder of clean images, found no folder at {folder}.")
        paths = image_files(folder)
    else:
        paths = [Path(path) for path in source]
    if not paths:
        raise DataError(f"Expected clean images, found none in {source}.")
    return paths


def clean_photos(source: PathLike | Sequence[PathLike], least: int) -> list[np.ndarray]:
    """Every image of a folder (or list) of clean photos, 8-bit ones as uint8; a DataError where there are none, or
    some are unreadable or smaller than `least` pixels on a side."""
    return _decoded(_clean_paths(source), least)


def _decoded(paths: list[Path], least: int) -> list[np.ndarray]:
    images = _decode_all(paths)
    _check_sizes({str(path): (image.shape[1], image.shape[0]) for path, image in zip(paths, images)}, least)
    return images


def _decode_all(paths: list[Path]) -> list[np.ndarray]:
    """Every image, 8-bit ones kept as uint8 (4 times less memory, no loss); a DataError listing unreadable ones."""
    images, problems = [], []
    for path in paths:
        try:
            images.append(_compact(read_rgb(path)))
        except ImageError as error:
            problems.append(str(error))
    if problems:
        raise DataError(f"Expected readable images, found {len(problems)} that are not: {_listing(problems)}.")
    return images


def _compact(image: np.ndarray) -> np.ndarray:
    as_bytes = np.rint(image * 255).astype(np.uint8)
    return as_bytes if np.array_equal(as_bytes.astype(np.float32) / 255, image) else image


# ---- paired folders ----------------------------------------------------------------------------------------------


class PairedDataset(Dataset):
    """Pairs of (input, target) image files of equal size; items are (input, target) float32 C x H x W tensors.

    `names[i]` identifies pair i (its stem, with the sequence or scene folder where the layout has one), `sizes`
    holds each pair's (width, height), and `layout` says which layout it came from.
    """

    def __init__(
        self, pairs: Sequence[tuple[PathLike, PathLike]], names: Sequence[str] | None = None, layout: str = "custom"
    ):
        self.pairs: Pairs = [(Path(source), Path(target)) for source, target in pairs]
        if not self.pairs:
            raise DataError(f"Expected at least one pair of images in the {layout} data set, found none.")
        self.names = list(names) if names is not None else [source.stem for source, _ in self.pairs]
        self.layout = layout
        self.sizes = _pair_sizes(self.pairs, layout)

    @classmethod
    def folders(
        cls,
        root: PathLike,
        input_dir: str = "input",
        target_dir: str = "target",
        layout: str = "folders",
        key: Callable[[Path], str] = lambda path: path.stem,
    ) -> PairedDataset:
        """Files of `root/input_dir` and `root/target_dir` paired by `key` (by default the file stem): a generic
        layout, also that of Rain13K and the Rain100L/H test sets."""
        root = Path(root)
        missing = [str(root / folder) for folder in (input_dir, target_dir) if not (root / folder).is_dir()]
        if missing:
            raise DataError(
                f"Expected the folders {root / input_dir} and {root / target_dir}, found no {' or '.join(missing)}."
            )
        pairs, problems = _match(image_files(root / input_dir), image_files(root / target_dir), key, key)
        return cls._checked(pairs, [key(source) for source, _ in pairs], layout, root, problems)

    @classmethod
    def rain(cls, root: PathLike) -> PairedDataset:
        """Rain13K / Rain100L / Rain100H: `input/` + `target/`, or `rainy/` (or `rain/`) + `norain/`, paired by
        stem without a leading "rain-" / "norain-"."""
        root = Path(root)
        for input_dir, target_dir in _RAIN_FOLDERS:
            if (root / input_dir).is_dir() and (root / target_dir).is_dir():
                return cls.folders(root, input_dir, target_dir, "rain", lambda path: _RAIN_PREFIX.sub("", path.stem))
        raise DataError(
            f"Expected a rain data set ({', '.join('/+'.join(f) + '/' for f in _RAIN_FOLDERS)}) "
            f"in {root}, found none of these folders."
        )

    @classmethod
    def gopro(cls, root: PathLike) -> PairedDataset:
        """GoPro train/ or test/: `<sequence>/blur/*.png` paired with `<sequence>/sharp/*.png` by stem."""
        root = Path(root)
        pairs, names, problems = [], [], []
        for sequence in _subfolders_with(root, "blur", "sharp"):
            found, missing = _match(image_files(sequence / "blur"), image_files(sequence / "sharp"))
            pairs += found
            names += [f"{sequence.name}/{source.stem}" for source, _ in found]
            problems += missing
        return cls._checked(pairs, names, "gopro", root, problems)

    @classmethod
    def sidd(cls, root: PathLike) -> PairedDataset:
        """SIDD medium: scene folders holding `*NOISY*` images paired with the same name with GT for NOISY."""
        root = Path(root)
        pairs, names, problems = [], [], []
        for scene in _scene_folders(root):
            files = image_files(scene)
            noisy = [path for path in files if "NOISY" in path.name]
            clean = [path for path in files if "GT" in path.name]
            found, missing = _match(noisy, clean, lambda path: path.name.replace("NOISY", "GT"), lambda path: path.name)
            pairs += found
            names += [f"{scene.name}/{source.stem}" for source, _ in found]
            problems += missing
        return cls._checked(pairs, names, "sidd", root, problems)

    @classmethod
    def _checked(cls, pairs: Pairs, names: list[str], layout: str, root: Path, problems: list[str]) -> PairedDataset:
        if problems:
            raise DataError(
                f"Expected every file of the {layout} data set {root} to have a partner, found "
                f"{len(problems)} problems: {_listing(problems)}."
            )
        if not pairs:
            raise DataError(f"Expected pairs of images in the {layout} data set {root}, found none.")
        return cls(pairs, names, layout)

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair `index` as float32 H x W x 3 arrays in [0, 1]."""
        source, target = self.pairs[index]
        return read_rgb(source), read_rgb(target)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        source, target = self.load(index)
        return to_tensor(source), to_tensor(target)


def open_paired(root: PathLike) -> PairedDataset:
    """The paired data set in `root`, its layout detected: input/ + target/ paired by stem (layout "rain" when
    the folder's name says rain, as Rain100L/H and Rain13K do, else "folders"), rainy/ + norain/, GoPro
    sequences, SIDD scenes."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Expected a data set folder, found no folder at {root}.")
    if (root / "input").is_dir() and (root / "target").is_dir():
        return PairedDataset.folders(root, layout="rain" if "rain" in root.name.lower() else "folders")
    if any((root / input_dir).is_dir() and (root / target_dir).is_dir() for input_dir, target_dir in _RAIN_FOLDERS):
        return PairedDataset.rain(root)
    if _subfolders_with(root, "blur", "sharp"):
        return PairedDataset.gopro(root)
    if any("NOISY" in path.name for scene in _scene_folders(root) for path in image_files(scene)):
        return PairedDataset.sidd(root)
    raise DataError(
        f"Expected a paired data set in {root} (input/ + target/, rainy/ + norain/, GoPro "
        "<sequence>/blur/ + sharp/, or SIDD scene folders of *NOISY* and *GT* images), found none."
    )


def _subfolders_with(root: Path, *children: str) -> list[Path]:
    return sorted(folder for folder in root.iterdir() if all((folder / child).is_dir() for child in children))


def _scene_folders(root: Path) -> list[Path]:
    return sorted([root] + [folder for folder in root.iterdir() if folder.is_dir()])


def _match(
    sources: list[Path],
    targets: list[Path],
    source_key: Callable[[Path], str] = lambda path: path.stem,
    target_key: Callable[[Path], str] | None = None,
) -> tuple[Pairs, list[str]]:
    """Sources and targets paired by key, and a line for every file without exactly one partner."""
    target_key = target_key or source_key
    by_key: dict[str, list[Path]] = {}
    for target in targets:
        by_key.setdefault(target_key(target), []).append(target)
    pairs, problems, used = [], [], set()
    for source in sources:
        partners = by_key.get(source_key(source), [])
        if len(partners) == 1:
            pairs.append((source, partners[0]))
            used.add(partners[0])
        else:
            problems.append(
                f"{source} has {'no' if not partners else len(partners)} target partner"
                f"{'s' if len(partners) > 1 else ''}"
            )
    problems += [f"{target} has no input partner" for target in targets if target not in used]
    return pairs, problems


def _pair_sizes(pairs: Pairs, layout: str) -> list[tuple[int, int]]:
    """(width, height) of every pair, read from the file headers; a DataError listing unreadable files and pairs
    whose sizes differ."""
    sizes, problems = [], []
    for source, target in pairs:
        size = {path: _header_size(path) for path in (source, target)}
        bad = [f"{path} is not a readable image" for path, found in size.items() if found is None]
        source_size, target_size = size[source], size[target]
        if not bad and source_size != target_size:
            assert source_size is not None and target_size is not None  # `bad` is empty: both headers were read
            bad = [f"{source} is {_shape(source_size)} but {target} is {_shape(target_size)}"]
        problems += bad
        sizes.append(size[source])
    if problems:
        raise DataError(
            f"Expected readable pairs of equal sizes in the {layout} data set, found {len(problems)} "
            f"problems: {_listing(problems)}."
        )
    return cast("list[tuple[int, int]]", sizes)  # no problems: every header was read


def _header_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # Pillow raises many types for damaged files; the caller names the file
        return None


def _shape(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _listing(problems: list[str]) -> str:
    shown = "; ".join(problems[:_PROBLEMS_SHOWN])
    hidden = len(problems) - _PROBLEMS_SHOWN
    return shown + (f"; and {hidden} more" if hidden > 0 else "")


# ---- patches of paired data --------------------------------------------------------------------------------------


class PairedPatches(_PatchDataset):
    """(input, target) float32 C x H x W patches of a PairedDataset: pair `index % count`, the same random crop
    and dihedral transform for both."""

    def __init__(self, paired_dataset: PairedDataset, patch_size: int, seed: int = 0, length: int | None = None):
        super().__init__(patch_size, seed, length, len(paired_dataset))
        _check_sizes(dict(zip(paired_dataset.names, paired_dataset.sizes)), self.patch_size)
        self.dataset = paired_dataset

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self._generator(index)
        source, target = random_patches(self.dataset.load(index % len(self.dataset)), self.patch_size, rng)
        return to_tensor(source), to_tensor(target)
