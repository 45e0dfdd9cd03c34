"""`mprnet weights`: the authors' official checkpoints (list, fetch into the per-user cache) and the conversion of
SRN's TensorFlow checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "the authors' official checkpoints: list them, fetch them into the per-user cache, convert SRN's TensorFlow one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every official checkpoint: source, file, size, licence, paper, cache state")
    fetch = actions.add_parser("fetch", help="download official checkpoints into the cache, checked by loading")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="names from `mprnet weights list`")
    fetch.add_argument(
        "--accept-license",
        action="store_true",
        help="accept the licence of each checkpoint named (recorded: once per licence)",
    )
    convert = actions.add_parser("convert", help="SRN's TensorFlow checkpoint (its prefix) to .safetensors")
    convert.add_argument(
        "source", type=Path, metavar="SRC", help="the checkpoint prefix, e.g. color/deblur.model-523000"
    )
    convert.add_argument("-o", "--output", type=Path, required=True, metavar="DST", help="the .safetensors to write")
    convert.add_argument("--overwrite", action="store_true", help="replace DST if it exists")


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "fetch": _fetch, "convert": _convert}[args.action](args)


def _list(args: argparse.Namespace) -> int:
    from .. import hub

    print(f"cache: {hub.cache_root() / 'weights'} (${hub.CACHE_VARIABLE}); mirror: ${hub.MIRROR_VARIABLE}")
    for entry in hub.CATALOGUE.values():
        size = f"{entry.size:,} bytes" if entry.size else "size not published"
        digest = entry.sha256 or "sha256 not published (recorded at the first verified fetch)"
        state = "fetched" if hub.is_cached(entry.name) else "not fetched"
        print(f"\n{entry.name}  {entry.title} ({entry.task}; {entry.architecture})  [{state}]")
        print(f"  file:    {entry.file_name}, {size}; {digest}")
        print(f"  from:    {', '.join(source.describe() for source in entry.sources)}")
        if entry.elsewhere:
            print(f"  also:    {entry.elsewhere}")
        print(f"  page:    {entry.page}")
        print(f"  licence: {entry.license.title} [{entry.license.id}]: {entry.license.summary}")
        print(f"  paper:   {entry.paper}")
        if entry.note:
            print(f"  note:    {entry.note}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from .. import hub

    entries = [hub.get(name) for name in args.names]  # an unknown name is refused before any download
    for entry in entries:
        path = hub.fetch(entry.name, accept_license=args.accept_license)
        print(f"{entry.name}: {path} (sha256 {hub.recorded_sha256(entry.name)})")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .. import hub
    from ..checkpoint import load_model

    path = hub.convert_tf_checkpoint(args.source, args.output, overwrite=args.overwrite)
    model = load_model(path)
    print(f"{args.source} -> {path}: {model.architecture} {model.hparams}")
    return 0
