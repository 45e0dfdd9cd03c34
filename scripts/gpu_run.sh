#!/usr/bin/env bash
# The whole GPU run in one prepared call (scripts/gpu_run.py says what it trains and brings back), e.g.
#   scripts/gpu_run.sh "$OUT" bundled-deblur=4 bundled-denoise=2.5 bundled-derain=1.5
# with the photos packed first, here, by scripts/pack_device_data.py and carried as .data. The device's python3
# already holds torch and every package the project needs, so installing is putting src/ on the path and checking
# that they import. PYTHON names another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" -c 'import numpy, PIL, safetensors, scipy, skimage, tifffile, tqdm, yaml, torch' || {
  echo "gpu_run: a package the project needs is missing: carry it as a wheel (see the device tool's README)" >&2
  exit 2
}
exec "$python" scripts/gpu_run.py "$@"
