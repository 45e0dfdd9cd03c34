"""A paired folder (input/, target/, manifest.json) made from a folder of clean images and a degradation."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataError, ImageError
from ..files import OverwriteError, atomic_path, refuse_existing
from ..io import ImageData, image_files, read_rgb, write_image
from .base import Degradation, check_seed, seeded_rng

# Parameters left out of the manifest: per-pixel fields as large as the image itself.
UNRECORDED = ("streaks",)


@dataclasses.dataclass(frozen=True)
class PairsWritten:
    """What `write_pairs` did: how many pairs it wrote and one message per file it skipped."""

    count: int
    skipped: list[str]


def write_pairs(
    clean_dir: str | os.PathLike,
    degradation: Degradation,
    out_dir: str | os.PathLike,
    seed: int,
    header: dict,
    on_skip: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> PairsWritten:
    """Degrade every image of clean_dir into out_dir/input/<stem>.png, copy it to out_dir/target/<stem>.png and
    write out_dir/manifest.json: `header`'s fields, then an "images" list of each pair's parameters. Each image's
    generator is `seeded_rng(seed, file name)`, so adding files changes no other pair. Unreadable images and
    second images of one stem are skipped: reported in the result and, as they happen, to `on_skip`. An output
    that exists is refused (before anything is written) unless `overwrite`; one that is a clean image, always."""
    clean_dir, out_dir = Path(clean_dir), Path(out_dir)
    check_seed(seed)  # before anything is written, even for a folder with no image
    if not clean_dir.is_dir():
        raise DataError(f"Expected a folder of clean images, found no folder at {clean_dir}.")
    images = image_files(clean_dir)
    _check_outputs(images, out_dir, overwrite)
    entries, skipped, stems = [], [], set()
    for path in images:
        try:
            if path.stem in stems:
                raise ImageError(f"{path}: another image already has the name {path.stem}")
            clean = read_rgb(path)
        except ImageError as error:
            skipped.append(str(error))
            if on_skip is not None:
                on_skip(str(error))
            continue
        stems.add(path.stem)
        degraded, params = degradation(clean, seeded_rng(seed, path.name))
        for folder, pixels in (("input", degraded), ("target", clean)):
            write_image(out_dir / folder / f"{path.stem}.png", ImageData(np.clip(pixels, 0.0, 1.0)))
        recorded = {key: value for key, value in params.items() if key not in UNRECORDED}
        entries.append({"name": path.stem, "source": path.name, **jsonable(recorded)})
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "manifest.json") as temporary:
        temporary.write_text(manifest_text(header, entries))
    return PairsWritten(len(entries), skipped)


def _check_outputs(images: list[Path], out_dir: Path, overwrite: bool) -> None:
    """OverwriteError where a pair or the manifest would replace a clean image, or an existing file unless
    `overwrite`."""
    clean = {path.resolve() for path in images}
    stems = dict.fromkeys(path.stem for path in images)
    outputs = [out_dir / folder / f"{stem}.png" for stem in stems for folder in ("input", "target")]
    for output in [*outputs, out_dir / "manifest.json"]:
        if output.resolve() in clean:
            raise OverwriteError(f"{output} is one of the clean images; choose an OUT_DIR that holds none of them")
        refuse_existing(output, "output", overwrite)


def manifest_text(header: dict, entries: list[dict]) -> str:
    """JSON of the header with the entries as its "images" list, one entry per line."""
    images = ",\n  ".join(json.dumps(entry) for entry in entries)
    opening = json.dumps(header)[:-1] + (", " if header else "")
    return opening + f'"images": [\n  {images}\n]}}\n'


def jsonable(value):
    """Parameters with numpy arrays as nested lists and numpy scalars as plain numbers."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value
