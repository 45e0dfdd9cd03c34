"""The one image pipeline that the command line and the server call for each image: decide what restores it (the
restorer itself, or what `--task auto` picks), say so before the work, restore every frame, then judge from the
photo alone whether the result is better (`no_harm`). Under `--task auto` a result that is not better is dropped
and the image comes back as it was; with a task chosen by hand the result stands and carries the judge's warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .api import restore_pixels
from .baselines import get_baseline
from .diagnose import Diagnosis, diagnose
from .io import ImageData, is_gray
from .no_harm import FEATURES, Verdict, judge
from .restorers import Restorer, decided, remark, resolve


@dataclass(frozen=True)
class Restored:
    """What became of one image: the image to write, what `--task auto` decided (None: no decision was asked for),
    what restored it (None: it comes back as it was) and the judge's verdict (None: not judged)."""

    image: ImageData
    diagnosis: Diagnosis | None
    chosen: Restorer | None
    verdict: Verdict | None = None

    @property
    def method(self) -> str | None:
        return None if self.chosen is None else self.chosen.name

    @property
    def left_alone(self) -> bool:
        return self.chosen is None

    @property
    def warning(self) -> str:
        """What the printed line, the report and the page say where the judge found no gain ("" where it did)."""
        if self.verdict is None or self.verdict.helped:
            return ""
        return f"left alone: {self.verdict.reason}" if self.left_alone else f"warning: {self.verdict.reason}"

    def steps(self, task: str) -> list[str]:
        """The tasks applied, in order, for a restoration asked for `task`: what task auto did (its decision where
        it did nothing), else `task` itself."""
        if self.diagnosis is None:
            return [task]
        return (self.diagnosis.steps if not self.left_alone else []) or [self.diagnosis.decision]

    def afterwards(self) -> list[str]:
        """What the printed lines add once the work is done: a second task that followed, the judge's warning."""
        then = self.diagnosis.then if self.diagnosis is not None else None
        found = [f"then {then.decision} ({then.confidence:.0%} sure)"] if then is not None else []
        return found + ([self.warning] if self.warning else [])

    def record(self) -> dict[str, Any]:
        """What the --report line adds to the diagnosis's own record."""
        judged = {"judged": self.verdict.record(), "warning": self.warning} if self.verdict else {}
        return {"method": self.method, **judged}


def restore_image(
    image: ImageData,
    restorer: Restorer,
    announce: Callable[[str], None] | None = None,
    gray_method: str | None = None,
    **known: Any,
) -> Restored:
    """Restore one image through the pipeline. `announce` hears the decision before the work starts (with `--task
    auto`, or where a black-and-white photo gets `gray_method` instead of a network); `known` goes to the restorer
    (sigma, kernel, progress)."""
    diagnosis, chosen = resolve(restorer, image.pixels)
    how = remark(chosen)
    if gray_method and diagnosis is None and is_gray(image.pixels):
        chosen, how, known = _gray_restorer(image, gray_method, known)
    if announce and (diagnosis is not None or how):
        announce(diagnosis.summary() + how if diagnosis is not None else how.lstrip("; "))
    if chosen is None:
        return Restored(image, diagnosis, None)
    step = chosen
    restored = image.map_frames(lambda pixels: restore_pixels(pixels, step, **known))
    diagnosis = None if diagnosis is None else decided(diagnosis, chosen)
    verdict = _judged(chosen, image, restored)
    if diagnosis is not None and verdict is not None and not verdict.helped:
        return Restored(image, diagnosis, None, verdict)
    return Restored(restored, diagnosis, chosen, verdict)


def _gray_restorer(image: ImageData, method: str, known: dict[str, Any]) -> tuple[Restorer, str, dict[str, Any]]:
    """The classic method that removes a black-and-white photo's noise, given the classifier's noise level."""
    sigma = max(1.0, diagnose(image.pixels, check_blur=False).noise_sigma)
    how = (
        f"; black and white: restored with {method} at noise sigma {sigma:.1f} (the bundled model has not learned "
        "such photos)"
    )
    return get_baseline(method), how, {"sigma": sigma, **known}


def _judged(chosen: Restorer, before: ImageData, after: ImageData) -> Verdict | None:
    """The judge's verdict on a network's restoration of a task it was fitted for (classic methods, fitted to
    nothing here, and networks of no known task are not judged)."""
    if chosen.kind != "network" or chosen.task not in FEATURES:
        return None
    return judge(str(chosen.task), before.pixels, after.pixels)
