"""`mprnet restore`: restore image files, folders or globs into an output folder.

Outputs keep the input's name (and folder layout below a folder given as input), never overwrite an input, and
are written atomically; an existing output is left alone unless --overwrite, so a rerun continues where an
interrupted one stopped. A file that fails is reported and counted, and the batch goes on.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..api import restore_pixels
from ..baselines import BASELINES
from ..errors import CheckpointError, MprnetError
from ..files import atomic_path
from ..infer import PRECISIONS, pick_device
from ..io import (
    DEFAULT_MAX_PIXELS,
    PixelLimitError,
    is_image_name,
    output_suffix,
    prepare_folder,
    read_image,
    write_image,
)
from ..models.registry import ARCHITECTURES, get_architecture
from ..restorers import AUTO, get_restorer, method_names, resolve
from ..tasks import TASK_NAMES

HELP = "restore photographs: deblur, denoise or derain image files and folders"
DEFAULT_OUTPUT = Path("restored")
_OOM_HINT = "ran out of memory; try smaller tiles, e.g. --tile 256"


class UsageError(MprnetError):
    exit_code = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument(
        "--task",
        choices=(*TASK_NAMES, AUTO),
        help="what to undo (picks the bundled model); auto: the degradation classifier decides per photo, and a photo "
        "it finds clean, or is unsure about, is copied unchanged",
    )
    parser.add_argument(
        "--report", type=Path, metavar="FILE", help="with --task auto, write what was decided per file as JSON lines"
    )
    parser.add_argument("--weights", metavar="PATH", help="a checkpoint to use instead of the bundled model")
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
    parser.add_argument("--sigma", type=float, help="noise level on the 0-255 scale, for non-blind classic methods")
    parser.add_argument("--kernel", metavar="FILE", help="blur kernel file, for non-blind classic deblurring")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"output folder (default: ./{DEFAULT_OUTPUT})"
    )
    parser.add_argument("-r", "--recursive", action="store_true", help="also restore images in sub-folders")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that already exist (by default they are skipped)"
    )
    parser.add_argument(
        "--tile", type=int, metavar="N", help="tile side in pixels (default: chosen from free memory; 0: never tile)"
    )
    parser.add_argument("--overlap", type=int, default=32, metavar="N", help="overlap between tiles (default: 32)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="arithmetic precision (default: fp32)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default: auto)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: PyTorch's choice)")
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=DEFAULT_MAX_PIXELS / 1e6,
        metavar="MP",
        help=f"refuse larger images, a guard against decompression bombs (default: {DEFAULT_MAX_PIXELS / 1e6:g})",
    )


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = plan_outputs(args.inputs, args.output, args.recursive)
    if not plan:
        hint = "" if args.recursive else " (-r also looks in sub-folders)"
        raise MprnetError(f"no image found in {', '.join(args.inputs)}{hint}")
    started = time.monotonic()
    counts = {"restored": 0, "skipped": 0, "failed": 0}
    todo = []
    for source, target, problem in plan:
        if problem:
            _report(problem)
            counts["failed"] += 1
        elif target.exists() and not args.overwrite:
            counts["skipped"] += 1
        else:
            todo.append((source, target))
    if todo:
        _restore_all(todo, args, counts)
    print(
        f"{counts['restored']} restored, {counts['skipped']} skipped, {counts['failed']} failed "
        f"in {time.monotonic() - started:.1f} s; outputs in {args.output}"
    )
    return 1 if counts["failed"] else 0


def _check_options(args: argparse.Namespace) -> None:
    classic = args.method in BASELINES
    if not classic and (args.sigma is not None or args.kernel):
        raise UsageError("--sigma and --kernel are for the classic non-blind methods; the network is blind")
    if classic and args.weights:
        raise UsageError(f"--weights goes with a network, not with the classic method {args.method}")
    if args.arch:
        _check_arch_option(args)
    if args.task == AUTO and (args.weights or args.method):
        raise UsageError("--task auto picks the bundled models itself: leave out --weights and --method")
    if args.report and args.task != AUTO:
        raise UsageError("--report records the decisions of --task auto; pass --task auto too")
    if args.max_megapixels <= 0:
        raise UsageError(f"--max-megapixels must be positive, found {args.max_megapixels:g}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be 1 or more, found {args.threads}")
    if not classic:
        pick_device(args.device)  # an unknown or missing device is reported before any file is read


def _check_arch_option(args: argparse.Namespace) -> None:
    if not args.weights:
        raise UsageError(f"--arch {args.arch} checks the architecture of a weights file: pass --weights PATH too")
    try:
        get_architecture(args.arch)
    except ValueError as error:
        raise UsageError(f"--arch: {error}") from None


def _check_arch(restorer, args: argparse.Namespace) -> None:
    """CheckpointError if --arch names another architecture than the one detected in --weights."""
    if not args.arch:
        return
    found = restorer.name
    if found != args.arch:
        raise CheckpointError(f"--arch {args.arch} was asked for, but {args.weights} holds a {found} network")


def plan_outputs(inputs: list[str], output: Path, recursive: bool) -> list[tuple[Path, Path, str | None]]:
    """(input, output, problem or None) for every image the inputs name; UsageError if an output is an input."""
    plan: list[tuple[Path, Path, str | None]] = []
    claimed: dict[Path, Path] = {}  # output -> the input it restores
    for source, relative in _expand_inputs(inputs, output, recursive):
        target = output / relative.with_suffix(output_suffix(source))
        problem = None
        if target.resolve() in claimed:
            problem = f"{source}: skipped, its output {target} is already the output of {claimed[target.resolve()]}"
        else:
            claimed[target.resolve()] = source
        plan.append((source, target, problem))
    sources = {source.resolve() for source, _, _ in plan}
    clashes = [str(target) for _, target, _ in plan if target.resolve() in sources]
    if clashes:
        raise UsageError(f"outputs would overwrite inputs ({', '.join(clashes[:3])}); choose another -o folder")
    return plan


def find_images(inputs: list[str], recursive: bool) -> list[Path]:
    """Every image file the inputs name (files, folders, glob patterns), as `restore` would read them."""
    return [source for source, _ in _expand_inputs(inputs, None, recursive)]


def _expand_inputs(inputs: list[str], output: Path | None, recursive: bool):
    """(file, its path relative to the output folder) for each file, folder and glob pattern given."""
    for given in inputs:
        path = Path(given)
        if path.is_dir() and output is not None and path.resolve() == output.resolve():
            raise UsageError(
                f"the output folder {output} is the input folder {given}: the restored images would "
                f"take the inputs' names; choose another -o folder"
            )
        if path.is_dir():
            yield from _scan_folder(path, output, recursive)
        elif not path.exists() and glob.has_magic(given):
            matches = sorted(glob.glob(given, recursive=True))
            if not matches:
                yield path, Path(path.name)  # reported as a missing file when read
            yield from ((Path(match), Path(Path(match).name)) for match in matches if Path(match).is_file())
        else:
            yield path, Path(path.name)


def _scan_folder(folder: Path, output: Path | None, recursive: bool):
    files = folder.rglob("*") if recursive else folder.iterdir()
    skip = output.resolve() if output is not None else None
    for file in sorted(files):
        if file.is_file() and is_image_name(file) and (skip is None or skip not in file.resolve().parents):
            yield file, file.relative_to(folder)


def _restore_all(todo: list[tuple[Path, Path]], args: argparse.Namespace, counts: dict) -> None:
    restorer = get_restorer(args.task, args.weights, args.method, args.device, args.precision, args.tile, args.overlap)
    _check_arch(restorer, args)
    known = _known(args)
    report = DecisionReport(args.report) if args.report else None
    with (
        tqdm(total=len(todo), unit="file", desc="files", disable=None) as files,
        tqdm(unit="tile", desc="tiles", leave=False, disable=None) as tiles,
    ):
        known["progress"] = lambda done, total: _show_tiles(tiles, done, total)
        for source, target in todo:
            tiles.reset()
            problem = _restore_file(source, target, restorer, known, int(args.max_megapixels * 1e6), report)
            if problem:
                _report(problem)
            counts["failed" if problem else "restored"] += 1
            files.update()
    if report:
        report.close()


def _known(args: argparse.Namespace) -> dict:
    known = {}
    if args.sigma is not None:
        known["sigma"] = args.sigma
    if args.kernel:
        from ..baselines import load_kernel

        known["kernel"] = load_kernel(args.kernel)
    return known


def _show_tiles(bar: tqdm, done: int, total: int) -> None:
    bar.total = total
    bar.update(done - bar.n)


def _restore_file(
    source: Path, target: Path, restorer, known: dict, max_pixels: int, report: DecisionReport | None = None
) -> str | None:
    """Restore one file (with task auto: as the classifier decides, printed and reported); the reason it failed,
    or None."""
    try:
        prepare_folder(target.parent)  # before the work, not after
        image = read_image(source, max_pixels=max_pixels)
        started = time.monotonic()
        diagnosis, chosen = resolve(restorer, image.pixels)
        if diagnosis is not None:
            tqdm.write(f"{source}: {diagnosis.summary()}")
        if chosen is None:
            _copy_unchanged(source, target, image)
        else:
            write_image(target, image.map_frames(lambda pixels: restore_pixels(pixels, chosen, **known)))
        if report and diagnosis is not None:
            report.write(source, target, diagnosis, time.monotonic() - started)
    except PixelLimitError as error:
        return f"{error} (raise it with --max-megapixels if you trust the file)"
    except MprnetError as error:
        return str(error) if str(source) in str(error) else f"{source}: {error}"
    except (MemoryError, torch.cuda.OutOfMemoryError):
        return f"{source}: {_OOM_HINT}"
    except RuntimeError as error:
        if not _is_out_of_memory(error):
            raise
        return f"{source}: {_OOM_HINT}"
    return None


def _copy_unchanged(source: Path, target: Path, image) -> None:
    """The photo as it was: its very bytes where the output keeps its format, else its pixels re-encoded."""
    if target.suffix != source.suffix:
        write_image(target, image)
        return
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)


class DecisionReport:
    """JSON lines, one per file that --task auto decided on: input, output, decision and probabilities, seconds."""

    def __init__(self, path: Path):
        prepare_folder(path.parent)
        self.path = path
        self.handle = path.open("w", encoding="utf-8")

    def write(self, source: Path, target: Path, diagnosis, seconds: float) -> None:
        entry = {"input": str(source), "output": str(target), **diagnosis.record(), "seconds": round(seconds, 3)}
        self.handle.write(json.dumps(entry) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _is_out_of_memory(error: RuntimeError) -> bool:
    message = str(error).lower()
    return "out of memory" in message or "can't allocate memory" in message


def _report(problem: str) -> None:
    tqdm.write(f"mprnet restore: {problem}", file=sys.stderr)
