"""`mprnet export`: a bundled model or weights file as ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import load_model
from ..export import FORMATS, TOLERANCE, ExportError, export_model
from ..files import refuse_existing
from . import add_number

HELP = "export a network as ONNX or TorchScript for other runtimes (checked against PyTorch on export)"
#: The file name ending of each format: an output named otherwise is refused (it is likely another file's name).
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "weights",
        metavar="WEIGHTS",
        help="a bundled model's name (deblur, denoise, derain), an official checkpoint's name or a file",
    )
    parser.add_argument(
        "--format", required=True, choices=FORMATS, help="onnx (checked with onnxruntime) or torchscript"
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="the file to write (.onnx or .pt)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the -o file if it exists")
    add_number(parser, "--height", int, least=1, metavar="H", help="a fixed input height (a multiple of the network's)")
    add_number(parser, "--width", int, least=1, metavar="W", help="a fixed input width (a multiple of the network's)")
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="any height and width (multiples of the network's), one image at a time; the default without --height and "
        "--width",
    )


def run(args: argparse.Namespace) -> int:
    sized = args.height is not None or args.width is not None
    if args.dynamic and sized:
        raise ExportError("--dynamic takes any size: leave out --height and --width, or --dynamic")
    if sized and None in (args.height, args.width):
        raise ExportError("give both --height and --width, or neither (--dynamic)")
    _check_output(args)
    model = load_model(args.weights)
    report = export_model(model, args.output, args.format, args.height, args.width)
    print(f"{report.summary()} (at most {TOLERANCE:g} allowed)")
    return 0


def _check_output(args: argparse.Namespace) -> None:
    """The -o file: in an existing folder, not the weights read, named as its format's files are, and new unless
    --overwrite."""
    if not args.output.parent.is_dir():
        raise ExportError(f"the folder of -o {args.output} does not exist")
    if Path(args.weights).exists() and args.output.resolve() == Path(args.weights).resolve():
        raise ExportError(f"-o {args.output} is the weights file itself; choose another name")
    suffix = SUFFIXES[args.format]
    if args.output.suffix.lower() != suffix:
        raise ExportError(f"-o {args.output}: a {args.format} file is named *{suffix}; choose such a name")
    refuse_existing(args.output, "-o", args.overwrite)
