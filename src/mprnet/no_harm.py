"""Whether a restoration helped, judged from the photo alone: no clean reference, only the input and the output.

The judge looks at what the restoration took away and what it left, on the same crops of both: the noise level
(Donoho's wavelet estimate), the sharpness (mean gradient), and the part removed: how large it is, whether it is
white like noise or shaped like the photo's own detail (where it lies along the output's edges, how much of it is
coarse), and whether it is bright like rain. A small ensemble of decision trees per task, fitted on restorations of
the tasks' own degradations whose PSNR gain is known (`benchmarks/no_harm.py fit`, stored in `weights/no_harm.json`),
turns these into a verdict; where it says the output is not better, `--task auto` keeps the input as it was.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, sobel

from .diagnose import KERNEL_SIZE, crops, texture
from .errors import MprnetError
from .io import to_gray, to_rgb

#: A restoration that gained this much PSNR (dB) must be kept, one that lost this much must be caught (the
#: benchmark's two rows).
GAIN, LOSS = 0.5, -0.5
#: The judge looks at up to this many crops of this many pixels, on a grid over the photo (`diagnose.crops`).
JUDGE_CROPS, JUDGE_CROP = 9, 256
DONE = {"denoise": "denoised", "deblur": "deblurred", "derain": "derained"}
#: Per task, the fitted trees (`benchmarks/no_harm.py fit` writes them): the features they read, in `design`'s order.
MODEL = Path(__file__).parent / "weights" / "no_harm.json"
MEASURES = (
    "noise_before",
    "noise_after",
    "sharpening",
    "removed",
    "whiteness",
    "brightness",
    "structure",
    "coarse",
)
#: What the judge measures for each task: deblurring also by the blur kernel estimated before and after.
FEATURES = {"denoise": MEASURES, "derain": MEASURES, "deblur": (*MEASURES, "kernel_sharpening")}
#: The measures that are sizes, read on a log scale, and the ratios of sizes the trees also read (on that scale, a
#: difference): how much was removed for the noise there was, and how much noise is left of it.
_SIZES = frozenset({"noise_before", "noise_after", "removed"})
_RATIOS = (("removed", "noise_before"), ("noise_after", "noise_before"))


@dataclass(frozen=True)
class Verdict:
    """The judge's view of one restoration: whether it helped, how sure (the score, above 0: helped), and why."""

    helped: bool
    score: float
    reason: str
    features: dict[str, float]

    def record(self) -> dict:
        return {"helped": self.helped, "score": round(self.score, 3), "reason": self.reason}


def features(task: str, before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """What the judge measures of the task's restoration, from same-place crops of the input and the output (H x W
    x C in [0, 1]; gray is repeated, alpha dropped): each crop's measures, then their median."""
    pairs = np.concatenate([to_rgb(before), to_rgb(after)], axis=2)
    views = [
        (to_gray(view[..., :3])[..., 0], to_gray(view[..., 3:])[..., 0])
        for view in crops(pairs, JUDGE_CROPS, JUDGE_CROP)
    ]
    measured = [_measures(*view) for view in views]
    found = {name: float(np.median([crop[name] for crop in measured])) for name in MEASURES}
    if "kernel_sharpening" in FEATURES[task]:
        found["kernel_sharpening"] = _kernel_sharpening(*max(views, key=lambda view: texture(view[0])))
    return found


def _measures(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    removed = before - after
    spread = float(removed.std()) * 255
    return {
        "noise_before": _noise(before),
        "noise_after": _noise(after),
        "sharpening": float(np.log((texture(after) + 0.1) / (texture(before) + 0.1))),
        "removed": spread,
        "whiteness": _noise(removed) / max(spread, 1e-3),
        "brightness": float(np.clip(removed, 0, None).sum() / max(np.abs(removed).sum(), 1e-9)),
        "structure": _along_edges(removed, after),
        "coarse": float((gaussian_filter(removed, 1.0) ** 2).sum() / max(float((removed**2).sum()), 1e-12)),
    }


def _along_edges(removed: np.ndarray, after: np.ndarray) -> float:
    """The correlation of where something was removed with where the output has edges: noise lies everywhere alike,
    detail taken away lies along the edges."""
    amount = gaussian_filter(np.abs(removed), 2.0).ravel()
    edges = gaussian_filter(np.hypot(sobel(after, 0), sobel(after, 1)), 2.0).ravel()
    if amount.std() == 0 or edges.std() == 0:
        return 0.0
    return float(np.corrcoef(amount, edges)[0, 1])


def _noise(gray: np.ndarray) -> float:
    """Donoho's estimate of white noise (0-255): the median absolute finest diagonal Haar coefficient / 0.6745.
    `metrics.noise_sigma` is the same estimator through scikit-image, 8 times slower on the judge's 18 crops per photo
    and 0.1-0.5% off at odd sizes (its padding); the judge's weights are fitted with this one."""
    rows, cols = (gray.shape[0] // 2) * 2, (gray.shape[1] // 2) * 2
    g = gray[:rows, :cols]
    diagonal = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2
    return float(np.median(np.abs(diagonal)) / 0.6745) * 255


def _kernel_sharpening(before: np.ndarray, after: np.ndarray) -> float:
    """How much more concentrated the blur kernel estimated from the output is than the input's (log ratio of
    their peaks, `diagnose.kernel_peak`'s measure): deblurring that worked raises it, and so nearly never a photo
    made softer or one that was sharp already."""
    from .kernel_probe import probe_kernel

    peaks = [probe_kernel(gray, KERNEL_SIZE) for gray in (before, after)]
    return float(np.log(peaks[1].max() / peaks[1].sum()) - np.log(peaks[0].max() / peaks[0].sum()))


def design(task: str, rows: list[dict[str, float]]) -> np.ndarray:
    """The task's features of each row as the trees read them: sizes on a log scale, then the ratios of sizes."""
    logged = [{name: np.log1p(value) if name in _SIZES else value for name, value in row.items()} for row in rows]
    table = [[row[name] for name in FEATURES[task]] + [row[a] - row[b] for a, b in _RATIOS] for row in logged]
    return np.array(table, dtype=np.float64).reshape(len(rows), len(FEATURES[task]) + len(_RATIOS))


def judge(task: str, before: np.ndarray, after: np.ndarray) -> Verdict:
    """Whether `after`, the task's restoration of `before`, is better than it, from the two images alone."""
    found = features(task, before, after)
    better = helped(task, found)
    return Verdict(better, score(task, found), "" if better else _why(task, found), found)


def helped(task: str, found: dict[str, float]) -> bool:
    """The verdict on the task's features: a positive score."""
    return score(task, found) > 0


def score(task: str, found: dict[str, float]) -> float:
    """The trees' log-odds that the restoration helped, less the task's threshold: above 0, it helped."""
    model = trees()[task]
    x = design(task, [found])[0]
    raw = model["bias"] + model["rate"] * sum(_leaf(tree, x) for tree in model["trees"])
    return float(raw - model["threshold"])


def feature_names(task: str) -> list[str]:
    """The names of `design`'s columns for the task."""
    return [*FEATURES[task], *(f"{a}/{b}" for a, b in _RATIOS)]


@functools.cache
def trees() -> dict[str, dict]:
    """Per task the fitted ensemble: `features` (its columns' names), `bias`, `rate`, `threshold` and `trees`, each
    tree as parallel lists (`feature`, `split`, `left`, `right`, `value`; a leaf's `left` is -1)."""
    model = json.loads(MODEL.read_text())
    for task in FEATURES:
        if model.get(task, {}).get("features") != feature_names(task):
            raise MprnetError(f"{MODEL} was fitted on other measures than the judge's: run benchmarks/no_harm.py fit")
    return model


def _leaf(tree: dict, x: np.ndarray) -> float:
    node = 0
    while tree["left"][node] != -1:
        node = tree["left"][node] if x[tree["feature"][node]] <= tree["split"][node] else tree["right"][node]
    return tree["value"][node]


def _why(task: str, found: dict[str, float]) -> str:
    if task == "deblur" and found["sharpening"] <= 0:
        return "deblurring would have made it softer"
    if task == "deblur" and found["kernel_sharpening"] < 0:
        return "the deblurred photo would still hold its blur"
    if task == "denoise" and found["noise_before"] < 2:
        return "there is too little noise to remove"
    if task == "denoise" and found["whiteness"] < 0.5:
        return "denoising would have removed detail, not noise"
    if task == "derain" and found["brightness"] < 0.6:
        return "what deraining would remove does not look like rain"
    return f"the {DONE[task]} photo does not look better than the original"
