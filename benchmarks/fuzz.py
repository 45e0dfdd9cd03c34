"""A long fuzzing run: the properties of tests/test_fuzz.py (mutated images and checkpoints through the reader, the
loader, the command line and the HTTP endpoint) with many more examples and a fresh random seed each run.

Usage: python benchmarks/fuzz.py [EXAMPLES_PER_TARGET]   (default 2000)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "2000"
    environment = {**os.environ, "MPRNET_FUZZ_EXAMPLES": examples}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(ROOT / "tests" / "test_fuzz.py"),
        "--hypothesis-show-statistics",
    ]
    return subprocess.call(command, cwd=ROOT, env=environment)


if __name__ == "__main__":
    sys.exit(main())
