"""The `mprnet` command. Each sub-command lives in its own module of this package and defines
`HELP`, `add_arguments(parser)` and `run(args) -> int`; this module finds and dispatches them, and gives them
`add_number`, the one way a numeric option is declared and checked."""

from __future__ import annotations

import argparse
import importlib
import math
import pkgutil
import sys
from typing import Any

from ..errors import MprnetError


class OptionError(MprnetError):
    """A value an option cannot take, refused while the command line is read, so before any work."""

    exit_code = 2

    def __init__(self, command: str, message: str):
        super().__init__(message)
        self.command = command


def add_number(
    parser: argparse.ArgumentParser,
    flag: str,
    kind: type[int] | type[float] = float,
    *,
    above: float | None = None,
    least: float | None = None,
    most: float | None = None,
    most_because: str = "",
    **options: Any,
) -> None:
    """`parser.add_argument(flag, **options)` for a finite number of `kind` (int: a whole number) above `above`, at
    least `least` and at most `most` (`most_because` says why); any other value is an `OptionError`."""
    rule = " and ".join(_rules(kind, above, least, most, most_because))
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise OptionError(parser.prog, f"{flag} must be {noun}, found {text!r}") from None
        if not (
            math.isfinite(value)
            and (above is None or value > above)
            and (least is None or value >= least)
            and (most is None or value <= most)
        ):
            raise OptionError(parser.prog, f"{flag} must be {rule}, found {text}")
        return value

    # OptionError is no ValueError, so argparse lets it through to `main`, which prints its one line.
    parser.add_argument(flag, type=parse, **options)


def add_tiling(parser: argparse.ArgumentParser, overlap: bool = True) -> None:
    """The engine's tiling options, as every command that restores with a network takes them: --tile and, with
    `overlap`, --overlap."""
    add_number(
        parser,
        "--tile",
        int,
        least=0,
        metavar="N",
        help="tile side in pixels (default: chosen from free memory; 0: never tile)",
    )
    if overlap:
        add_number(
            parser, "--overlap", int, least=0, default=32, metavar="N", help="overlap between tiles (default: 32)"
        )


def _rules(
    kind: type[int] | type[float], above: float | None, least: float | None, most: float | None, most_because: str
) -> list[str]:
    rules = []
    if above is not None:
        rules.append("positive" if above == 0 else f"above {above:g}")
    if least is not None:
        rules.append(f"{least:g} or more")
    if most is not None:
        rules.append(f"at most {most:g}" + (f" ({most_because})" if most_because else ""))
    return [*rules, "finite"] if kind is float else rules


def _commands() -> dict:
    modules = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            modules[info.name] = importlib.import_module(f"{__name__}.{info.name}")
    return modules


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="mprnet", description="MPRNet image restoration: deblur, denoise, derain.")
    parser.add_argument("--version", action="version", version=f"mprnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _commands().items():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    command = "mprnet"
    try:
        args = build_parser().parse_args(argv)
        command = f"mprnet {args.command}"
        return int(args.run(args) or 0)
    except MprnetError as error:
        if str(error):  # empty: already reported (by another process of the same run)
            print(f"{error.command if isinstance(error, OptionError) else command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
