"""Whether a restoration helped, judged from the photo alone: no clean reference, only the input and the output.

The judge looks at what the restoration took away and what it left, on the same crops of both: the noise level
(Donoho's wavelet estimate), the sharpness (mean gradient), and the part removed: how large it is, whether it is
white like noise or shaped like the photo's own detail, and whether it is bright like rain. A logistic score per
task, fitted on restorations of the tasks' own degradations whose PSNR gain is known (`benchmarks/no_harm.py fit`),
turns these into a verdict; where it says the output is not better, `--task auto` keeps the input as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .diagnose import KERNEL_SIZE, crops, texture
from .io import to_gray, to_rgb

#: A restoration that gained this much PSNR (dB) must be kept, one that lost this much must be caught (the
#: benchmark's two rows).
GAIN, LOSS = 0.5, -0.5
#: The judge looks at up to this many crops of this many pixels, on a grid over the photo (`diagnose.crops`).
JUDGE_CROPS, JUDGE_CROP = 9, 256
DONE = {"denoise": "denoised", "deblur": "deblurred", "derain": "derained"}
#: Deblurring helped only where the blur kernel estimated from its output is more concentrated than the input's
#: (`kernel_sharpening` above this): a result that holds the photo's blur still, or more of it, made nothing sharper.
#: Not fitted: the natural bound. Five of the ten real camera-shake photos, which the bundled model makes softer, fall
#: below it; so do a third of its synthetic deblurrings that gained 0.5 dB (`benchmarks/no_harm.py report`).
KERNEL_GAIN = 0.0
#: Per task, the logistic weights of `design`'s columns (`benchmarks/no_harm.py fit` prints them).
WEIGHTS: dict[str, tuple[float, ...]] = {
    "denoise": (-1.468, 0.029, -1.115, 0.528, 12.488, 11.245, -9.96),
    "deblur": (2.239, -7.52, 0.797, 1.563, 7.778, -1.874, 2.217, -1.934),
    "derain": (-2.207, 1.966, -3.11, 0.075, 11.436, 18.817, -15.517),
}
MEASURES = ("noise_before", "noise_after", "sharpening", "removed", "whiteness", "brightness")
#: What the judge measures for each task: deblurring also by the blur kernel estimated before and after.
FEATURES = {"denoise": MEASURES, "derain": MEASURES, "deblur": (*MEASURES, "kernel_sharpening")}
#: The measures that are sizes, read by the score on a log scale.
_SIZES = frozenset({"noise_before", "noise_after", "removed"})


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
    }


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
    from .baselines.l0_deblur import estimate_kernel

    peaks = [estimate_kernel(gray, KERNEL_SIZE) for gray in (before, after)]
    return float(np.log(peaks[1].max() / peaks[1].sum()) - np.log(peaks[0].max() / peaks[0].sum()))


def design(task: str, rows: list[dict[str, float]]) -> np.ndarray:
    """The task's features of each row as the logistic score reads them (sizes on a log scale), then a constant."""
    names = FEATURES[task]
    table = np.array([[np.log1p(row[name]) if name in _SIZES else row[name] for name in names] for row in rows])
    return np.column_stack([table.reshape(len(rows), len(names)), np.ones(len(rows))])


def judge(task: str, before: np.ndarray, after: np.ndarray) -> Verdict:
    """Whether `after`, the task's restoration of `before`, is better than it, from the two images alone."""
    found = features(task, before, after)
    better = helped(task, found)
    return Verdict(better, score(task, found), "" if better else _why(task, found), found)


def helped(task: str, found: dict[str, float]) -> bool:
    """The verdict on the task's features: a positive score, and for deblurring a sharper kernel (`KERNEL_GAIN`)."""
    return score(task, found) > 0 and found.get("kernel_sharpening", KERNEL_GAIN) >= KERNEL_GAIN


def score(task: str, found: dict[str, float]) -> float:
    """The logistic score of the task's features (`features`): above 0, the restoration helped."""
    return float(design(task, [found])[0] @ np.array(WEIGHTS[task]))


def _why(task: str, found: dict[str, float]) -> str:
    if task == "deblur" and found["sharpening"] <= 0:
        return "deblurring would have made it softer"
    if task == "deblur" and found["kernel_sharpening"] < KERNEL_GAIN:
        return "the deblurred photo would still hold its blur"
    if task == "denoise" and found["noise_before"] < 2:
        return "there is too little noise to remove"
    if task == "denoise" and found["whiteness"] < 0.5:
        return "denoising would have removed detail, not noise"
    if task == "derain" and found["brightness"] < 0.6:
        return "what deraining would remove does not look like rain"
    return f"the {DONE[task]} photo does not look better than the original"
