"""The batch engine behind `mprnet restore`: restore image files, folders or globs into an output folder.

Outputs keep the input's name (and folder layout below a folder given as input), never overwrite an input, and
are written atomically; an existing output is left alone unless `overwrite`, so a rerun continues where an
interrupted one stopped. A file that fails is reported and counted, and the batch goes on. Every image goes
through the one image pipeline, `pipeline.restore_image`.

Under `torchrun` every process restores its own share of the files (split by size, so the shares take about the
same time), each on its own GPU; rank 0 plans, shows one progress bar for all and joins the processes' decision
reports.
"""

from __future__ import annotations

import glob
import itertools
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .baselines import BASELINES
from .distributed import Distributed, split_by_size
from .errors import CheckpointError, MprnetError, UsageError
from .files import atomic_path
from .infer import DEFAULT_PRECISION, pick_device
from .io import (
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
from .models.registry import get_architecture
from .pipeline import Restored, restore_image
from .restorers import AUTO, Restorer, get_restorer, gray_method_for

#: (input, output, the reason it is not restored or None) for each image a batch names.
Plan = list[tuple[Path, Path, str | None]]


@dataclass(frozen=True)
class BatchJob:
    """What a batch restores and how: the files, folders and glob patterns `inputs` and the `listed` files (a
    relative path keeps its folders below `output`), the restorer (`task`, `weights`, `method`, checked to be of
    architecture `arch`; `sigma` and the `kernel` file for classic non-blind methods), the engine's settings, the
    pixel limit and the decision report of task auto (`report`).

    `program` starts every line that reports a file's problem; `flags` names, for a front end, how its user sets a
    parameter ("tile": "--tile {}"), so that messages name what the user can change (the parameter itself where
    `flags` does not name it); `listed_from` is where the listed files were named, for messages."""

    inputs: tuple[str, ...] = ()
    output: Path = Path("restored")
    recursive: bool = False
    listed: tuple[str, ...] = ()
    task: str | None = None
    weights: str | None = None
    method: str | None = None
    arch: str | None = None
    sigma: float | None = None
    kernel: str | None = None
    overwrite: bool = False
    tile: int | None = None
    overlap: int = 32
    precision: str = DEFAULT_PRECISION
    device: str = "auto"
    backend: str = "torch"
    max_pixels: int = DEFAULT_MAX_PIXELS
    report: Path | None = None
    program: str = "mprnet"
    flags: Mapping[str, str] = field(default_factory=dict)
    listed_from: str = "the listed files"

    def option(self, name: str, value: Any = None) -> str:
        """How the user sets parameter `name` (to `value`): the front end's flag, else `name=value`."""
        flag = self.flags.get(name)
        if value is None or (flag is not None and value is True):
            return flag or name
        if flag is not None:
            return f"{flag} {value}"
        return f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"

    def warn(self, problem: str) -> None:
        tqdm.write(f"{self.program}: {problem}", file=sys.stderr)


@dataclass
class Share:
    """One process's part of the work: (input, output) pairs to restore, and the whole run's figures."""

    todo: list[tuple[Path, Path]]
    total: int  # files to restore over all processes
    skipped: int  # outputs that exist already
    failed: int  # inputs refused while planning (reported by rank 0)


@dataclass(frozen=True)
class BatchResult:
    """What a batch did, over all its processes."""

    restored: int
    skipped: int
    failed: int
    seconds: float


class AlreadyReported(MprnetError):
    """Rank 0 has printed the error; the other processes only stop with its exit status."""

    def __init__(self, exit_code: int):
        super().__init__("")
        self.exit_code = exit_code


def restore_batch(make_job: Callable[[], BatchJob], group: Distributed | None = None) -> BatchResult:
    """Run the batch that `make_job()` describes (called on rank 0 only, so that it may check settings and read
    standard input): plan it, restore this process's share, and add up what all processes did. An error in the
    plan stops every process, rank 0 raising it and the others `AlreadyReported`."""
    group = group or Distributed("gloo")
    started = time.monotonic()
    job, share = _share_from_main(make_job, group)
    counts = {"restored": 0, "failed": 0}
    _restore_all(job, share, counts, group)
    restored, failed = group.sum([counts["restored"], counts["failed"]])
    if group.main and job.report and group.world > 1:
        _merge_reports(job.report, group.world, continued=not job.overwrite)
    return BatchResult(restored, share.skipped, failed + share.failed, time.monotonic() - started)


def _share_from_main(make_job: Callable[[], BatchJob], group: Distributed) -> tuple[BatchJob, Share]:
    """The job and this process's share of the plan that rank 0 makes."""
    error: MprnetError | None = None

    def plan() -> tuple[BatchJob, list[Share]] | int:
        nonlocal error
        try:
            job = make_job()
            return job, plan_shares(job, group.world)
        except MprnetError as found:
            error = found
            return found.exit_code

    outcome = group.from_main(plan)
    if isinstance(outcome, int):
        raise error or AlreadyReported(outcome)
    job, shares = outcome
    return job, shares[group.rank]


def plan_shares(job: BatchJob, world: int) -> list[Share]:
    """The job's files in `world` shares of about equal size, the outputs that exist already skipped (unless
    `overwrite`) and the inputs that cannot be restored reported."""
    check_job(job)
    plan = plan_outputs(job.inputs, job.output, job.recursive, job.listed, job.warn)
    if not plan:
        named = ", ".join([*job.inputs, *([job.listed_from] if job.listed else [])])
        hint = "" if job.recursive else f" ({job.option('recursive', True)} also looks in sub-folders)"
        raise MprnetError(f"no image found in {named}{hint}")
    if job.report:
        _check_report(job, plan)
    skipped = failed = 0
    todo = []
    for source, target, problem in plan:
        if problem:
            job.warn(problem)
            failed += 1
        elif target.exists() and not job.overwrite:
            skipped += 1
        else:
            todo.append((source, target))
    parts = split_by_size([_size(source) for source, _ in todo], world)
    return [Share([todo[index] for index in part], len(todo), skipped, failed) for part in parts]


def check_job(job: BatchJob) -> None:
    """UsageError for settings that cannot go together, before any file is read."""
    option = job.option
    if not job.inputs and not job.listed:
        raise UsageError(f"name the images to restore: files, folders or glob patterns, or {option('listed', 'FILE')}")
    classic = job.method in BASELINES
    if not classic and (job.sigma is not None or job.kernel):
        raise UsageError(
            f"{option('sigma')} and {option('kernel')} are for the classic non-blind methods; the network is blind"
        )
    if classic and job.weights:
        raise UsageError(f"{option('weights')} goes with a network, not with the classic method {job.method}")
    if job.output.exists() and not job.output.is_dir():
        raise UsageError(f"{option('output', job.output)} is a file: name the folder the outputs go to")
    if job.arch:
        _check_arch_setting(job)
    if job.task == AUTO and (job.weights or job.method):
        raise UsageError(
            f"{option('task', AUTO)} picks the bundled models itself: leave out {option('weights')} and "
            f"{option('method')}"
        )
    if job.report and job.task != AUTO:
        raise UsageError(
            f"{option('report')} records the decisions of {option('task', AUTO)}; pass {option('task', AUTO)} too"
        )
    if classic:
        missing = [option(name) for name in BASELINES[str(job.method)].needs if getattr(job, name) is None]
        if missing:
            raise UsageError(f"{option('method', job.method)} needs {' and '.join(missing)}")
    else:
        pick_device(job.device)  # an unknown or missing device is reported before any file is read


def _check_arch_setting(job: BatchJob) -> None:
    if not job.weights:
        raise UsageError(
            f"{job.option('arch', job.arch)} checks the architecture of a weights file: pass "
            f"{job.option('weights', 'PATH')} too"
        )
    try:
        get_architecture(str(job.arch))
    except ValueError as error:
        raise UsageError(f"{job.option('arch')}: {error}") from None


def _check_report(job: BatchJob, plan: Plan) -> None:
    """The report file can be written and is none of the images read or written."""
    report = job.report
    assert report is not None
    if report.is_dir() or any(parent.is_file() for parent in report.parents):
        raise UsageError(f"{job.option('report', report)} cannot be written: it is a folder or lies under a file")
    if report.resolve() in {path.resolve() for source, target, _ in plan for path in (source, target)}:
        raise UsageError(f"{job.option('report', report)} is one of the images read or written; name another file")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported when its process tries to read it


def plan_outputs(
    inputs: Sequence[str],
    output: Path,
    recursive: bool,
    listed: Sequence[str] = (),
    warn: Callable[[str], None] | None = None,
) -> Plan:
    """(input, output, problem or None) for every image the inputs and the `listed` files name; UsageError if an
    output is an input. `warn` hears about what a folder holds that is not read (links, unreadable entries)."""
    plan: Plan = []
    claimed: dict[Path, Path] = {}  # output -> the input it restores
    named = itertools.chain(_expand_inputs(inputs, output, recursive, warn), _listed_files(listed))
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
        raise UsageError(f"outputs would overwrite inputs ({', '.join(clashes[:3])}); choose another output folder")
    return plan


def find_images(inputs: Sequence[str], recursive: bool, warn: Callable[[str], None] | None = None) -> list[Path]:
    """Every image file the inputs name (files, folders, glob patterns), as a batch would read them."""
    return [source for source, _ in _expand_inputs(inputs, None, recursive, warn)]


def _expand_inputs(
    inputs: Sequence[str], output: Path | None, recursive: bool, warn: Callable[[str], None] | None
) -> Iterator[tuple[Path, Path]]:
    """(file, its path relative to the output folder) for each file, folder and glob pattern given."""
    for given in inputs:
        path = Path(given)
        if path.is_dir() and output is not None and path.resolve() == output.resolve():
            raise UsageError(
                f"the output folder {output} is the input folder {given}: the restored images would "
                f"take the inputs' names; choose another output folder"
            )
        if path.is_dir():
            yield from _scan_folder(path, output, recursive, warn)
        elif not path.exists() and glob.has_magic(given):
            matches = sorted(glob.glob(given, recursive=True))
            if not matches:
                yield path, Path(path.name)  # reported as a missing file when read
            yield from ((Path(match), Path(Path(match).name)) for match in matches if Path(match).is_file())
        else:
            yield path, Path(path.name)


def _listed_files(listed: Sequence[str]) -> Iterator[tuple[Path, Path]]:
    """(file, its path relative to the output folder) for each listed path: a relative path keeps its folders, an
    absolute one, or one that climbs out with "..", only its name."""
    for line in listed:
        path = Path(line)
        keeps_folders = not path.is_absolute() and ".." not in path.parts
        yield path, path if keeps_folders else Path(path.name)


def _scan_folder(
    folder: Path, output: Path | None, recursive: bool, warn: Callable[[str], None] | None
) -> Iterator[tuple[Path, Path]]:
    files = folder.rglob("*") if recursive else folder.iterdir()
    skip = output.resolve() if output is not None else None
    for file in sorted(files):
        note = scan_note(file)
        if note:
            if warn:
                warn(note)
        elif file.is_file() and is_image_name(file) and (skip is None or skip not in file.resolve().parents):
            yield file, file.relative_to(folder)


_DONE = "restore/files"  # the counter of files done, shared by all processes


def _restore_all(job: BatchJob, share: Share, counts: dict, group: Distributed) -> None:
    """Restore this process's share; rank 0's bar counts the files of all processes."""
    shown = None if group.main else True  # tqdm: None shows a bar on terminals only, True never
    with (
        tqdm(total=share.total, unit="file", desc="files", disable=shown) as files,
        tqdm(unit="tile", desc="tiles", leave=False, disable=shown) as tiles,
    ):
        done = _restore_share(job, share.todo, counts, group, files, tiles) if share.todo else 0
        while group.main and done < share.total:  # the other processes' last files
            time.sleep(0.2)
            done = group.add(_DONE, 0)
            files.update(done - files.n)


def _restore_share(job: BatchJob, todo, counts: dict, group: Distributed, files: tqdm, tiles: tqdm) -> int:
    """Restore `todo`; how many files all processes have done by the end of it."""
    device = group.own_device(job.device)
    restorer = get_restorer(
        job.task, job.weights, job.method, device, job.precision, job.tile, job.overlap, job.backend
    )
    _check_arch(job, restorer)
    known = _known(job)
    known["progress"] = lambda done, total: _show_tiles(tiles, done, total)
    continued = group.world == 1 and not job.overwrite  # the parts of several processes start empty
    report = DecisionReport(_report_part(job.report, group), continued) if job.report else None
    gray_method = None if job.weights or job.method else gray_method_for(job.task)
    done = 0
    for source, target in todo:
        tiles.reset()
        tiles.set_description_str(source.name)
        problem = restore_file(job, source, target, restorer, known, report, gray_method)
        if problem:
            job.warn(problem)
        counts["failed" if problem else "restored"] += 1
        done = group.add(_DONE, 1)
        files.update(done - files.n)
    if report:
        report.close()
    return done


def _check_arch(job: BatchJob, restorer: Restorer) -> None:
    """CheckpointError if `arch` names another architecture than the one detected in the weights."""
    if job.arch and restorer.name != job.arch:
        raise CheckpointError(
            f"{job.option('arch', job.arch)} was asked for, but {job.weights} holds a {restorer.name} network"
        )


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


def _known(job: BatchJob) -> dict:
    known: dict[str, Any] = {}
    if job.sigma is not None:
        known["sigma"] = job.sigma
    if job.kernel:
        from .baselines import load_kernel

        known["kernel"] = load_kernel(job.kernel)
    return known


def _show_tiles(bar: tqdm, done: int, total: int) -> None:
    bar.total = total
    bar.update(done - bar.n)


def restore_file(
    job: BatchJob,
    source: Path,
    target: Path,
    restorer: Restorer,
    known: dict,
    report: DecisionReport | None = None,
    gray_method: str | None = None,
) -> str | None:
    """Restore one file through the image pipeline (`restore_image`): what it decides is printed before the work,
    what its judge finds after it, and with task auto both go to the report; the reason it failed, or None."""
    out_of_memory = f"{source}: ran out of memory; try smaller tiles, e.g. {job.option('tile', 256)}"
    try:
        prepare_folder(target.parent)  # before the work, not after
        image = read_image(source, max_pixels=job.max_pixels)
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
        return f"{error} (raise it with {job.option('max_pixels')} if you trust the file)"
    except MprnetError as error:
        return str(error) if str(source) in str(error) else f"{source}: {error}"
    except (MemoryError, torch.cuda.OutOfMemoryError):
        return out_of_memory
    except Exception as error:  # one file's failure, whatever it is, must not stop the batch
        if isinstance(error, RuntimeError) and _is_out_of_memory(error):
            return out_of_memory
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
    """JSON lines, one per file that task auto decided on: input, output, decision and probabilities, the method
    that restored it (None: left alone), the judge's verdict on its result, seconds. A run that `continued` an
    earlier one (without overwrite, which skips the files already restored) adds to the report, which keeps the
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
