"""`--method l0` beside its IPOL reference on the golden set (../shared/golden/l0) and on held-out photos.

    python benchmarks/l0_golden.py            (prints the tables and writes docs/results/l0_golden.txt)
    python benchmarks/l0_golden.py --golden-only

Golden set: per photo the aligned PSNR (psnr_aligned.json's measure) of the blurred input, of the reference's
output, of ours with caution (the default) and without it (the reference's settings), the similarity of our kernel
to the reference's (`l0_steps.kernel_similarity`), why caution kept only part of the deconvolution, and our seconds.
Held-out: the four photos of ../shared/data/photos that the golden set leaves out and McMaster18's eighteen, made as
the golden set (256-px centre crop, the photos downscaled 4x first), blurred by the project's camera-shake kernel
(`mprnet.degrade.blur`, 11 to 25 px) plus 1% noise, rounded to 8 bits.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mprnet.baselines.l0_deblur import deblur
from mprnet.baselines.l0_steps import aligned_psnr, kernel_similarity, tv_deconvolve_reference
from mprnet.degrade import seeded_rng
from mprnet.degrade.blur import blur, camera_shake_kernel
from mprnet.files import atomic_path
from mprnet.infer import cpu_name
from mprnet.io import read_rgb

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT.parent / "shared" / "golden" / "l0"
DATA = ROOT.parent / "shared" / "data"
RESULT = ROOT / "docs" / "results" / "l0_golden.txt"
HELD_OUT_PHOTOS = ("ColdRipple", "DarkestHour", "Kite", "summer_1am")
SIZES = (11, 15, 21, 25)
NOISE, CROP, SEED = 0.01, 256, 2026


def golden_rows(golden: Path = GOLDEN) -> list[dict]:
    """One row per golden photo: the PSNRs, the kernel similarity, the caution and the seconds."""
    sizes = json.loads((golden / "degradations.json").read_text())
    reference = json.loads((golden / "psnr_aligned.json").read_text())["per_image"]
    rows = []
    for name, degradation in sizes.items():
        clean, blurred = (read_rgb(golden / part / f"{name}.png").astype(np.float64) for part in ("clean", "blurred"))
        start = time.perf_counter()
        found = deblur(blurred, degradation["kernel_size"])
        seconds = time.perf_counter() - start
        plain = tv_deconvolve_reference(blurred, found.kernel)
        rows.append(
            {
                "photo": name,
                "kernel": degradation["kernel_size"],
                "blurred": aligned_psnr(blurred, clean),
                "reference": reference[name]["reference"],
                "ours": aligned_psnr(found.image, clean),
                "no_caution": aligned_psnr(plain, clean),
                "similarity": kernel_similarity(found.kernel, np.load(golden / "kernel_reference" / f"{name}.npy")),
                "caution": found.caution or "-",
                "seconds": seconds,
            }
        )
    return rows


def held_out_cases() -> list[tuple[str, np.ndarray, int]]:
    """(name, clean 256-px crop, kernel size) of the held-out photos."""
    cases = [
        (f"{name}-{size}", _crop(DATA / "photos" / f"{name}.jpg", 4), size)
        for name in HELD_OUT_PHOTOS
        for size in SIZES
    ]
    for index, path in enumerate(sorted((DATA / "val" / "mcmaster18").glob("*.png"))):
        size = SIZES[index % len(SIZES)]
        cases.append((f"mcmaster{path.stem}-{size}", _crop(path, 1), size))
    return cases


def blurred_copy(name: str, clean: np.ndarray, size: int) -> np.ndarray:
    """The clean crop blurred by a camera-shake kernel of `size` (seeded by the name) plus 1% noise, 8-bit."""
    rng = seeded_rng(SEED, name)
    noisy = blur(clean, camera_shake_kernel(size, rng)) + rng.normal(0.0, NOISE, clean.shape)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255.0) / 255.0


def held_out_rows() -> list[dict]:
    rows = []
    for name, clean, size in held_out_cases():
        blurred = blurred_copy(name, clean, size)
        found = deblur(blurred, size)
        plain = tv_deconvolve_reference(blurred, found.kernel)
        rows.append(
            {
                "photo": name,
                "blurred": aligned_psnr(blurred, clean),
                "no_caution": aligned_psnr(plain, clean),
                "ours": aligned_psnr(found.image, clean),
                "caution": found.caution or "-",
            }
        )
    return rows


def _crop(path: Path, downscale: int) -> np.ndarray:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if downscale > 1:
            image = image.resize((image.width // downscale, image.height // downscale), Image.LANCZOS)
        pixels = np.asarray(image, dtype=np.float64) / 255.0
    top, left = (pixels.shape[0] - CROP) // 2, (pixels.shape[1] - CROP) // 2
    return pixels[top : top + CROP, left : left + CROP]


def golden_table(rows: list[dict]) -> list[str]:
    lines = [
        "Golden set (../shared/golden/l0): aligned PSNR, dB",
        f"{'photo':14s} {'px':>3s} {'blurred':>8s} {'ref':>7s} {'ours':>7s} {'no-caut':>8s} {'kernel~ref':>10s}"
        f" {'caution':>9s} {'s':>5s}",
    ]
    for row in rows:
        lines.append(
            f"{row['photo']:14s} {row['kernel']:3d} {row['blurred']:8.2f} {row['reference']:7.2f} {row['ours']:7.2f}"
            f" {row['no_caution']:8.2f} {row['similarity']:10.3f} {row['caution']:>9s} {row['seconds']:5.1f}"
        )
    means = {key: np.mean([row[key] for row in rows]) for key in ("blurred", "reference", "ours", "no_caution")}
    lines.append(
        f"{'mean':14s} {'':3s} {means['blurred']:8.2f} {means['reference']:7.2f} {means['ours']:7.2f}"
        f" {means['no_caution']:8.2f}"
    )
    worst = min(row["ours"] - row["blurred"] for row in rows)
    lines.append(f"{_outcomes(rows)}; worst ours - blurred: {worst:+.2f} dB")
    return lines


def _outcomes(rows: list[dict]) -> str:
    """How often each caution outcome came out, e.g. "caution: - 6, flat 1, residual 1 of 8"."""
    counts = {reason: sum(row["caution"] == reason for row in rows) for reason in ("-", "flat", "residual")}
    return "caution: " + ", ".join(f"{reason} {count}" for reason, count in counts.items()) + f" of {len(rows)}"


def held_out_table(rows: list[dict]) -> list[str]:
    lines = [
        "Held-out photos, camera shake of 11-25 px + 1% noise: aligned PSNR, dB",
        f"{'photo':18s} {'blurred':>8s} {'no-caut':>8s} {'ours':>7s} {'caution':>9s}",
    ]
    for row in rows:
        lines.append(
            f"{row['photo']:18s} {row['blurred']:8.2f} {row['no_caution']:8.2f} {row['ours']:7.2f} {row['caution']:>9s}"
        )
    losses = [row for row in rows if row["ours"] < row["blurred"] - 1.0]
    mean = {key: np.mean([row[key] for row in rows]) for key in ("blurred", "no_caution", "ours")}
    worst = min(row["ours"] - row["blurred"] for row in rows)
    lines.append(
        f"{'mean':18s} {mean['blurred']:8.2f} {mean['no_caution']:8.2f} {mean['ours']:7.2f}"
        f"\n{_outcomes(rows)}; worst ours - blurred: {worst:+.2f} dB; more than 1 dB below the blurred input:"
        f" {len(losses)}" + (f" ({', '.join(row['photo'] for row in losses)})" if losses else "")
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--golden-only", action="store_true", help="leave out the held-out photos")
    arguments = parser.parse_args()
    lines = [f"CPU: {cpu_name()}; the reference (C++) takes about 8 s for 256x256 at 21 px on it", ""]
    lines += golden_table(golden_rows())
    if not arguments.golden_only:
        lines += ["", *held_out_table(held_out_rows())]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with atomic_path(RESULT) as temporary:
        temporary.write_text(text)


if __name__ == "__main__":
    main()
