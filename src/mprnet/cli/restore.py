"""`mprnet restore`: restore image files, folders or globs into an output folder.

Outputs keep the input's name (and folder layout below a folder given as input), never overwrite an input, and
are written atomically; an existing output is left alone unless --overwrite, so a rerun continues where an
interrupted one stopped. A file that fails is reported and counted, and the batch goes on.

Under `torchrun` every process restores its own share of the files (split by size, so the shares take about the
same time), each on its own GPU or its own share of the CPU cores; rank 0 plans, shows one progress bar for all and
prints the summary. The work is the library's batch engine (`mprnet.batch`); this module reads the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from ..backends import BACKEND_NAMES, choose
from ..baselines import BASELINES
from ..batch import BatchJob, restore_batch
from ..distributed import Distributed
from ..errors import UsageError
from ..infer import DEFAULT_PRECISION, PRECISIONS
from ..io import DEFAULT_MAX_PIXELS
from ..models.registry import ARCHITECTURES
from ..restorers import AUTO, method_names
from ..tasks import TASK_NAMES
from . import add_number, add_tiling

HELP = "restore photographs: deblur, denoise or derain image files and folders"
DEFAULT_OUTPUT = Path("restored")
#: The flags that set the batch engine's parameters, so that its messages name them.
FLAGS = {
    "listed": "--list",
    "output": "-o",
    "recursive": "-r",
    "task": "--task",
    "report": "--report",
    "weights": "--weights",
    "arch": "--arch",
    "method": "--method",
    "sigma": "--sigma",
    "kernel": "--kernel",
    "tile": "--tile",
    "overlap": "--overlap",
    "precision": "--precision",
    "device": "--device",
    "backend": "--backend",
    "max_pixels": "--max-megapixels",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument(
        "--list",
        metavar="FILE",
        help="also restore the image files named in FILE, one path a line (- reads standard input); a relative path "
        "keeps its folders below the output folder",
    )
    parser.add_argument(
        "--task",
        choices=(*TASK_NAMES, AUTO),
        help="what to undo (picks the bundled model); auto: the degradation classifier decides per photo, and a photo "
        "it finds clean, or is unsure about, is copied unchanged",
    )
    parser.add_argument(
        "--report", type=Path, metavar="FILE", help="with --task auto, write what was decided per file as JSON lines"
    )
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="a checkpoint to use instead of the bundled model, or an official one's name (mprnet weights list)",
    )
    parser.add_argument(
        "--arch",
        metavar="NAME",
        help=f"the architecture the --weights must be ({', '.join(ARCHITECTURES)}); "
        "it is detected anyway, this only guards against the wrong file",
    )
    parser.add_argument(
        "--method",
        choices=method_names(),
        metavar="METHOD",
        help=f"a classic method ({', '.join(BASELINES)}) instead of the network, or the "
        f"architecture the network must be (default: the network)",
    )
    add_number(
        parser, "--sigma", above=0, most=255, help="noise level on the 0-255 scale, for non-blind classic methods"
    )
    parser.add_argument("--kernel", metavar="FILE", help="blur kernel file, for non-blind classic deblurring")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"output folder (default: ./{DEFAULT_OUTPUT})"
    )
    parser.add_argument("-r", "--recursive", action="store_true", help="also restore images in sub-folders")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that already exist (by default they are skipped)"
    )
    add_tiling(parser)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="arithmetic precision (default: auto, bf16 where the CPU or GPU computes it natively, else fp32)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default: auto)")
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default="torch",
        help="what runs the network on the CPU: torch, onnxruntime, openvino, openvino-int8 (tasks the int8 rule "
        "allows), or auto (the fastest installed one measured on this kind of CPU) (default: torch)",
    )
    add_number(
        parser,
        "--threads",
        int,
        least=1,
        most=os.cpu_count() or 1,
        most_because="the CPUs of this machine",
        metavar="N",
        help="CPU threads of each process (default: PyTorch's choice; under torchrun each process's share)",
    )
    add_number(
        parser,
        "--max-megapixels",
        above=0,
        default=DEFAULT_MAX_PIXELS / 1e6,
        metavar="MP",
        help=f"refuse larger images, a guard against decompression bombs (default: {DEFAULT_MAX_PIXELS / 1e6:g})",
    )


def run(args: argparse.Namespace) -> int:
    group = Distributed("gloo")
    try:
        if args.threads or group.local_world > 1:
            torch.set_num_threads(args.threads or group.cpu_threads())
        if args.backend != "torch" and group.main:
            print(f"mprnet restore: {choose(args.backend, args.precision, args.device).describe()}")
        done = restore_batch(lambda: batch_job(args), group)
        if group.main:
            print(
                f"{done.restored} restored, {done.skipped} skipped, {done.failed} failed "
                f"in {done.seconds:.1f} s; outputs in {args.output}"
            )
        group.barrier()  # rank 0 done first: torchrun stops the rest as soon as one process ends with a failure
        return 1 if done.failed else 0
    finally:
        group.close()


def batch_job(args: argparse.Namespace) -> BatchJob:
    """The batch the command line asks for (the --list file read here: on rank 0 only, which plans)."""
    return BatchJob(
        inputs=tuple(args.inputs),
        output=args.output,
        recursive=args.recursive,
        listed=tuple(read_list(args.list)) if args.list else (),
        listed_from=args.list or "",
        task=args.task,
        weights=args.weights,
        method=args.method,
        arch=args.arch,
        sigma=args.sigma,
        kernel=args.kernel,
        overwrite=args.overwrite,
        tile=args.tile,
        overlap=args.overlap,
        precision=args.precision,
        device=args.device,
        backend=args.backend,
        max_pixels=int(args.max_megapixels * 1e6),
        report=args.report,
        program="mprnet restore",
        flags=FLAGS,
    )


def read_list(name: str) -> list[str]:
    """The paths a --list file names, one a line (blank lines ignored); "-" reads standard input."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read the --list file {name}: {getattr(error, 'strerror', None) or error}") from None
    return [line for line in text.splitlines() if line.strip()]
