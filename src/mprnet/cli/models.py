"""`mprnet models`: the models shipped inside the package, with their cards' one-line summaries."""

from __future__ import annotations

import argparse

HELP = "list the bundled models with a one-line summary of each (its card is the .md file beside the weights)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cards", action="store_true", help="print each model card in full")


def run(args: argparse.Namespace) -> int:
    import textwrap

    from ..checkpoint import BUNDLED_MODELS_TRUTH, bundled_models, read_metadata

    models = bundled_models()
    if not models:
        print("no bundled models in this installation")
        return 1
    for name, path in models.items():
        metadata = read_metadata(path)
        card = path.with_suffix(".md")
        print(f"{name:10} {metadata.get('architecture', '?'):8} {metadata.get('summary', '')}")
        if args.cards and card.exists():
            print(card.read_text())
    print("\n" + textwrap.fill(BUNDLED_MODELS_TRUTH, 100))
    return 0
