"""Architectures by name: presets, construction, and detection from a state dict's keys and shapes.

Each architecture module registers one `Architecture`; everything else (loading, inference, training, the CLI)
only talks to this registry, so a new network needs no change outside its own file and one `register` call.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor, nn

StateDict = dict[str, Tensor]


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]
    #: Returns the hyper-parameters if the state dict belongs to this architecture, else None.
    detect: Callable[[StateDict], dict | None]
    #: Runs the network on a padded image and returns the restored one (N x C x H x W in [0, 1]).
    restore: Callable[..., Tensor]
    #: Called once on each whole image (N x C x H x W in [0, 1], on any device: the hook moves what it needs) before
    #: it is cut into tiles; the keyword arguments it returns go to every tile's `restore(model, tile, **prepared)`,
    #: so a choice made on the whole image (DID-MDN's rain-density label) holds for all its tiles.
    prepare: Callable[[nn.Module, Tensor], dict] | None = None
    presets: dict[str, dict] = field(default_factory=dict)
    #: Height and width of the network's input must be multiples of this.
    size_multiple: int = 1
    #: Channels of the images the network takes, from its hyper-parameters.
    image_channels: Callable[[dict], int] = lambda hparams: 3
    description: str = ""


ARCHITECTURES: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    ARCHITECTURES[architecture.name] = architecture
    return architecture


def get_architecture(name: str) -> Architecture:
    _load_builtin_architectures()
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None


def resolve_preset(name: str) -> tuple[Architecture, dict]:
    """`'mprnet-deblur'`, `'deblur'` (an MPRNet preset) or `'mprnet'` (defaults) -> (architecture, config)."""
    _load_builtin_architectures()
    if name in ARCHITECTURES:
        return ARCHITECTURES[name], {}
    for architecture in ARCHITECTURES.values():
        for preset, config in architecture.presets.items():
            if name in (preset, f"{architecture.name}-{preset}"):
                return architecture, dict(config)
    known = [f"{a.name}-{p}" for a in ARCHITECTURES.values() for p in a.presets]
    raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(ARCHITECTURES) + known)}")


def create_model(name: str, **overrides) -> nn.Module:
    """A freshly initialised network from an architecture or preset name, e.g. `create_model('mprnet-derain')`."""
    architecture, config = resolve_preset(name)
    return build(architecture, {**config, **overrides})


def build(architecture: Architecture, config: dict) -> nn.Module:
    """The network with `config`; `model.hparams` records every hyper-parameter, defaults included."""
    model = architecture.build(**config)
    model.architecture = architecture.name
    defaults = {name: parameter.default for name, parameter in inspect.signature(architecture.build).parameters.items()
                if parameter.default is not inspect.Parameter.empty and _is_plain(parameter.default)}
    model.hparams = {**defaults, **config}
    return model


def hyperparameters(architecture: Architecture) -> list[str]:
    """The names of the architecture's hyper-parameters (what its configuration may set)."""
    parameters = inspect.signature(architecture.build).parameters.values()
    return [parameter.name for parameter in parameters
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)]


def _is_plain(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple))


def detect(state_dict: StateDict) -> tuple[Architecture, dict]:
    """The architecture and hyper-parameters that produced a state dict."""
    _load_builtin_architectures()
    for architecture in ARCHITECTURES.values():
        config = architecture.detect(state_dict)
        if config is not None:
            return architecture, config
    sample = ", ".join(list(state_dict)[:3])
    raise ValueError(f"the weights match no known architecture ({', '.join(sorted(ARCHITECTURES))}); "
                     f"first keys found: {sample or 'none'}")


def _load_builtin_architectures() -> None:
    from . import mprnet  # noqa: F401  (importing registers; MPRNet first, so it is listed first)
    from . import did_mdn, mimo_unet, nafnet, srn  # noqa: F401
