"""`mprnet restore`: restore image files, folders or globs into an output folder.

Outputs keep the input's name (and folder layout below a folder given as input), never overwrite an input, and
are written atomically; an existing output is left alone unless --overwrite, so a rerun continues where an
interrupted one stopped. A file that fails is reported and counted, and the batch goes on.

Under `torchrun` every process restores its own share of the files (split by size, so the shares take about the
same time), each on its own GPU or its own share of the CPU cores; rank 0 plans, shows one progress bar for all and
prints the summary.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..baselines import BASELINES
from ..distributed import Distributed, split_by_size
from ..errors import CheckpointError, MprnetError
from ..files import atomic_path
from ..infer import PRECISIONS, pick_device
from ..io import (
    DEFAULT_MAX_PIXELS,
    PixelLimitError,
    is_image_name,
    output_format,
    output_suffix,
    prepare_folder,
    read_image,
    scan_note,
    write_image,
)
from ..models.registry import ARCHITECTURES, get_architecture
from ..pipeline import Restored, restore_image
from ..restorers import AUTO, get_restorer, gray_method_for, method_names
from ..tasks import TASK_NAMES
from . import add_number, add_tiling

HELP = "restore photographs: deblur, denoise or derain image files and folders"
DEFAULT_OUTPUT = Path("restored")
_OOM_HINT = "ran out of memory; try smaller tiles, e.g. --tile 256"


class UsageError(MprnetError):
    exit_code = 2


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
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="arithmetic precision (default: fp32)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default: auto)")
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


class AlreadyReported(MprnetError):
    """Rank 0 has printed the error; the other processes only stop with its exit status."""

    def __init__(self, exit_code: int):
        super().__init__("")
        self.exit_code = exit_code


@dataclass
class Share:
    """One process's part of the work: (input, output) pairs to restore, and the whole run's figures."""

    todo: list[tuple[Path, Path]]
    total: int  # files to restore over all processes
    skipped: int  # outputs that exist already
    failed: int  # inputs refused while planning (reported by rank 0)


def run(args: argparse.Namespace) -> int:
    group = Distributed("gloo")
    try:
        return _run(args, group)
    finally:
        group.close()


def _run(args: argparse.Namespace, group: Distributed) -> int:
    started = time.monotonic()
    share = _share_from_main(args, group)
    if args.threads or group.local_world > 1:
        torch.set_num_threads(args.threads or group.cpu_threads())
    counts = {"restored": 0, "failed": 0}
    _restore_all(share, args, counts, group)
    restored, failed = group.sum([counts["restored"], counts["failed"]])
    failed += share.failed
    if group.main:
        if args.report and group.world > 1:
            _merge_reports(args.report, group.world, continued=not args.overwrite)
        print(
            f"{restored} restored, {share.skipped} skipped, {failed} failed "
            f"in {time.monotonic() - started:.1f} s; outputs in {args.output}"
        )
    group.barrier()  # rank 0 done first: torchrun stops the rest as soon as one process ends with a failure
    return 1 if failed else 0


def _share_from_main(args: argparse.Namespace, group: Distributed) -> Share:
    """This process's share of the plan that rank 0 makes; an error in the plan stops every process."""
    error: MprnetError | None = None

    def plan_shares() -> list[Share] | int:
        nonlocal error
        try:
            return _plan_shares(args, group.world)
        except MprnetError as found:
            error = found
            return found.exit_code

    outcome = group.from_main(plan_shares)
    if isinstance(outcome, int):
        raise error or AlreadyReported(outcome)
    return outcome[group.rank]


def _plan_shares(args: argparse.Namespace, world: int) -> list[Share]:
    _check_options(args)
    listed = read_list(args.list) if args.list else []
    plan = plan_outputs(args.inputs, args.output, args.recursive, listed)
    if not plan:
        named = ", ".join([*args.inputs, *([args.list] if args.list else [])])
        hint = "" if args.recursive else " (-r also looks in sub-folders)"
        raise MprnetError(f"no image found in {named}{hint}")
    if args.report:
        _check_report(args.report, plan)
    skipped = failed = 0
    todo = []
    for source, target, problem in plan:
        if problem:
            _report(problem)
            failed += 1
        elif target.exists() and not args.overwrite:
            skipped += 1
        else:
            todo.append((source, target))
    parts = split_by_size([_size(source) for source, _ in todo], world)
    return [Share([todo[index] for index in part], len(todo), skipped, failed) for part in parts]


def _check_report(report: Path, plan: list) -> None:
    """The --report file can be written and is none of the images read or written."""
    if report.is_dir() or any(parent.is_file() for parent in report.parents):
        raise UsageError(f"--report {report} cannot be written: it is a folder or lies under a file")
    if report.resolve() in {path.resolve() for source, target, _ in plan for path in (source, target)}:
        raise UsageError(f"--report {report} is one of the images read or written; name another file")


def read_list(name: str) -> list[str]:
    """The paths a --list file names, one a line (blank lines ignored); "-" reads standard input."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read the --list file {name}: {getattr(error, 'strerror', None) or error}") from None
    return [line for line in text.splitlines() if line.strip()]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported when its process tries to read it


def _check_options(args: argparse.Namespace) -> None:
    if not args.inputs and not args.list:
        raise UsageError("name the images to restore: files, folders or glob patterns, or --list FILE")
    classic = args.method in BASELINES
    if not classic and (args.sigma is not None or args.kernel):
        raise UsageError("--sigma and --kernel are for the classic non-blind methods; the network is blind")
    if classic and args.weights:
        raise UsageError(f"--weights goes with a network, not with the classic method {args.method}")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"-o {args.output} is a file: name the folder the outputs go to")
    if args.arch:
        _check_arch_option(args)
    if args.task == AUTO and (args.weights or args.method):
        raise UsageError("--task auto picks the bundled models itself: leave out --weights and --method")
    if args.report and args.task != AUTO:
        raise UsageError("--report records the decisions of --task auto; pass --task auto too")
    if classic:
        _check_needs(args)
    if not classic:
        pick_device(args.device)  # an unknown or missing device is reported before any file is read


def _check_needs(args: argparse.Namespace) -> None:
    """The known values (--sigma, --kernel) the classic method cannot run without are given."""
    missing = [f"--{name}" for name in BASELINES[args.method].needs if getattr(args, name) is None]
    if missing:
        raise UsageError(f"--method {args.method} needs {' and '.join(missing)}")


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


def plan_outputs(
    inputs: list[str], output: Path, recursive: bool, listed: Sequence[str] = ()
) -> list[tuple[Path, Path, str | None]]:
    """(input, output, problem or None) for every image the inputs and the `listed` files name; UsageError if an
    output is an input."""
    plan: list[tuple[Path, Path, str | None]] = []
    claimed: dict[Path, Path] = {}  # output -> the input it restores
    named = itertools.chain(_expand_inputs(inputs, output, recursive), _listed_files(listed))
    for source, relative in named:
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


def _listed_files(listed: Sequence[str]):
    """(file, its path relative to the output folder) for each line of a --list: a relative path keeps its
    folders, an absolute one, or one that climbs out with "..", only its name."""
    for line in listed:
        path = Path(line)
        keeps_folders = not path.is_absolute() and ".." not in path.parts
        yield path, path if keeps_folders else Path(path.name)


def _scan_folder(folder: Path, output: Path | None, recursive: bool):
    files = folder.rglob("*") if recursive else folder.iterdir()
    skip = output.resolve() if output is not None else None
    for file in sorted(files):
        note = scan_note(file)
        if note:
            _report(note)
        elif file.is_file() and is_image_name(file) and (skip is None or skip not in file.resolve().parents):
            yield file, file.relative_to(folder)


def _restore_all(share: Share, args: argparse.Namespace, counts: dict, group: Distributed) -> None:
    """Restore this process's share; rank 0's bar counts the files of all processes."""
    shown = None if group.main else True  # tqdm: None shows a bar on terminals only, True never
    with (
        tqdm(total=share.total, unit="file", desc="files", disable=shown) as files,
        tqdm(unit="tile", desc="tiles", leave=False, disable=shown) as tiles,
    ):
        done = _restore_share(share.todo, args, counts, group, files, tiles) if share.todo else 0
        while group.main and done < share.total:  # the other processes' last files
            time.sleep(0.2)
            done = group.add(_DONE, 0)
            files.update(done - files.n)


_DONE = "restore/files"  # the counter of files done, shared by all processes


def _restore_share(todo, args: argparse.Namespace, counts: dict, group: Distributed, files: tqdm, tiles: tqdm) -> int:
    """Restore `todo`; how many files all processes have done by the end of it."""
    device = group.own_device(args.device)
    restorer = get_restorer(args.task, args.weights, args.method, device, args.precision, args.tile, args.overlap)
    _check_arch(restorer, args)
    known = _known(args)
    known["progress"] = lambda done, total: _show_tiles(tiles, done, total)
    continued = group.world == 1 and not args.overwrite  # the parts of several processes start empty
    report = DecisionReport(_report_part(args.report, group), continued) if args.report else None
    gray_method = None if args.weights or args.method else gray_method_for(args.task)
    done = 0
    for source, target in todo:
        tiles.reset()
        tiles.set_description_str(source.name)
        problem = _restore_file(source, target, restorer, known, int(args.max_megapixels * 1e6), report, gray_method)
        if problem:
            _report(problem)
        counts["failed" if problem else "restored"] += 1
        done = group.add(_DONE, 1)
        files.update(done - files.n)
    if report:
        report.close()
    return done


def _report_part(path: Path, group: Distributed) -> Path:
    """Where this process writes its decisions: the report itself, or with several processes a part of it that
    rank 0 joins at the end."""
    return path if group.world == 1 else _part(path, group.rank)


def _part(path: Path, rank: int) -> Path:
    return path.with_name(f".{path.name}.rank{rank}")


def _merge_reports(path: Path, world: int, continued: bool) -> None:
    """Join the processes' parts into the report: after the decisions it already holds where the run `continued`
    an earlier one (`DecisionReport`)."""
    parts = [_part(path, rank) for rank in range(world)]
    with atomic_path(path) as temporary, temporary.open("wb") as joined:
        if continued and path.exists():
            joined.write(path.read_bytes())
        for part in parts:
            if part.exists():
                joined.write(part.read_bytes())
    for part in parts:
        part.unlink(missing_ok=True)


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
    source: Path,
    target: Path,
    restorer,
    known: dict,
    max_pixels: int,
    report: DecisionReport | None = None,
    gray_method: str | None = None,
) -> str | None:
    """Restore one file through the image pipeline (`restore_image`): what it decides is printed before the work,
    what its judge finds after it, and with task auto both go to the report; the reason it failed, or None."""
    try:
        prepare_folder(target.parent)  # before the work, not after
        image = read_image(source, max_pixels=max_pixels)
        file_format, note = output_format(target, image)  # decided before the work, so the write cannot fail
        if note:
            tqdm.write(f"{source}: {note}", file=sys.stderr)
        started = time.monotonic()
        restored = restore_image(
            image, restorer, announce=lambda line: tqdm.write(f"{source}: {line}"), gray_method=gray_method, **known
        )
        if restored.left_alone:
            _copy_unchanged(source, target, image, file_format)
        else:
            write_image(target, restored.image, file_format)
        for line in restored.afterwards():
            tqdm.write(f"{source}: {line}")
        if report and restored.diagnosis is not None:
            report.write(source, target, restored, time.monotonic() - started)
    except PixelLimitError as error:
        return f"{error} (raise it with --max-megapixels if you trust the file)"
    except MprnetError as error:
        return str(error) if str(source) in str(error) else f"{source}: {error}"
    except (MemoryError, torch.cuda.OutOfMemoryError):
        return f"{source}: {_OOM_HINT}"
    except Exception as error:  # one file's failure, whatever it is, must not stop the batch
        if isinstance(error, RuntimeError) and _is_out_of_memory(error):
            return f"{source}: {_OOM_HINT}"
        return f"{source}: failed ({type(error).__name__}: {error})"
    return None


def _copy_unchanged(source: Path, target: Path, image, file_format: str) -> None:
    """The photo as it was: its very bytes where the output keeps its name's suffix, else its pixels re-encoded."""
    if target.suffix != source.suffix:
        write_image(target, image, file_format)
        return
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)


class DecisionReport:
    """JSON lines, one per file that --task auto decided on: input, output, decision and probabilities, the method
    that restored it (None: left alone), the judge's verdict on its result, seconds. A run that `continued` an
    earlier one (without --overwrite, which skips the files already restored) adds to the report, which keeps the
    decisions on the files it skips."""

    def __init__(self, path: Path, continued: bool):
        prepare_folder(path.parent)
        self.path = path
        self.handle = path.open("a" if continued else "w", encoding="utf-8")

    def write(self, source: Path, target: Path, restored: Restored, seconds: float) -> None:
        assert restored.diagnosis is not None  # only decisions are reported
        entry = {
            "input": str(source),
            "output": str(target),
            **restored.diagnosis.record(),
            **restored.record(),
            "seconds": round(seconds, 3),
        }
        self.handle.write(json.dumps(entry) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _is_out_of_memory(error: RuntimeError) -> bool:
    message = str(error).lower()
    return "out of memory" in message or "can't allocate memory" in message


def _report(problem: str) -> None:
    tqdm.write(f"mprnet restore: {problem}", file=sys.stderr)
