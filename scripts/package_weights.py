"""Put a trained run's weights into the package as a bundled model: fp16 `.safetensors` with its card's facts.

Usage:
    python scripts/package_weights.py RUN/best.safetensors NAME --summary "..." --hardware "..." --wall-time "..."
"""

from __future__ import annotations

import argparse

from mprnet.checkpoint import BUNDLED_DIR, resave_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights")
    parser.add_argument("name", help="bundled model name, e.g. denoise")
    parser.add_argument("--summary", required=True, help="the card's one-line summary")
    parser.add_argument("--hardware", required=True)
    parser.add_argument("--wall-time", required=True)
    parser.add_argument("--command", required=True, help="the command that trained it")
    args = parser.parse_args()
    path = resave_weights(
        args.weights,
        BUNDLED_DIR / f"{args.name}.safetensors",
        name=args.name,
        summary=args.summary,
        hardware=args.hardware,
        wall_time=args.wall_time,
        command=args.command,
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
