"""`mprnet inspect`: what the degradation classifier finds in each photo (what `restore --task auto` would do),
without restoring anything."""

from __future__ import annotations

import argparse
import json
import sys

from ..batch import find_images
from ..errors import MprnetError
from ..io import DEFAULT_MAX_PIXELS, read_image

HELP = "tell what is wrong with photos (clean, noise, blur, rain) and how sure, as restore --task auto decides"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-r", "--recursive", action="store_true", help="also look in sub-folders")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file instead of a line")


def run(args: argparse.Namespace) -> int:
    from ..diagnose import diagnose

    sources = find_images(args.inputs, args.recursive, warn=_warn)
    if not sources:
        raise MprnetError(f"no image found in {', '.join(args.inputs)}")
    failed = 0
    for source in sources:
        try:
            diagnosis = diagnose(read_image(source, max_pixels=DEFAULT_MAX_PIXELS).pixels)
        except MprnetError as error:
            print(f"mprnet inspect: {error if str(source) in str(error) else f'{source}: {error}'}", file=sys.stderr)
            failed += 1
            continue
        print(
            json.dumps({"input": str(source), **diagnosis.record()})
            if args.json
            else f"{source}: {diagnosis.summary()}"
        )
    return 1 if failed else 0


def _warn(note: str) -> None:
    print(f"mprnet inspect: {note}", file=sys.stderr)
