"""A training run's log: `log.jsonl`, one JSON record a line (each (re)start, logged steps, validations), written
as the run goes (`RunLog`, mirrored to TensorBoard when it is installed) and read back (`RunRecord`)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path


class RunLog:
    """The run's JSON-lines log (`log.jsonl`), mirrored to TensorBoard when it is installed."""

    def __init__(self, out_dir: Path):
        # Kept open for the run's life (each record is flushed as written); close() closes it.
        self.file = open(out_dir / "log.jsonl", "a")  # noqa: SIM115
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.board: SummaryWriter | None = SummaryWriter(str(out_dir / "tensorboard"))
        except ImportError:
            self.board = None

    def write(self, record: dict) -> None:
        entry = {**record, "time": record.get("time", time.time())}
        self.file.write(json.dumps(_finite_or_null(entry), allow_nan=False) + "\n")
        self.file.flush()
        if self.board is not None:
            values = entry.get("validation", entry)
            prefix = "val/" if "validation" in entry else "train/"
            for key, value in values.items():
                if key not in ("step", "time") and isinstance(value, (int, float)):
                    self.board.add_scalar(prefix + key, value, values["step"])

    def close(self) -> None:
        self.file.close()
        if self.board is not None:
            self.board.close()


@dataclasses.dataclass
class RunRecord:
    """A run's `log.jsonl` read back: what each (re)start recorded, the logged steps, the validations of the weights
    it trained, the scores of its starting weights and the verdict on them (None where not scored), and the times
    of its first and last records."""

    starts: list[dict]
    steps: list[dict]
    validations: list[dict]
    start_scores: dict | None
    judged: dict | None
    began: float = 0.0
    ended: float = 0.0

    @classmethod
    def read(cls, out_dir: Path) -> RunRecord:
        """The record of the run in `out_dir`; OSError where it has no log, ValueError where a line is not JSON."""
        entries = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
        validations = [entry["validation"] for entry in entries if "validation" in entry]
        return cls(
            starts=[entry["start"] for entry in entries if "start" in entry],
            steps=[entry for entry in entries if "loss" in entry],
            validations=[record for record in validations if "start_weights" not in record],
            start_scores=next((record for record in validations if "start_weights" in record), None),
            judged=next((entry["start_weights"] for entry in reversed(entries) if "start_weights" in entry), None),
            began=entries[0]["time"] if entries else 0.0,
            ended=entries[-1]["time"] if entries else 0.0,
        )


def _finite_or_null(value):
    """`value` with every NaN or infinite number as None: JSON has no such numbers."""
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
