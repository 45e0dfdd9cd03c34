"""Packs the photos a GPU call trains and validates on into the ignored folder .data/, where scripts/gpu_run.sh
reads them, small enough to travel with the repository (the device takes 64 MiB in all):
  .data/train/  every training photo, re-encoded as WebP at the highest quality whose total fits the space left
                (at most --train-mib, 22 MiB by default)
  .data/val/    each validation photo cut to its central --val-crop pixels, lossless (PNG): validation scores these
                very crops, degraded with the same seeds, so the GPU run's scores equal this machine's
Then prints what the call carries (tracked files, untracked ones that git does not ignore, .data) against the limit,
and exits with status 1 where it is over.
  python scripts/pack_device_data.py [--train DIR] [--val DIR] [--out DIR] [--train-mib MIB] [--val-crop PX]
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from mprnet.data import centre_crop

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
#: What one device call may carry, and what is kept spare for files a session adds before it calls.
LIMIT, SPARE = 64 * MIB, 1 * MIB
QUALITIES = range(95, 79, -1)
#: The file that marks a folder as a pack, which packing again may replace (and no other folder).
MARK = "PACKED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=ROOT.parent / "shared/data/train/bsds432")
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared/data/val/mcmaster18")
    parser.add_argument("--out", type=Path, default=ROOT / ".data")
    parser.add_argument("--train-mib", type=float, default=22.0)
    parser.add_argument("--val-crop", type=int, default=256)
    args = parser.parse_args()
    photos = [path for path in sorted(args.train.glob("*")) if path.is_file()]
    if not photos or not args.val.is_dir():
        print(f"no training photos in {args.train} or no validation folder {args.val}", file=sys.stderr)
        return 2
    if args.out.exists() and not (args.out / MARK).exists():
        print(f"{args.out} exists and is no earlier pack: give another --out", file=sys.stderr)
        return 2
    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "train").mkdir(parents=True)
    (args.out / MARK).write_text("made by scripts/pack_device_data.py, which replaces this folder when run again\n")
    (args.out / "val").mkdir()
    for path in sorted(args.val.glob("*")):
        crop_centre(path, args.val_crop).save(args.out / "val" / f"{path.stem}.png")
    repository = repository_bytes()
    room = min(args.train_mib * MIB, LIMIT - SPARE - repository - folder_bytes(args.out))
    quality, encoded = fitting_encoding(photos, room)
    for path, data in zip(photos, encoded, strict=True):
        (args.out / "train" / f"{path.stem}.webp").write_bytes(data)
    carried = repository + folder_bytes(args.out)
    print(
        f"packed {len(photos)} training photos (WebP quality {quality}, {folder_bytes(args.out / 'train') / MIB:.1f} "
        f"MiB) and {len(list(args.val.glob('*')))} validation crops of {args.val_crop} px "
        f"({folder_bytes(args.out / 'val') / MIB:.1f} MiB); the call carries {carried / MIB:.1f} MiB of {LIMIT // MIB}"
    )
    if carried > LIMIT:
        print("too large for the device: lower --train-mib or track fewer files", file=sys.stderr)
        return 1
    return 0


def crop_centre(path: Path, size: int) -> Image.Image:
    """The crop validation takes (`data.centre_crop`), of the pixels as stored."""
    return Image.fromarray(centre_crop(np.asarray(Image.open(path)), size))


def encode(path: Path, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, "WEBP", quality=quality, method=4)
    return buffer.getvalue()


def fitting_encoding(photos: list[Path], room: float) -> tuple[int, list[bytes]]:
    """The highest quality whose photos fit in `room` bytes, and the photos so encoded: a sample of every eighth
    photo picks the first quality to try, then lower ones follow until the whole set fits."""
    with ProcessPoolExecutor() as pool:
        sample = photos[::8]
        share = len(photos) / len(sample)
        fitting = [q for q in QUALITIES if share * sum(map(len, pool.map(encode, sample, [q] * len(sample)))) <= room]
        for quality in QUALITIES[QUALITIES.index(fitting[0]) if fitting else -1 :]:
            encoded = list(pool.map(encode, photos, [quality] * len(photos), chunksize=8))
            if sum(map(len, encoded)) <= room:
                return quality, encoded
    raise SystemExit(f"the training photos do not fit in {room / MIB:.1f} MiB even at WebP quality {QUALITIES[-1]}")


def repository_bytes() -> int:
    """Tracked files and untracked ones that git does not ignore: what travels to the device besides carried paths."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    files = [ROOT / name for name in listed.decode().split("\0") if name]
    return sum(path.stat().st_size for path in files if path.is_file())


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


if __name__ == "__main__":
    sys.exit(main())
