"""The training loop: one process, or several under `torchrun` (distributed data parallel).

Determinism by construction: the patches of global step s are items s*B*W ... (s+1)*B*W - 1 of an index-seeded
data set (B the per-process batch, W the number of processes), each process taking its own B of them, and the
learning rate is a pure function of the step. So a resumed run sees exactly the data and rates an uninterrupted
one sees, and W processes see the same combined batch as one process with batch B*W. A run continued from an
earlier run's export (`lineage.py`) starts at the step that run reached, so it too sees the data and rates of one
uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..checkpoint import check_fit, save_weights
from ..distributed import Distributed
from ..errors import CheckpointError, MprnetError
from ..files import OverwriteError, atomic_path
from ..infer import autocast, cpu_has_fast_bf16, cpu_name, pick_device, pick_precision
from .config import TrainConfig, check_recipe, config_dict, recipe
from .lineage import Seen, plans_in_steps, schedule_record, starting_step
from .objectives import load_start, objective_for
from .runlog import RunLog

#: The classes behind the `optimizer` setting (whose names config.OPTIMIZERS lists).
OPTIMIZER_CLASSES = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
#: The files a run writes in its out_dir: a folder holding one of them holds a run.
RUN_FILES = ("config.json", "log.jsonl", "last.pt", "last.safetensors", "best.safetensors")
#: The settings a resumed run must share with the run it continues (its checkpoint's weights are theirs).
RESUMED_SETTINGS = ("task", "model")


def learning_rate(config: TrainConfig, step: int, time_share: float = 0.0) -> float:
    """Linear warm-up, then the configured decay over the remaining steps (or the rest of the time budget):
    cosine or polynomial from lr to lr_min at the end, or lr times step_gamma every step_every steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    passed = min(span, max(step - config.warmup_steps, time_share * span))
    if config.schedule == "step":
        return config.lr * config.step_gamma ** (passed // config.step_every)
    progress = passed / span
    if config.schedule == "poly":
        return config.lr_min + (config.lr - config.lr_min) * (1 - progress) ** config.poly_power
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * progress))


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The recipe's optimizer over the parameters that learn (DID-MDN keeps some of the release's layers frozen),
    fused: one kernel per step, which skips a step the grad scaler found not finite without waiting for the device."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return OPTIMIZER_CLASSES[config.optimizer](
        parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, fused=True
    )


class StepSampler(Sampler[int]):
    """Global sample indices of steps [start, stop) that belong to one process."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int, world: int):
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch_size, rank, world

    def __iter__(self):
        for step in range(self.start, self.stop):
            first = (step * self.world + self.rank) * self.batch
            yield from range(first, first + self.batch)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.batch


def training_memory_format(device: torch.device, precision: str) -> torch.memory_format:
    """Channels-last where it measured faster for training (benchmarks/train_throughput.py): on GPUs, and with
    bf16 on CPUs with native bf16 (1.41x contiguous with AMX); contiguous elsewhere (channels-last measured 0.92x
    in fp32 on an AVX2-only CPU)."""
    if device.type == "cuda" or (device.type == "cpu" and precision == "bf16" and cpu_has_fast_bf16()):
        return torch.channels_last
    return torch.contiguous_format


class LossWatch:
    """The training losses between two looks, kept on the device that computed them: a look (every log_every
    steps) is the one wait for the GPU that training makes outside validation."""

    def __init__(self, device: torch.device):
        self.in_row = torch.zeros((), dtype=torch.int64, device=device)  # non-finite losses in a row, up to now
        self.skipped = torch.zeros((), dtype=torch.int64, device=device)  # non-finite losses since the last look
        self.last = torch.zeros((), device=device)

    def add(self, loss: torch.Tensor) -> None:
        finite = torch.isfinite(loss)
        self.in_row = torch.where(finite, 0, self.in_row + 1)
        self.skipped += (~finite).long()
        self.last = loss

    def look(self, world: int) -> tuple[float | None, int, int]:
        """The last loss (None where it was not finite), the most non-finite losses in a row and the most since the
        last look in any process (agreed by all: every process must look at the same steps)."""
        counts = torch.stack([self.in_row, self.skipped])
        if world > 1:
            dist.all_reduce(counts, op=dist.ReduceOp.MAX)
        in_row, skipped = (int(count) for count in counts.tolist())
        self.skipped.zero_()
        loss = float(self.last)
        return (loss if math.isfinite(loss) else None), in_row, skipped


def atomic_torch_save(content: dict, path: Path) -> None:
    with atomic_path(path) as temporary:
        torch.save(content, temporary)


class Trainer:
    history: list[dict[str, Any]]  # one record per validation

    def __init__(self, config: TrainConfig):
        check_recipe(config, "training config")
        self.config = config
        torch.manual_seed(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
        self.device = pick_device(config.device)
        self.dist = Distributed("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.precision = pick_precision(config.precision, self.device)
        self.out_dir = Path(config.out_dir)
        self.memory_format = training_memory_format(self.device, self.precision)
        self.layout = "channels-last" if self.memory_format == torch.channels_last else "contiguous"
        self.objective = objective_for(config)
        model = self.objective.build_model()
        #: What the starting weights saw before this run, where this run's schedule starts, and why.
        self.seen_before, self.first_step, self.schedule_note = Seen(), 0, "new schedule"
        if config.init_weights:
            metadata = load_start(self.objective, model, config.init_weights)
            self.seen_before = Seen.of(metadata)
            self.first_step, self.schedule_note = starting_step(config, metadata)
        # Module.to takes memory_format= (see its docstring); torch's overloads leave it out.
        self.model: nn.Module = model.to(self.device, memory_format=self.memory_format)  # type: ignore[call-overload]
        self.optimizer = make_optimizer(config, self.model)
        # Enabled whatever the precision: it is what skips a non-finite step without a wait (scale 1 but in fp16).
        self.scaler = torch.amp.GradScaler(self.device.type, init_scale=2.0**16 if self.precision == "fp16" else 1.0)
        self.step, self.best_score, self.history = self.first_step, -math.inf, []
        self.started, self.share, self.lr = time.time(), 0.0, config.lr
        #: The starting weights' validation scores (`init_weights` with validation): the score to beat.
        self.start_scores: dict[str, float] | None = None
        self.network = self.model
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        #: The network the steps run (compiled with `compile`), the eager one it falls back to, and the steps the
        #: compiled one has taken.
        self.eager_network, self.compiled_steps = self.network, 0
        if config.compile:
            self.network = torch.compile(self.network)
        if self.device.type == "cuda" and not config.deterministic:
            torch.backends.cudnn.benchmark = True  # patches of one size: the fastest convolution is found once
        self.validation = self.objective.validation_set() if self.dist.main and config.val.dir else None

    # -- checkpoints ---------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "last.pt"

    def save_checkpoint(self) -> None:
        atomic_torch_save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "step": self.step,
                "best_score": self.best_score,
                "history": self.history,
                "start_scores": self.start_scores,
                "beat_start": self.beat_start,
                "first_step": self.first_step,
                "seen_before": dataclasses.asdict(self.seen_before),
                "config": config_dict(self.config),
                "rng": torch.get_rng_state(),
            },
            self.checkpoint_path,
        )

    def resume(self) -> None:
        state = self._read_checkpoint()
        check_fit(self.model, state["model"], f"--resume: {self.checkpoint_path}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # empty where it was saved disabled (older checkpoints, bf16 and fp32)
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.history, self.start_scores = state["step"], state["history"], state.get("start_scores")
        self.first_step = state.get("first_step", 0)  # older checkpoints: runs from step 0 and random weights
        self.seen_before = Seen(**state.get("seen_before", {}))
        self.best_score = state["best_score"] if "best_score" in state else state["best_psnr"]  # older checkpoints
        torch.set_rng_state(state["rng"])

    def _read_checkpoint(self) -> dict:
        """The state saved in last.pt; a CheckpointError where it is missing, unreadable or of other settings."""
        path = self.checkpoint_path
        if not path.exists():
            raise MprnetError(f"--resume: no checkpoint at {path}")
        try:
            # Our own checkpoint: plain tensors, numbers and lists, so weights_only loading still works.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for damaged files
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise CheckpointError(f"--resume: {path} is not a readable checkpoint ({reason})") from None
        if not isinstance(state, dict) or not {"model", "optimizer", "step", "config"} <= set(state):
            raise CheckpointError(f"--resume: {path} is not a training checkpoint of mprnet train")
        saved, current = state["config"], config_dict(self.config)
        changed = [key for key in RESUMED_SETTINGS if saved.get(key) != current[key]]
        if changed:
            found = ", ".join(f"{key} {saved.get(key)!r}" for key in changed)
            raise CheckpointError(
                f"--resume: {path} was trained with {found}; resume with those settings, or start anew "
                "(another out_dir, or --overwrite)"
            )
        return state

    def seen(self) -> Seen:
        """What the model has seen over all its runs, this one up to now included."""
        steps = self.step - self.first_step
        return self.seen_before.plus(steps, steps * self.config.batch_size * self.dist.world)

    def export(self, name: str, **extra) -> Path:
        schedule = schedule_record(self.config, self.step)
        metadata = dict(
            task=self.config.task,
            steps=self.step,
            seen=self.seen().to_json(),
            **({"schedule": schedule} if schedule else {}),
            patch_size=self.config.patch_size,
            batch_size=self.config.batch_size * self.dist.world,
            data=self.config.data.clean_dir or self.config.data.paired_dir,
            level=self.config.data.level,
            recipe=json.dumps(recipe(self.config)),
            **extra,
        )
        return save_weights(self.model, self.out_dir / f"{name}.safetensors", **metadata)

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self, start_anew: bool = False) -> dict:
        """Train up to `config.steps`; `start_anew`: first remove the files of an earlier run in out_dir."""
        config = self.config
        if self.step >= config.steps:
            return self.summary()
        total_items = config.steps * config.batch_size * self.dist.world
        sampler = StepSampler(self.step, config.steps, config.batch_size, self.dist.rank, self.dist.world)
        dataset = self.objective.training_items(total_items)  # checks the data before anything is written
        loader = DataLoader(
            dataset,
            batch_size=config.batch_size,
            sampler=sampler,
            num_workers=config.data.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if config.data.workers else None,
        )
        if self.dist.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if start_anew:
                for name in RUN_FILES:
                    (self.out_dir / name).unlink(missing_ok=True)
            with atomic_path(self.out_dir / "config.json") as temporary:
                temporary.write_text(json.dumps(config_dict(config), indent=1))
        self.network.train()
        progress = self._progress_bar()
        watch, started, patches = LossWatch(self.device), time.time(), 0
        log = RunLog(self.out_dir) if self.dist.main else None
        if log is not None:  # each (re)start is recorded, so that elapsed times can be read from the log alone
            arithmetic = {"precision": self.precision, "layout": self.layout, "hardware": self.hardware()}
            lineage = {"schedule": self.schedule_note, "seen_before": dataclasses.asdict(self.seen_before)}
            scored = {"score": self.objective.score}  # what picks the best model, for readers of the log
            log.write({"start": {"step": self.step, **arithmetic, **scored, **lineage, "config": config_dict(config)}})
            starting = self.start_scores is None and self.step == self.first_step and config.init_weights
            if starting and self.validation is not None:
                self._validate_start(log)
        try:
            for inputs, *targets in loader:
                watch.add(self._step_or_fall_back(inputs, *targets))
                self.step += 1
                self.share = self.time_share()
                patches += inputs.shape[0] * self.dist.world
                if self.step % config.log_every == 0 or self.step == config.steps or self._last_step():
                    self._look(watch, patches / (time.time() - started), progress, log)
                if self.dist.main:
                    self._after_step(progress, log)
                if self.share >= 1.0:
                    break
            if log is not None and self.start_scores is not None:
                self._judge_start(log)
        finally:
            if progress is not None:
                progress.close()
            if log is not None:
                log.close()
        if self.dist.main:
            self.save_checkpoint()
            score = self.objective.score
            self.export("last", **{f"val_{score}": self.history[-1][score] if self.history else None})
        self.dist.barrier()
        return self.summary()

    def hardware(self) -> str:
        """What the run trains on: the GPU's name, or the CPU's and its threads."""
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return f"{cpu_name()}, {torch.get_num_threads()} threads"

    def time_share(self) -> float:
        """The share of the time budget used (0 without a budget), agreed by all processes."""
        if not self.config.time_budget_s:
            return 0.0
        if self.dist.world == 1:
            return (time.time() - self.started) / self.config.time_budget_s
        share = torch.tensor([(time.time() - self.started) / self.config.time_budget_s], device=self.device)
        dist.all_reduce(share, op=dist.ReduceOp.MAX)
        return float(share.item())

    def _step_or_fall_back(self, inputs: torch.Tensor, *targets: torch.Tensor) -> torch.Tensor:
        """A training step; where the compiled network fails to compile (at its first step), a warning and the step
        taken by the eager one, which trains from then on."""
        if self.network is self.eager_network:
            return self._train_step(inputs, *targets)
        try:
            loss = self._train_step(inputs, *targets)
        # Whatever the compiler raises: Dynamo, Inductor and the backends share no exception type.
        except Exception as error:
            if self.compiled_steps:
                raise
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            warnings.warn(f"torch.compile failed, training eagerly: {reason}", stacklevel=2)
            self.network = self.eager_network
            return self._train_step(inputs, *targets)
        self.compiled_steps += 1
        return loss

    def _train_step(self, inputs: torch.Tensor, *targets: torch.Tensor) -> torch.Tensor:
        """One optimizer step on a batch of network inputs and the objective's targets; its loss, left on the
        device. A step whose loss or gradients are not finite changes nothing: the grad scaler sees them and the
        fused optimizer skips the update on the device, so that no step waits for the GPU."""
        self.lr = learning_rate(self.config, self.step, 0.0 if plans_in_steps(self.config) else self.share)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        inputs = inputs.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        on_device = [target.to(self.device, non_blocking=True) for target in targets]
        with autocast(self.device, self.precision):
            outputs = self.objective.forward(self.network, inputs, *on_device)
        loss = self.objective.loss(_to_float(outputs), *on_device)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def _look(self, watch: LossWatch, throughput: float, progress, log) -> None:
        """Every log_every steps (in every process, which agree): the loss, the steps skipped, the log."""
        loss, in_row, skipped = watch.look(self.dist.world)
        if skipped:
            warnings.warn(
                f"{skipped} non-finite loss(es) up to step {self.step}: those steps were skipped", stacklevel=2
            )
        if in_row >= self.config.max_bad_steps:
            raise MprnetError(
                f"the loss was not finite for {in_row} steps in a row at step {self.step}: "
                "lower the learning rate, use fp32, or check the data"
            )
        if not self.dist.main:
            return
        record = {"step": self.step, "loss": loss, "lr": self.lr, "patches_per_s": round(throughput, 2)}
        if self.device.type == "cuda":
            record["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20)
        log.write(record)
        if progress is not None:
            shown = f"{loss:.4f}" if loss is not None else "nan"
            progress.set_postfix(loss=shown, lr=f"{self.lr:.2e}", patches_s=f"{throughput:.1f}")

    def _after_step(self, progress, log) -> None:
        config = self.config
        if progress is not None:
            progress.update(1)
        due = self.step % config.val.every == 0 or self.step == config.steps or self._last_step()
        if self.validation is not None and due:
            self._validate(log)
        if self.step % config.checkpoint_every == 0:
            self.save_checkpoint()

    def _last_step(self) -> bool:
        return self.share >= 1.0

    def _validate(self, log) -> None:
        scores = self.objective.validate(self.model, self.validation, self.device, self.precision)
        self.network.train()
        record = {"step": self.step, **scores, "time": time.time()}
        self.history.append(record)
        log.write({"validation": record})
        if scores[self.objective.score] > self.best_score:
            self.best_score = scores[self.objective.score]
            self.export("best", **{f"val_{name}": value for name, value in scores.items()})

    def _validate_start(self, log) -> None:
        """Score the starting weights: a best model is exported only where it beats them."""
        self.start_scores = self.objective.validate(self.model, self.validation, self.device, self.precision)
        self.network.train()
        self.best_score = self.start_scores[self.objective.score]
        log.write({"validation": {"step": self.step, **self.start_scores, "start_weights": self.config.init_weights}})

    def _judge_start(self, log) -> None:
        assert self.start_scores is not None  # only called where the starting weights were scored
        score, start, beaten = self.objective.score, self.start_scores[self.objective.score], self.beat_start
        log.write({"start_weights": {"score": score, "start": start, "best": self.best_score, "beaten": beaten}})
        if not beaten:
            print(
                f"no validation beat the starting weights ({score} {start:.4f} from {self.config.init_weights}): "
                f"no best.safetensors was written, the starting weights stay the better model",
                file=sys.stderr,
            )

    @property
    def beat_start(self) -> bool | None:
        """Whether a validation beat the starting weights (None where they were not scored)."""
        return None if self.start_scores is None else self.best_score > self.start_scores[self.objective.score]

    def _progress_bar(self):
        if not self.dist.main:
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.config.steps,
            initial=self.step,
            desc=f"train {self.config.task} ({self.precision}, {self.layout})",
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
            disable=None,
        )

    def summary(self) -> dict:
        return {
            "step": self.step,
            "score": self.objective.score,
            "best": self.best_score,
            "start_scores": self.start_scores,
            "beat_start": self.beat_start,
            "schedule": self.schedule_note,
            "seen": dataclasses.asdict(self.seen()),
            "history": self.history,
            "out_dir": str(self.out_dir),
        }


def _to_float(outputs):
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    return type(outputs)(output.float() for output in outputs)


def check_out_dir(out_dir: str | Path, resume: bool = False, overwrite: bool = False) -> None:
    """An error, before anything is built or written, where out_dir is a file, or holds a run (or files of a run's
    names) that neither `resume` continues nor `overwrite` replaces."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OverwriteError(f"out_dir {out_dir} is a file; name a folder for the run")
    held = [name for name in RUN_FILES if (out_dir / name).exists()]
    if held and not (resume or overwrite):
        raise OverwriteError(
            f"out_dir {out_dir} holds a run ({', '.join(held)}): pass --resume to continue it, --overwrite to "
            "start anew there, or name another out_dir"
        )


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict:
    """Run `config`: in a new out_dir, continuing the run there (`resume`), or replacing it (`overwrite`)."""
    if resume and overwrite:
        raise MprnetError("resume continues the run in out_dir, overwrite replaces it: choose one")
    check_out_dir(config.out_dir, resume, overwrite)
    trainer = Trainer(config)
    try:
        if resume:
            trainer.resume()
        return trainer.run(start_anew=overwrite)
    finally:
        trainer.dist.close()
