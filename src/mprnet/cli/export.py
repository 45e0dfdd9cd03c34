"""`mprnet export`: a bundled model or weights file as ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import load_model
from ..export import FORMATS, TOLERANCE, ExportError, export_model

HELP = "export a network as ONNX or TorchScript for other runtimes (checked against PyTorch on export)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", metavar="WEIGHTS", help="a bundled model's name (deblur, denoise, derain) or a file")
    parser.add_argument(
        "--format", required=True, choices=FORMATS, help="onnx (checked with onnxruntime) or torchscript"
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="the file to write")
    parser.add_argument("--height", type=int, metavar="H", help="a fixed input height (a multiple of the network's)")
    parser.add_argument("--width", type=int, metavar="W", help="a fixed input width (a multiple of the network's)")
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="any batch, height and width (multiples of the network's); the default without --height and --width",
    )


def run(args: argparse.Namespace) -> int:
    sized = args.height is not None or args.width is not None
    if args.dynamic and sized:
        raise ExportError("--dynamic takes any size: leave out --height and --width, or --dynamic")
    if args.output.is_dir():
        raise ExportError(f"-o {args.output} is a folder; name the file to write")
    if not args.output.parent.is_dir():
        raise ExportError(f"the folder of -o {args.output} does not exist")
    if Path(args.weights).exists() and args.output.resolve() == Path(args.weights).resolve():
        raise ExportError(f"-o {args.output} is the weights file itself; choose another name")
    model = load_model(args.weights)
    report = export_model(model, args.output, args.format, args.height, args.width)
    print(f"{report.summary()} (at most {TOLERANCE:g} allowed)")
    return 0
