"""Architectures by name: the whole description of each network, construction, and detection from a state dict.

Each network's file registers one `Architecture` and `mprnet.models` imports every network file (as timm does);
this module imports no network. Everything else (loading, inference, training, the study, the benchmarks, the CLI)
only reads the registry, so a new network needs its file, one `register` call and one import line in
`models/__init__.py`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from torch import Tensor, nn

StateDict = dict[str, Tensor]
LossFn = Callable[..., Tensor]
NUMBER_FORMATS = ("fp32", "bf16", "fp16")


def plain_forward(network: nn.Module, degraded: Tensor) -> object:
    """How a training batch reaches most networks: `network(degraded)`."""
    return network(degraded)


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]
    #: Returns the hyper-parameters if the state dict belongs to this architecture, else None.
    detect: Callable[[StateDict], dict | None]
    #: Runs the network on a padded image and returns the restored one (N x C x H x W in [0, 1]).
    restore: Callable[..., Tensor]
    #: The name people write (tables, the web page, listings); the `name` where empty.
    display_name: str = ""
    #: The published training loss for a task, `loss(task)(outputs, target[, labels])`; None: not trainable here.
    loss: Callable[[str], LossFn] | None = None
    #: How a training batch reaches the network; its result is what `loss` takes.
    training_forward: Callable[..., object] = plain_forward
    #: Whether training batches carry rain-density labels (DID-MDN is conditioned on them).
    needs_density_labels: bool = False
    #: Called once on each whole image (N x C x H x W in [0, 1], on any device: the hook moves what it needs) before
    #: it is cut into tiles; the keyword arguments it returns go to every tile's `restore(model, tile, **prepared)`,
    #: so a choice made on the whole image (DID-MDN's rain-density label) holds for all its tiles.
    prepare: Callable[[Any, Tensor], dict] | None = None
    presets: dict[str, dict] = field(default_factory=dict)
    #: The tasks the architecture's published releases address (the study's rows).
    release_tasks: tuple[str, ...] = ()
    #: The task of a release from its hyper-parameters, where several tasks share the architecture (None: unknown).
    task_of: Callable[[dict], str | None] | None = None
    #: Height and width of the network's input must be multiples of this.
    size_multiple: int = 1
    #: Channels of the images the network takes, from its hyper-parameters.
    image_channels: Callable[[dict], int] = lambda hparams: 3
    #: The arithmetic it runs in (autocast for bf16 and fp16).
    precisions: tuple[str, ...] = NUMBER_FORMATS
    #: Constructor arguments that say how the network runs, not what it is (MPRNet's `batch_patches`): they are no
    #: hyper-parameter, so weights never record them; an old file that does is read without them.
    run_options: tuple[str, ...] = ()
    description: str = ""

    @property
    def title(self) -> str:
        return self.display_name or self.name

    def training_loss(self, task: str) -> LossFn:
        if self.loss is None:
            raise ValueError(f"no training loss is defined for architecture {self.name!r}")
        return self.loss(task)

    def release_task(self, hparams: dict) -> str | None:
        """The task a checkpoint of this architecture with `hparams` was released for, if it can be told."""
        if self.task_of is not None:
            return self.task_of(hparams)
        return self.release_tasks[0] if len(self.release_tasks) == 1 else None


ARCHITECTURES: dict[str, Architecture] = {}


def restoring_forward(model: nn.Module, image: Tensor) -> Tensor:
    """The pass a restorer makes on one padded batch of a registered network: its architecture's `prepare` (DID-MDN
    chooses its density label), then `restore` (the engine does the same, `prepare` once per image)."""
    architecture = ARCHITECTURES[describe(model).architecture]
    prepared = architecture.prepare(model, image) if architecture.prepare else {}
    return architecture.restore(model, image, **prepared)


def register(architecture: Architecture) -> Architecture:
    ARCHITECTURES[architecture.name] = architecture
    return architecture


def architectures() -> list[Architecture]:
    """Every registered architecture, in registration order (MPRNet first)."""
    return list(ARCHITECTURES.values())


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}") from None


def list_models() -> list[str]:
    """Every distinct configuration by name: each architecture's presets as `<architecture>-<preset>`, preceded by
    the bare architecture where its defaults differ from all its presets (the study's cost rows)."""
    names = []
    for architecture in ARCHITECTURES.values():
        defaults = _defaults(architecture)
        configs = [{**defaults, **preset} for preset in architecture.presets.values()]
        if defaults not in configs:
            names.append(architecture.name)
        names += [f"{architecture.name}-{preset}" for preset in architecture.presets]
    return names


def resolve_preset(name: str) -> tuple[Architecture, dict]:
    """`'mprnet-deblur'` (a preset, always named with its architecture) or `'mprnet'` (defaults) -> (architecture,
    config). A bare name such as `'deblur'` is a bundled trained model's, which `load_model` loads: it names no
    configuration here, so that one name never means two networks."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name], {}
    for architecture in ARCHITECTURES.values():
        for preset, config in architecture.presets.items():
            if name == f"{architecture.name}-{preset}":
                return architecture, dict(config)
    known = [f"{a.name}-{p}" for a in ARCHITECTURES.values() for p in a.presets]
    raise ValueError(
        f"no configuration is named {name!r}; known: {', '.join(sorted(ARCHITECTURES) + known)} "
        f"(trained models, bundled or official, load with mprnet.load_model({name!r}))"
    )


def create_model(name: str, **overrides) -> nn.Module:
    """A freshly initialised network from an architecture or preset name, e.g. `create_model('mprnet-derain')`."""
    architecture, config = resolve_preset(name)
    return build(architecture, {**config, **overrides})


@dataclass(frozen=True)
class ModelInfo:
    """What a network that mprnet built or loaded is: its architecture, its hyper-parameters (no run option) and the
    metadata of the file it came from (empty for a fresh network)."""

    architecture: str
    hparams: dict[str, Any]
    metadata: dict[str, str]

    @property
    def task(self) -> str | None:
        """The task the weights were trained for: the file's word, else the published release's configuration."""
        if self.metadata.get("task"):
            return self.metadata["task"]
        architecture = ARCHITECTURES.get(self.architecture)
        return architecture.task_of(self.hparams) if architecture and architecture.task_of else None

    @property
    def title(self) -> str:
        architecture = ARCHITECTURES.get(self.architecture)
        return architecture.title if architecture else self.architecture


def describe(model: nn.Module) -> ModelInfo:
    """The typed description of a network that `build`, `create_model` or `load_model` made."""
    try:
        return ModelInfo(
            architecture=cast(str, model.architecture),
            hparams=dict(cast("dict[str, Any]", model.hparams)),
            metadata=dict(cast("dict[str, str]", getattr(model, "metadata", None) or {})),
        )
    except AttributeError:
        raise ValueError(f"a {type(model).__name__} that mprnet did not build or load carries no description") from None


def build(architecture: Architecture, config: dict) -> nn.Module:
    """The network with `config`; `model.hparams` records every hyper-parameter, defaults included."""
    model = architecture.build(**config)
    # nn.Module.__setattr__ is typed for tensors and modules only; it stores any other value as a plain attribute.
    model.architecture = architecture.name  # type: ignore[assignment]
    hparams = {**_defaults(architecture), **config}
    model.hparams = {key: value for key, value in hparams.items() if key not in architecture.run_options}  # type: ignore[assignment]
    return model


def _defaults(architecture: Architecture) -> dict:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(architecture.build).parameters.items()
        if parameter.default is not inspect.Parameter.empty
        and _is_plain(parameter.default)
        and name not in architecture.run_options
    }


def hyperparameters(architecture: Architecture) -> list[str]:
    """The names of the architecture's hyper-parameters (what its configuration may set; no run option)."""
    parameters = inspect.signature(architecture.build).parameters.values()
    return [
        parameter.name
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and parameter.name not in architecture.run_options
    ]


def _is_plain(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple))


def detect(state_dict: StateDict) -> tuple[Architecture, dict]:
    """The architecture and hyper-parameters that produced a state dict."""
    for architecture in ARCHITECTURES.values():
        config = architecture.detect(state_dict)
        if config is not None:
            return architecture, config
    sample = ", ".join(list(state_dict)[:3])
    raise ValueError(
        f"the weights match no known architecture ({', '.join(ARCHITECTURES)}); first keys found: {sample or 'none'}"
    )
