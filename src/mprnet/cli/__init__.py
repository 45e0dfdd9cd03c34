"""The `mprnet` command. Each sub-command lives in its own module of this package and defines
`HELP`, `add_arguments(parser)` and `run(args) -> int`; this module only finds and dispatches them."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ..errors import MprnetError


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
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except MprnetError as error:
        if str(error):  # empty: already reported (by another process of the same run)
            print(f"mprnet {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"mprnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
