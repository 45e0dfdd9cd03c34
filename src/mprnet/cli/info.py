"""`mprnet info`: what a checkpoint, bundled model or preset is, and what it costs to run."""

from __future__ import annotations

import argparse
from pathlib import Path

from torch import nn

from ..checkpoint import bundled_models, load_model
from ..complexity import count_macs, count_parameters
from ..errors import CheckpointError, MetricError
from ..hub import is_official
from ..models.registry import create_model, describe, get_architecture, list_models, restoring_forward
from . import add_number

HELP = "describe a checkpoint, bundled model or preset: architecture, configuration, parameters, MACs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="CHECKPOINT_OR_PRESET",
        help=f"a weights file, a bundled model's or official checkpoint's name (mprnet weights list), or a preset: "
        f"{', '.join(list_models())}",
    )
    add_number(
        parser, "--size", int, least=1, default=256, metavar="N", help="input side for the MAC count (default: 256)"
    )


def run(args: argparse.Namespace) -> int:
    model = _open(args.model)
    info = describe(model)
    architecture, hparams = get_architecture(info.architecture), info.hparams
    if args.size % architecture.size_multiple:
        raise MetricError(
            f"--size must be a multiple of {architecture.size_multiple} for {architecture.name}, found {args.size}"
        )
    parameters = count_parameters(model)
    shape = (1, architecture.image_channels(hparams), args.size, args.size)
    macs = count_macs(model, shape, forward=restoring_forward)
    print(f"architecture:  {architecture.name} ({architecture.description})")
    print(f"configuration: {', '.join(f'{key}={value}' for key, value in hparams.items()) or 'defaults'}")
    print(f"parameters:    {parameters:,} ({parameters / 1e6:.2f} M)")
    print(f"MACs at {args.size}x{args.size}: {macs / 1e9:.2f} G")
    for key, value in sorted(info.metadata.items()):
        print(f"metadata {key}: {value}")
    return 0


def _open(name: str) -> nn.Module:
    """A weights file, bundled model or official checkpoint through `load_model`, otherwise a freshly built preset."""
    if Path(name).exists() or name in bundled_models() or is_official(name):
        return load_model(name)
    try:
        return create_model(name)
    except ValueError as error:
        raise CheckpointError(f"{name}: not a weights file or a bundled model, and {error}") from None
