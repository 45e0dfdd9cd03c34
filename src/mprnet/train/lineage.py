"""Runs that add up: what a model has seen over all its runs, and where it stands in its planned schedule.

Each export records both in its metadata (`seen` and `schedule`). A run started from such weights
(`init_weights`) with the same planned schedule carries on at the recorded step: the warm-up happens once and one
decay spans the plan, so runs split across GPU slots follow the curve of one run (and see its data).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from .config import TrainConfig, schedule_plan


@dataclass(frozen=True)
class Seen:
    """Optimizer steps, training patches and runs over a model's whole training."""

    steps: int = 0
    patches: int = 0
    runs: int = 0

    @classmethod
    def of(cls, metadata: dict[str, str]) -> Seen:
        """What weights have seen, read from their metadata: `seen`, or for weights exported before it was
        recorded, their `steps` and `batch_size` (one run); nothing for weights with neither."""
        if "seen" in metadata:
            return cls(**json.loads(metadata["seen"]))
        if "steps" not in metadata:
            return cls()
        steps = int(metadata["steps"])
        return cls(steps, steps * int(metadata.get("batch_size", 0)), 1)

    def plus(self, steps: int, patches: int) -> Seen:
        """These totals after one more run of `steps` steps and `patches` patches."""
        return Seen(self.steps + steps, self.patches + patches, self.runs + 1)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def schedule_record(config: TrainConfig, position: int) -> str | None:
    """The `schedule` metadata of weights exported at `position`: the plan and the step reached in it (None where
    the schedule follows a time budget, which no later run can continue)."""
    if not plans_in_steps(config):
        return None
    return json.dumps({"plan": schedule_plan(config), "position": position})


def plans_in_steps(config: TrainConfig) -> bool:
    """Whether the learning rate is a function of the step alone (not of a time budget's share)."""
    return not config.time_budget_s or not config.schedule_follows_budget


def starting_step(config: TrainConfig, metadata: dict[str, str]) -> tuple[int, str]:
    """The step at which a run from weights with this metadata starts its schedule, and why, for the log."""
    if not plans_in_steps(config):
        return 0, "new schedule: it follows this run's time budget"
    if "schedule" not in metadata:
        return 0, "new schedule: the starting weights record none"
    recorded = json.loads(metadata["schedule"])
    if recorded["plan"] != schedule_plan(config):
        changed = sorted(key for key, value in schedule_plan(config).items() if recorded["plan"].get(key) != value)
        return 0, f"new schedule: the starting weights were trained on another plan ({', '.join(changed)} differ)"
    if recorded["position"] >= config.steps:
        return 0, f"new schedule: the starting weights finished their planned {config.steps} steps"
    return recorded["position"], f"continued at step {recorded['position']} of the planned {config.steps}"
