"""How well the no-harm check (`mprnet.no_harm`) tells a restoration that helped from one that did harm, judged from
the photo alone, on synthetic pairs whose PSNR is known: every level of every task, clean inputs and the camera-like
levels, restored by the task's bundled model.

    python benchmarks/no_harm.py make  [--split calibration|report] [--cache DIR]   (restores the pairs; slow)
    python benchmarks/no_harm.py fit   [--cache DIR]   (the check's trees, from the photos `fitted_on` names;
                                                        needs scikit-learn; writes src/mprnet/weights/no_harm.json)
    python benchmarks/no_harm.py report [--cache DIR]  (the confusion on the others)
    python benchmarks/no_harm.py real   (what `--task auto` does to each photo of ../shared/data/real, and why)

The calibration split restores 20 training photos (../shared/data/train/bsds432), the report split scikit-image's
three photos, McMaster18's eighteen (../shared/data/val/mcmaster18) and the twelve clean photographs of
../shared/data/photos; one 256-px crop per photo and condition, and each output also made worse on purpose (`HARM`)
and better on purpose (`BETTER`: what a stronger model would give), so that the check learns both directions.
The check is fitted on the training photos and every second photo of McMaster18 and of photos/ (`fitted_on`), and
reported on the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from mprnet.degrade import CameraNoise, GaussianNoise, MotionBlur, seeded_rng
from mprnet.files import atomic_path
from mprnet.infer import cpu_name
from mprnet.io import image_files, read_image, read_rgb
from mprnet.metrics import psnr, sharpness
from mprnet.no_harm import FEATURES, GAIN, LOSS, MODEL, design, feature_names, features, helped, trees
from mprnet.pipeline import restore_image
from mprnet.restorers import AutoRestorer, get_restorer
from mprnet.tasks import TASKS, make_degradation

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CACHE = Path(__file__).resolve().parents[1] / ".data" / "no_harm"
SEED = 424_242
CROP = 256


def _clean() -> None:
    return None


CONDITIONS = {
    "denoise": {
        "clean": _clean,
        **{f"gaussian {s}": partial(GaussianNoise, sigma=s) for s in (3, 5, 10, 15, 25, 50)},
        "poisson": partial(make_degradation, "denoise", "poisson"),
        "camera": CameraNoise,
        "mixed": partial(make_degradation, "denoise", "mixed"),
    },
    "deblur": {
        "clean": _clean,
        **{f"shake {n}": partial(MotionBlur, kernel_size=(n, n), kind="shake") for n in (7, 11, 21)},
        "shake": partial(make_degradation, "deblur", "shake"),
        "linear": partial(make_degradation, "deblur", "linear"),
        "camera": MotionBlur.camera,
    },
    "derain": {
        "clean": _clean,
        **{level: partial(make_degradation, "derain", level) for level in TASKS["derain"].levels},
    },
}


def photos(split: str) -> dict[str, np.ndarray]:
    if split == "calibration":
        return {path.name: read_rgb(path) for path in training_photos()}
    from skimage import data

    found = {name: getattr(data, name)().astype(np.float32) / 255 for name in ("astronaut", "chelsea", "coffee")}
    found.update({path.name: read_rgb(path) for path in held_out_photos()})
    return found


def training_photos() -> list[Path]:
    return image_files(DATA / "train" / "bsds432")[::21][:20]


def held_out_photos() -> list[Path]:
    return image_files(DATA / "val" / "mcmaster18") + image_files(DATA / "photos")


def fitted_on() -> set[str]:
    """The photos the check is fitted on: the training photos, and every second one of McMaster18 and of photos/ in
    name order (their kind of picture, smooth skies and bokeh, is not among the training photos)."""
    second = [*image_files(DATA / "val" / "mcmaster18")[::2], *image_files(DATA / "photos")[::2]]
    return {path.name for path in [*training_photos(), *second]}


def crop(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    top = rng.integers(0, photo.shape[0] - CROP + 1)
    left = rng.integers(0, photo.shape[1] - CROP + 1)
    return photo[top : top + CROP, left : left + CROP]


def quantized(pixels: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)


def make_pairs(split: str, cache: Path) -> Path:
    """Restore every photo's crop under every condition with the task's bundled model; the 8-bit triples in one file."""
    rows: dict[str, list] = {"task": [], "condition": [], "photo": [], "clean": [], "degraded": [], "restored": []}
    for task, conditions in CONDITIONS.items():
        restorer = get_restorer(task, precision="auto")
        for condition, make in conditions.items():
            for name, photo in photos(split).items():
                rng = seeded_rng(SEED, task, condition, name)
                clean = quantized(crop(photo, rng)).astype(np.float32) / 255
                degradation = make()
                degraded = clean if degradation is None else degradation(clean, rng)[0]
                degraded = quantized(degraded).astype(np.float32) / 255
                restored = restorer(degraded)
                for key, value in zip(rows, (task, condition, name, clean, degraded, restored)):
                    rows[key].append(quantized(value) if isinstance(value, np.ndarray) else value)
            print(f"{task} {condition}: {len(rows['task'])} pairs", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{split}.npz"
    np.savez_compressed(path, **{key: np.array(value) for key, value in rows.items()})
    return path


def load_pairs(cache: Path) -> dict[str, np.ndarray]:
    """Both splits' pairs, and with each the bundled model's output made worse (`HARM`) and better (`BETTER`) on
    purpose."""
    parts = []
    for split in ("calibration", "report"):
        path = cache / f"{split}.npz"
        if not path.is_file():
            sys.exit(f"no pairs at {path}: run `python benchmarks/no_harm.py make --split {split}` first")
        with np.load(path) as pairs:
            parts.append({key: pairs[key] for key in pairs.files})
    found = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    made_worse = {key: [] for key in found}
    for variant, make in VARIANTS.items():
        for index in range(len(found["task"])):
            for key in found:
                made_worse[key].append(found[key][index])
            made_worse["condition"][-1] = f"{found['condition'][index]}, {variant}"
            clean, restored = (found[key][index].astype(np.float32) / 255 for key in ("clean", "restored"))
            made_worse["restored"][-1] = quantized(make(clean, restored))
    return {key: np.concatenate([found[key], np.array(made_worse[key])]) for key in found}


def _softened(pixels: np.ndarray) -> np.ndarray:
    return gaussian_filter(pixels, (1.5, 1.5, 0))


def _oversharpened(pixels: np.ndarray) -> np.ndarray:
    return pixels + 2.0 * (pixels - gaussian_filter(pixels, (1.0, 1.0, 0)))


#: Outputs made worse on purpose, as a restoration gone wrong makes them: detail smoothed away, or edges ringing.
HARM = {"softened": _softened, "oversharpened": _oversharpened}
#: Outputs made better on purpose, as a stronger model would give them: the clean photo itself, or halfway to it.
BETTER = {
    "restored perfectly": lambda clean, restored: clean,
    "halfway to clean": lambda clean, restored: (clean + restored) / 2,
}
VARIANTS = {
    **{name: lambda clean, restored, spoil=spoil: spoil(restored) for name, spoil in HARM.items()},
    **BETTER,
}


def gains(pairs: dict[str, np.ndarray]) -> np.ndarray:
    """The PSNR each restoration gained over its input, in dB (RGB, or Y for deraining, as the tasks score)."""
    found = []
    for task, clean, degraded, restored in zip(pairs["task"], pairs["clean"], pairs["degraded"], pairs["restored"]):
        y = TASKS[str(task)].comparison_protocol == "y"
        c, d, r = (a.astype(np.float32) / 255 for a in (clean, degraded, restored))
        found.append(min(psnr(r, c, y_channel=y), 60.0) - min(psnr(d, c, y_channel=y), 60.0))
    return np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("make", "fit", "report", "real"))
    parser.add_argument("--split", choices=("calibration", "report"), default="report")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    if args.action == "make":
        print(f"wrote {make_pairs(args.split, args.cache)} ({cpu_name()})")
    elif args.action == "real":
        real_photos()
    else:
        pairs = load_pairs(args.cache)
        fitted = np.isin(pairs["photo"], sorted(fitted_on()))
        table, gained = measured(pairs, args.cache), gains(pairs)
        if args.action == "fit":
            fit(pairs, table, gained, fitted)
        else:
            report(pairs, table, gained, ~fitted)


def measured(pairs: dict[str, np.ndarray], cache: Path) -> list[dict[str, float]]:
    """The judge's features of every pair, kept in the cache (they take minutes: a blur kernel per deblurred pair).
    Pairs only ever join at the end, so the cached rows that hold every feature the judge now reads are kept and the
    rest measured; delete the cache when the judge's measures change."""
    path = cache / "features.json"
    cached = json.loads(path.read_text()) if path.is_file() else []
    table: list[dict[str, float]] = []
    for task, row in zip(pairs["task"], cached):
        if not set(FEATURES[str(task)]) <= set(row):
            break
        table.append(row)
    todo = zip(pairs["task"][len(table) :], pairs["degraded"][len(table) :], pairs["restored"][len(table) :])
    table += [features(str(t), d.astype(np.float32) / 255, r.astype(np.float32) / 255) for t, d, r in todo]
    path.write_text(json.dumps(table))
    return table


#: The share of the restorations that gained GAIN on the fitted photos that the check must keep; the rest of the
#: threshold's room goes to catching losses.
KEEP_FITTED = 0.95


def fit(pairs: dict[str, np.ndarray], table: list[dict[str, float]], gained: np.ndarray, fitted: np.ndarray) -> None:
    """Per task, gradient-boosted trees on the photos `fitted_on` names (gained or not, each weighted by how much,
    capped at 3 dB), their threshold set so that KEEP_FITTED of the restorations that gained GAIN are kept; written
    to `no_harm.MODEL` for the judge to read."""
    from sklearn.ensemble import GradientBoostingClassifier

    model = {}
    for task in CONDITIONS:
        rows = (pairs["task"] == task) & fitted
        x, gain = design(task, [found for found, row in zip(table, rows) if row]), gained[rows]
        ensemble = GradientBoostingClassifier(
            max_depth=3, n_estimators=200, learning_rate=0.05, subsample=0.8, random_state=0
        )
        ensemble.fit(x, gain > 0, sample_weight=np.minimum(np.abs(gain), 3.0) + 0.1)
        raw = ensemble.decision_function(x)
        shares = sum(tree.predict(x) for tree in ensemble.estimators_[:, 0])
        model[task] = {
            "features": feature_names(task),
            "bias": float(np.median(raw - ensemble.learning_rate * shares)),
            "rate": ensemble.learning_rate,
            "threshold": float(np.quantile(raw[gain >= GAIN], 1 - KEEP_FITTED)),
            "trees": [_tree(estimator.tree_) for estimator in ensemble.estimators_[:, 0]],
        }
        print(f"{task}: {len(gain)} fitted restorations, threshold {model[task]['threshold']:.3f}")
    with atomic_path(MODEL) as temporary:
        temporary.write_text(json.dumps(model, separators=(",", ":")) + "\n")
    trees.cache_clear()
    print(f"wrote {MODEL}")


def _tree(tree) -> dict[str, list]:
    return {
        "feature": [int(f) for f in tree.feature],
        "split": [round(float(t), 6) for t in tree.threshold],
        "left": [int(n) for n in tree.children_left],
        "right": [int(n) for n in tree.children_right],
        "value": [round(float(v), 6) for v in tree.value[:, 0, 0]],
    }


def report(pairs: dict[str, np.ndarray], table: list[dict[str, float]], gained: np.ndarray, shown: np.ndarray) -> None:
    """The confusion on the photos the check was not fitted on: per condition, then for the bundled models' own
    outputs (the target) and for those made worse on purpose."""
    kept = np.array([helped(str(task), found) for task, found in zip(pairs["task"], table)])
    pairs = {key: value[shown] for key, value in pairs.items()}
    gained, kept = gained[shown], kept[shown]
    names = sorted(set(pairs["photo"]))
    print(f"The no-harm check on {len(kept)} restorations of {len(names)} photos it was not fitted on ({cpu_name()}):")
    print("  " + ", ".join(names))
    print(
        f"{'task':8} {'condition':26} {'pairs':>5} {'mean gain':>9} {'gained':>6} {'kept':>5} {'lost':>5} {'caught':>6}"
    )
    for task, conditions in CONDITIONS.items():
        for condition in [*conditions, *(f"{c}, {variant}" for variant in VARIANTS for c in conditions)]:
            rows = (pairs["task"] == task) & (pairs["condition"] == condition)
            print(_row(f"{task:8} {condition:26}", gained[rows], kept[rows]))
    variant = np.array([str(condition).partition(", ")[2] for condition in pairs["condition"]])
    for title, rows in (
        ("the bundled models' outputs", variant == ""),
        ("outputs made worse on purpose", np.isin(variant, list(HARM))),
        ("outputs made better on purpose", np.isin(variant, list(BETTER))),
    ):
        won, lost = (gained >= GAIN) & rows, (gained <= LOSS) & rows
        print(
            f"{title}: kept {kept[won].mean():.1%} of the {won.sum()} that gained {GAIN} dB or more (target 95%); "
            f"caught {1 - kept[lost].mean():.1%} of the {lost.sum()} that lost {-LOSS} dB or more (target 90%)"
        )


def real_photos() -> None:
    """Each real photo through `--task auto` (bf16 where native): the decision, the judge's verdict, and the
    sharpness (mean gradient, 0-255) or noise level before and after."""
    auto = AutoRestorer(precision="auto")
    print(f"What --task auto does to the real photos of {DATA / 'real'} ({cpu_name()}):")
    for path in image_files(DATA / "real" / "blurry") + image_files(DATA / "real" / "noisy"):
        image = read_image(path)
        restored = restore_image(image, auto)
        steps = "+".join(restored.diagnosis.steps) if restored.diagnosis else ""
        verdict = restored.verdict
        judged = "" if verdict is None else f"judge {verdict.score:+.2f}"
        outcome = restored.warning or ("restored" if restored.method else "left alone: " + restored.diagnosis.decision)
        measure = f"sharpness {sharpness(image.pixels):.2f} -> {sharpness(restored.image.pixels):.2f}"
        print(f"  {path.parent.name}/{path.name}: {steps or '-'}; {judged}; {outcome}; {measure}")


def _row(label: str, gained: np.ndarray, kept: np.ndarray) -> str:
    won, lost = gained >= GAIN, gained <= LOSS
    share = f"{kept[won].mean():5.0%}" if won.any() else f"{'-':>5}"
    caught = f"{1 - kept[lost].mean():6.0%}" if lost.any() else f"{'-':>6}"
    return f"{label} {len(gained):5d} {gained.mean():9.2f} {won.sum():6d} {share} {lost.sum():5d} {caught}"


if __name__ == "__main__":
    main()
