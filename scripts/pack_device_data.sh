#!/usr/bin/env bash
# Fills the ignored folder .data/ with the photos a GPU call trains on (scripts/device_slot.sh reads them there):
# the first PHOTOS training photos of ../shared/data/train/bsds432 and 6 validation photos of McMaster18, then
# prints what the call would carry against the device's 64 MiB limit (tracked files + .data).
#   scripts/pack_device_data.sh [PHOTOS]    (default: as many as fit, leaving 2 MiB spare)
set -euo pipefail
cd "$(dirname "$0")/.."
train=../shared/data/train/bsds432 val=../shared/data/val/mcmaster18
limit=$((64 * 1024 * 1024)) spare=$((2 * 1024 * 1024))
tracked=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
rm -rf .data && mkdir -p .data/bsds432 .data/val6
ls "$val" | head -n 6 | while read -r name; do cp "$val/$name" .data/val6/; done
used=$((tracked + $(du -sb .data/val6 | cut -f1)))
count=0
for photo in "$train"/*; do
  size=$(stat -c %s "$photo")
  if [[ -n ${1:-} ]]; then ((count < $1)) || break; elif ((used + size > limit - spare)); then break; fi
  cp "$photo" .data/bsds432/
  used=$((used + size)) count=$((count + 1))
done
echo "packed $count of $(ls "$train" | wc -l) training photos; the call carries $((used / 1024 / 1024)) MiB of 64"
((used <= limit)) || { echo "too large for the device: pass fewer PHOTOS" >&2; exit 1; }
