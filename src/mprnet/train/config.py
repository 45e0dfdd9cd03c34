"""Training configuration: a YAML file read into dataclasses, with defaults that follow the MPRNet recipe."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import MprnetError
from ..infer import PRECISIONS
from ..tasks import TASKS

CONFIG_DIR = Path(__file__).parent / "configs"
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("cosine", "poly", "step")
#: The task of training the degradation classifier (`objectives.Diagnosis`) rather than a restoration network.
DIAGNOSE = "diagnose"


@dataclass
class DataConfig:
    #: A folder of clean photos degraded on the fly (synthetic pairs) ...
    clean_dir: str | None = None
    level: str | float | None = None
    #: The share of synthetic inputs left clean, so that the model learns to pass undegraded photos unchanged.
    clean_share: float = 0.0
    #: The share of synthetic pairs made black and white before they are degraded: a gray photo's noise is the same
    #: in its three channels, which a model that saw colour noise only leaves in place.
    gray_share: float = 0.0
    #: ... or a paired folder (GoPro, SIDD, Rain13K or input/ + target/ layouts).
    paired_dir: str | None = None
    workers: int = 2


@dataclass
class ValConfig:
    #: A folder of clean photos (degraded with a fixed seed) or a paired folder; empty to skip validation.
    dir: str | None = None
    level: str | float | None = None
    count: int = 6
    crop: int = 256
    every: int = 500
    seed: int = 1234


@dataclass
class TrainConfig:
    #: A restoration task, or `diagnose` (the degradation classifier).
    task: str = "denoise"
    model: dict = field(default_factory=lambda: {"name": "mprnet-derain"})
    #: Trained weights to start from instead of random ones: a weights file or a bundled model's name
    #: (`classifier` for the bundled degradation classifier).
    init_weights: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    steps: int = 1000
    #: When set, the run ends after this many seconds (or `steps`, whichever comes first) and the learning-rate
    #: schedule follows the share of the budget used: the way to make the best of a fixed slot on a GPU.
    #: Such a run is not bit-reproducible on resume (the schedule then depends on the clock).
    time_budget_s: float | None = None
    #: false: the schedule stays planned over `steps` and the time budget only ends the run (a slot), so that the
    #: next run, started from its export with init_weights, carries the schedule on where this one stopped.
    schedule_follows_budget: bool = True
    batch_size: int = 16
    patch_size: int = 128
    #: `adam` (weight decay added to the gradient) or `adamw` (decoupled weight decay).
    optimizer: str = "adam"
    lr: float = 2e-4
    lr_min: float = 1e-6
    warmup_steps: int = 0
    #: After warm-up: `cosine` (to lr_min), `poly` (lr_min + (lr - lr_min) (1 - progress) ** poly_power) or
    #: `step` (lr times step_gamma every step_every steps).
    schedule: str = "cosine"
    poly_power: float = 1.0
    step_every: int = 0
    step_gamma: float = 0.5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = None
    precision: str = "auto"
    device: str = "auto"
    #: torch.compile the network for training: faster steps on GPUs after a compile of a minute or more; where
    #: compiling fails, a warning and eager training.
    compile: bool = False
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 20
    max_bad_steps: int = 5
    deterministic: bool = False
    out_dir: str = "runs/train"


def _build(cls, values: dict, where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise MprnetError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        if not _has_type(value, hints[name]):
            raise MprnetError(f"{where}: {name} must be {_type_name(hints[name])}, found {value!r}")
    return cls(**values)


def _kinds(hint) -> tuple:
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _has_type(value, hint) -> bool:
    """Whether a YAML value can stand for a setting of type `hint`."""
    return any(_is_kind(value, kind) for kind in _kinds(hint))


def _is_kind(value, kind) -> bool:
    if typing.get_origin(kind) is tuple:
        parts = typing.get_args(kind)
        return isinstance(value, (list, tuple)) and len(value) == len(parts) and all(map(_has_type, value, parts))
    if kind is type(None):
        return value is None
    if isinstance(value, bool):  # a bool is an int to Python, never a count or a rate here
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


_TYPE_NAMES = {
    int: "a whole number",
    float: "a number",
    str: "text",
    bool: "true or false",
    dict: "a mapping",
    type(None): "null",
}


def _type_name(hint) -> str:
    names = [
        f"a list of {len(typing.get_args(kind))} numbers"
        if typing.get_origin(kind) is tuple
        else _TYPE_NAMES.get(kind, getattr(kind, "__name__", str(kind)))
        for kind in _kinds(hint)
    ]
    return " or ".join(names)


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """Read a YAML file (a path, or the name of a bundled config such as `denoise-tiny`) into a TrainConfig."""
    path = Path(path)
    if not path.exists() and (CONFIG_DIR / f"{path.name}.yaml").exists():
        path = CONFIG_DIR / f"{path.name}.yaml"
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise MprnetError(f"{path}: cannot read the training config ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise MprnetError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(values, dict):
        raise MprnetError(f"{path}: expected a mapping of settings, found {type(values).__name__}")
    for key, value in (overrides or {}).items():
        section, dot, name = key.partition(".")
        if dot:  # "data.clean_dir=..." sets one entry of a section
            values.setdefault(section, {})
            if not isinstance(values[section], dict):
                raise MprnetError(f"{path}: {section} is not a section, cannot set {key}")
            values[section][name] = value
        else:
            values[key] = value
    data = _build(DataConfig, _section(values, "data", str(path)), f"{path}: data")
    val = _build(ValConfig, _section(values, "val", str(path)), f"{path}: val")
    config = _build(TrainConfig, values, str(path))
    config.data, config.val = data, val
    config.betas = tuple(config.betas)
    if not (config.data.clean_dir or config.data.paired_dir):
        raise MprnetError(f"{path}: data needs clean_dir (synthetic pairs) or paired_dir (a paired data set)")
    check_recipe(config, str(path))
    return config


def _section(values: dict, name: str, where: str) -> dict:
    """The settings of section `name` (taken out of `values`); an error where it is not a mapping."""
    section = values.pop(name, None) or {}
    if not isinstance(section, dict):
        raise MprnetError(f"{where}: {name} must be a mapping of settings (e.g. {name}: {{...}}), found {section!r}")
    return section


def check_recipe(config: TrainConfig, where: str) -> None:
    """A clear error for an optimizer, schedule or data setting the trainer cannot use."""
    if config.optimizer not in OPTIMIZERS:
        raise MprnetError(f"{where}: optimizer must be one of {', '.join(OPTIMIZERS)}, found {config.optimizer!r}")
    if config.schedule not in SCHEDULES:
        raise MprnetError(f"{where}: schedule must be one of {', '.join(SCHEDULES)}, found {config.schedule!r}")
    if config.schedule == "step" and config.step_every < 1:
        raise MprnetError(f"{where}: schedule step needs step_every >= 1, found {config.step_every}")
    if not 0 <= config.data.clean_share < 1:
        raise MprnetError(f"{where}: data.clean_share must be at least 0 and below 1, found {config.data.clean_share}")
    if not 0 <= config.data.gray_share <= 1:
        raise MprnetError(f"{where}: data.gray_share must be between 0 and 1, found {config.data.gray_share}")
    if config.task not in (*TASKS, DIAGNOSE):
        raise MprnetError(f"{where}: task must be one of {', '.join((*TASKS, DIAGNOSE))}, found {config.task!r}")
    if config.task == DIAGNOSE:
        _check_diagnosis(config, where)
    if config.precision not in PRECISIONS:
        raise MprnetError(f"{where}: precision must be one of {', '.join(PRECISIONS)}, found {config.precision!r}")
    for name, value, low in _lower_bounds(config):
        if value is not None and not (math.isfinite(value) and value >= low):
            raise MprnetError(f"{where}: {name} must be at least {low:g}, found {value}")
    for name, value in (
        ("lr", config.lr),
        ("poly_power", config.poly_power),
        ("step_gamma", config.step_gamma),
        ("time_budget_s", config.time_budget_s),
        ("grad_clip", config.grad_clip),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise MprnetError(f"{where}: {name} must be above 0, found {value}")
    if not all(0 <= beta < 1 for beta in config.betas):
        raise MprnetError(f"{where}: betas must lie in [0, 1), found {list(config.betas)}")


def _check_diagnosis(config: TrainConfig, where: str) -> None:
    """The classifier learns from clean photos, each class degraded as the tasks degrade, on patches of its size."""
    from ..models.degradation_classifier import PATCH

    unused = [
        name
        for name, value in (
            ("data.paired_dir", config.data.paired_dir),
            ("data.level", config.data.level),
            ("data.clean_share", config.data.clean_share),
            ("val.level", config.val.level),
        )
        if value
    ]
    if unused:
        raise MprnetError(
            f"{where}: task {DIAGNOSE} makes its examples from data.clean_dir with every level of every task; "
            f"remove {', '.join(unused)}"
        )
    if config.patch_size != PATCH:
        raise MprnetError(f"{where}: task {DIAGNOSE} trains on {PATCH}-pixel patches: set patch_size: {PATCH}")


def _lower_bounds(config: TrainConfig) -> list[tuple[str, float | None, float]]:
    """(setting, value, smallest allowed value) of every bounded count and rate."""
    return [
        ("steps", config.steps, 1),
        ("batch_size", config.batch_size, 1),
        ("patch_size", config.patch_size, 16),
        ("lr_min", config.lr_min, 0),
        ("warmup_steps", config.warmup_steps, 0),
        ("weight_decay", config.weight_decay, 0),
        ("seed", config.seed, 0),
        ("checkpoint_every", config.checkpoint_every, 1),
        ("log_every", config.log_every, 1),
        ("max_bad_steps", config.max_bad_steps, 1),
        ("data.workers", config.data.workers, 0),
        ("val.count", config.val.count, 1),
        ("val.crop", config.val.crop, 16),
        ("val.every", config.val.every, 1),
        ("val.seed", config.val.seed, 0),
    ]


def recipe(config: TrainConfig) -> dict:
    """The settings that say how a model was trained, for its metadata and model card."""
    keys = (
        "optimizer",
        "lr",
        "lr_min",
        "betas",
        "weight_decay",
        "warmup_steps",
        "schedule",
        "poly_power",
        "step_every",
        "step_gamma",
        "grad_clip",
        "precision",
        "time_budget_s",
        "schedule_follows_budget",
    )
    return {
        "model": config.model,
        "init_weights": config.init_weights,
        "clean_share": config.data.clean_share,
        "gray_share": config.data.gray_share,
        **{key: getattr(config, key) for key in keys},
    }


def schedule_plan(config: TrainConfig) -> dict:
    """The settings that make the learning-rate curve over the steps: runs that share them share one schedule."""
    keys = ("lr", "lr_min", "warmup_steps", "schedule", "poly_power", "step_every", "step_gamma", "steps")
    return {key: getattr(config, key) for key in keys}


def config_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)
