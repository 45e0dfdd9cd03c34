"""`mprnet degrade`: make a paired folder (input/, target/, manifest.json) from a folder of clean images."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from ..degrade import LEVELS, TASKS, make_degradation
from ..errors import DataError, ImageError

HELP = "degrade clean images (noise, motion blur, rain) into a paired input/ + target/ folder with a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=TASKS, help="which degradation to apply")
    levels = "; ".join(f"{task}: {', '.join(names)}" for task, names in LEVELS.items())
    parser.add_argument("--level", default=None,
                        help=f"{levels}; denoise also takes a sigma (0-255), deblur a maximum kernel size "
                             "(default: the first of each list)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; each image's seed comes from it and the "
                                                            "image's file name (default: 0)")
    parser.add_argument("clean_dir", type=Path, metavar="CLEAN_DIR", help="folder of clean images")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write input/, target/ and "
                                                                      "manifest.json into")


def run(args: argparse.Namespace) -> int:
    from ..data import image_files, read_rgb
    from ..io import ImageData, write_image

    level = LEVELS[args.task][0] if args.level is None else args.level
    degradation = make_degradation(args.task, level)
    if args.seed < 0:
        raise DataError(f"Expected a non-negative --seed, found {args.seed}.")
    if not args.clean_dir.is_dir():
        raise DataError(f"Expected a folder of clean images, found no folder at {args.clean_dir}.")
    entries, skipped, stems = [], 0, set()
    for path in image_files(args.clean_dir):
        try:
            if path.stem in stems:
                raise ImageError(f"{path}: another image already has the name {path.stem}")
            clean = read_rgb(path)
        except ImageError as error:
            print(f"mprnet degrade: skipped {error}", file=sys.stderr)
            skipped += 1
            continue
        stems.add(path.stem)
        degraded, params = degradation(clean, image_rng(args.seed, path.name))
        for folder, pixels in (("input", degraded), ("target", clean)):
            write_image(args.out_dir / folder / f"{path.stem}.png", ImageData(np.clip(pixels, 0.0, 1.0)))
        entries.append({"name": path.stem, "source": path.name, **jsonable(params)})
    args.out_dir.mkdir(parents=True, exist_ok=True)
    header = {"task": args.task, "level": level, "seed": args.seed}
    (args.out_dir / "manifest.json").write_text(manifest_text(header, entries))
    print(f"wrote {len(entries)} pairs to {args.out_dir}" + (f"; skipped {skipped} files" if skipped else ""))
    return 1 if skipped else 0


def image_rng(seed: int, name: str) -> np.random.Generator:
    """A generator that depends only on the base seed and the file name, so adding files changes no other pair."""
    words = np.frombuffer(hashlib.sha256(name.encode()).digest()[:16], dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence([seed, *words.tolist()]))


def manifest_text(header: dict, entries: list[dict]) -> str:
    """JSON of the header with the entries as its "images" list, one entry per line."""
    images = ",\n  ".join(json.dumps(entry) for entry in entries)
    return json.dumps(header)[:-1] + f', "images": [\n  {images}\n]}}\n'


def jsonable(value):
    """Parameters with numpy arrays as nested lists and numpy scalars as plain numbers."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value
