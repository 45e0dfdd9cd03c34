"""Writing files atomically: a temporary file in the destination's folder, renamed over it when complete, so an
interrupted run never leaves a half-written output (and a rerun sees only finished files); and the checks that
keep a command from replacing what it did not make."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import MprnetError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces `path` (mode 0644 less the umask)."""
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        yield temporary
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class OverwriteError(MprnetError):
    """An output that would replace a file this run did not make (an input, a data set's file, an earlier run's
    output) without --overwrite. A usage error: exit status 2."""

    exit_code = 2


def refuse_existing(path: str | os.PathLike, option: str, overwrite: bool = False) -> None:
    """OverwriteError where the output `path` (given as `option`) is a folder, or a file and not `overwrite`."""
    path = Path(path)
    if path.is_dir():
        raise OverwriteError(f"{option} {path} is a folder; name the file to write")
    if path.exists() and not overwrite:
        raise OverwriteError(f"{option} {path} exists; pass --overwrite to replace it, or choose another name")


def refuse_inside(path: str | os.PathLike, option: str, folders: Iterable[str | os.PathLike], what: str) -> None:
    """OverwriteError where the output `path` (given as `option`) is, or lies inside, one of `folders` (`what`
    they hold, for the message)."""
    resolved = Path(path).resolve()
    for folder in folders:
        if resolved.is_relative_to(Path(folder).resolve()):
            raise OverwriteError(f"{option} {path} lies inside {what} {folder}; choose a place outside it")
