"""The training loop: one process, or several under `torchrun` (distributed data parallel).

Determinism by construction: the patches of global step s are items s*B*W ... (s+1)*B*W - 1 of an index-seeded
data set (B the per-process batch, W the number of processes), each process taking its own B of them, and the
learning rate is a pure function of the step. So a resumed run sees exactly the data and rates an uninterrupted
one sees, and W processes see the same combined batch as one process with batch B*W.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..checkpoint import save_weights
from ..data import PairedPatches, SyntheticPairs, open_paired
from ..degrade import Identity, RandomChoice
from ..distributed import Distributed
from ..errors import MprnetError
from ..files import atomic_path
from ..infer import autocast, cpu_has_fast_bf16, pick_device, pick_precision
from ..models.registry import create_model, get_architecture
from ..tasks import make_degradation
from .config import TrainConfig, check_recipe, config_dict, recipe
from .validation import validate, validation_pairs

#: The classes behind the `optimizer` setting (whose names config.OPTIMIZERS lists).
OPTIMIZER_CLASSES = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


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
    """The recipe's optimizer over the parameters that learn (DID-MDN keeps some of the release's layers frozen)."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return OPTIMIZER_CLASSES[config.optimizer](
        parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
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


def training_patches(config: TrainConfig, total_items: int, with_labels: bool = False):
    if with_labels and (config.data.paired_dir or config.task != "derain" or config.data.clean_share):
        raise MprnetError(
            "this network trains on rain-density labels, which only synthetic rain records: "
            f"set task: derain and data.clean_dir, without data.clean_share (found task {config.task!r}"
            f"{' and data.paired_dir' if config.data.paired_dir else ''}"
            f"{' and data.clean_share' if config.data.clean_share else ''})"
        )
    if config.data.paired_dir:
        return PairedPatches(
            open_paired(config.data.paired_dir), config.patch_size, seed=config.seed, length=total_items
        )
    degradation = make_degradation(config.task, config.data.level)
    if config.data.clean_share:
        share = config.data.clean_share
        degradation = RandomChoice([degradation, Identity(config.task)], [1 - share, share])
    assert config.data.clean_dir is not None  # a config has clean_dir or paired_dir (load_config checks)
    return SyntheticPairs(
        config.data.clean_dir,
        degradation,
        config.patch_size,
        length=total_items,
        seed=config.seed,
        with_labels=with_labels,
        gray_share=config.data.gray_share,
    )


def build_model(config: TrainConfig) -> nn.Module:
    settings = dict(config.model)
    name = settings.pop("name", "mprnet")
    try:
        return create_model(name, **settings)
    except (ValueError, TypeError) as error:
        raise MprnetError(f"model: {error}") from None


def training_memory_format(device: torch.device, precision: str) -> torch.memory_format:
    """Channels-last where it measured faster for training (benchmarks/train_throughput.py): on GPUs, and with
    bf16 on CPUs with native bf16 (1.41x contiguous with AMX); contiguous elsewhere (channels-last measured 0.92x
    in fp32 on an AVX2-only CPU)."""
    if device.type == "cuda" or (device.type == "cpu" and precision == "bf16" and cpu_has_fast_bf16()):
        return torch.channels_last
    return torch.contiguous_format


def atomic_torch_save(content: dict, path: Path) -> None:
    with atomic_path(path) as temporary:
        torch.save(content, temporary)


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
        self.file.write(json.dumps(entry) + "\n")
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
        # Module.to takes memory_format= (see its docstring); torch's overloads leave it out.
        self.model: nn.Module = build_model(config).to(self.device, memory_format=self.memory_format)  # type: ignore[call-overload]
        architecture = get_architecture(cast(str, self.model.architecture))
        self.loss_fn = architecture.training_loss(config.task)
        self.forward = architecture.training_forward
        self.with_labels = architecture.needs_density_labels
        self.optimizer = make_optimizer(config, self.model)
        self.scaler = torch.amp.GradScaler(enabled=self.precision == "fp16")
        self.step, self.best_psnr, self.history = 0, -math.inf, []
        self.started, self.share, self.lr = time.time(), 0.0, config.lr
        self.network = self.model
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.val_pairs = validation_pairs(config) if self.dist.main and config.val.dir else []

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
                "best_psnr": self.best_psnr,
                "history": self.history,
                "config": config_dict(self.config),
                "rng": torch.get_rng_state(),
            },
            self.checkpoint_path,
        )

    def resume(self) -> None:
        if not self.checkpoint_path.exists():
            raise MprnetError(f"--resume: no checkpoint at {self.checkpoint_path}")
        # Our own checkpoint: plain tensors, numbers and lists, so weights_only loading still works.
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.best_psnr, self.history = state["step"], state["best_psnr"], state["history"]
        torch.set_rng_state(state["rng"])

    def export(self, name: str, **extra) -> Path:
        metadata = dict(
            task=self.config.task,
            steps=self.step,
            patch_size=self.config.patch_size,
            batch_size=self.config.batch_size * self.dist.world,
            data=self.config.data.clean_dir or self.config.data.paired_dir,
            level=self.config.data.level,
            recipe=json.dumps(recipe(self.config)),
            **extra,
        )
        return save_weights(self.model, self.out_dir / f"{name}.safetensors", **metadata)

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        config = self.config
        if self.step >= config.steps:
            return self.summary()
        total_items = config.steps * config.batch_size * self.dist.world
        sampler = StepSampler(self.step, config.steps, config.batch_size, self.dist.rank, self.dist.world)
        dataset = training_patches(config, total_items, self.with_labels)  # checks the data before anything is written
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
            (self.out_dir / "config.json").write_text(json.dumps(config_dict(config), indent=1))
        self.network.train()
        progress = self._progress_bar()
        bad_steps, started, patches = 0, time.time(), 0
        log = RunLog(self.out_dir) if self.dist.main else None
        if log is not None:  # each (re)start is recorded, so that elapsed times can be read from the log alone
            arithmetic = {"precision": self.precision, "layout": self.layout}
            log.write({"start": {"step": self.step, **arithmetic, "config": config_dict(config)}})
        try:
            for degraded, clean, *labels in loader:
                loss = self._train_step(degraded, clean, *labels)
                finite = loss is not None
                bad_steps = 0 if finite else bad_steps + 1
                if bad_steps >= config.max_bad_steps:
                    raise MprnetError(
                        f"the loss was not finite for {bad_steps} steps in a row at step {self.step}: "
                        "lower the learning rate, use fp32, or check the data"
                    )
                if not finite:
                    warnings.warn(f"step {self.step}: non-finite loss, step skipped", stacklevel=2)
                self.step += 1
                self.share = self.time_share()
                patches += degraded.shape[0] * self.dist.world
                if self.dist.main:
                    self._after_step(loss, patches / (time.time() - started), progress, log)
                if self.share >= 1.0:
                    break
        finally:
            if progress is not None:
                progress.close()
            if log is not None:
                log.close()
        if self.dist.main:
            self.save_checkpoint()
            self.export("last", val_psnr=self.history[-1]["psnr"] if self.history else None)
        self.dist.barrier()
        return self.summary()

    def time_share(self) -> float:
        """The share of the time budget used (0 without a budget), agreed by all processes."""
        if not self.config.time_budget_s:
            return 0.0
        share = torch.tensor([(time.time() - self.started) / self.config.time_budget_s])
        if self.dist.world > 1:
            dist.all_reduce(share, op=dist.ReduceOp.MAX)
        return float(share.item())

    def _train_step(self, degraded: torch.Tensor, clean: torch.Tensor, *labels: torch.Tensor) -> float | None:
        """One optimizer step; `labels` holds the batch's rain-density labels where the network trains on them."""
        self.lr = learning_rate(self.config, self.step, self.share)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        degraded = degraded.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        clean = clean.to(self.device, non_blocking=True)
        on_device = [label.to(self.device, non_blocking=True) for label in labels]
        with autocast(self.device, self.precision):
            outputs = self.forward(self.network, degraded, *on_device)
        loss = self.loss_fn(_to_float(outputs), clean, *on_device)
        self.optimizer.zero_grad(set_to_none=True)
        # Every process must skip together: one that skipped backward would leave the others waiting in DDP.
        if not self.dist.all_true(bool(torch.isfinite(loss))):
            return None
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def _after_step(self, loss: float | None, throughput: float, progress, log) -> None:
        config = self.config
        if progress is not None:
            progress.update(1)
            progress.set_postfix(
                loss=f"{loss:.4f}" if loss is not None else "nan", lr=f"{self.lr:.2e}", patches_s=f"{throughput:.1f}"
            )
        if self.step % config.log_every == 0 or self.step == config.steps:
            log.write({"step": self.step, "loss": loss, "lr": self.lr, "patches_per_s": round(throughput, 2)})
        if self.val_pairs and (self.step % config.val.every == 0 or self.step == config.steps or self._last_step()):
            self._validate(log)
        if self.step % config.checkpoint_every == 0:
            self.save_checkpoint()

    def _last_step(self) -> bool:
        return self.share >= 1.0

    def _validate(self, log) -> None:
        scores = validate(self.model, self.val_pairs, self.config.task, self.device, self.precision)
        self.network.train()
        record = {"step": self.step, **scores, "time": time.time()}
        self.history.append(record)
        log.write({"validation": record})
        if scores["psnr"] > self.best_psnr:
            self.best_psnr = scores["psnr"]
            self.export("best", val_psnr=scores["psnr"], val_ssim=scores["ssim"])

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
        return {"step": self.step, "best_psnr": self.best_psnr, "history": self.history, "out_dir": str(self.out_dir)}


def _to_float(outputs):
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    return [output.float() for output in outputs]


def train(config: TrainConfig, resume: bool = False) -> dict:
    trainer = Trainer(config)
    try:
        if resume:
            trainer.resume()
        return trainer.run()
    finally:
        trainer.dist.close()
