#!/usr/bin/env bash
# One GPU slot, prepared: trains the given configs side by side (scripts/train_bundled.sh) on the photos carried in
# .data/ (bsds432/ to train, val6/ to validate), then leaves in OUT_DIR what must come back: each run's best weights
# in fp16 (<config>.safetensors, under the 16 MiB a returned file may have) and one archive of every log.
#   scripts/device_slot.sh OUT_DIR CONFIG ... [-- --set KEY=VALUE ...]
# e.g. the study's same-budget peers in one 10-minute call:
#   scripts/device_slot.sh "$OUT" nafnet-denoise-cpu mimo-unet-deblur-cpu srn-deblur-cpu did-mdn-derain-cpu
set -uo pipefail
out_dir=$1
shift
work=${SLOT_WORK:-/tmp/slot}
scripts/train_bundled.sh .data/bsds432 .data/val6 "$work" "$@"
status=$?
configs=()
while (($#)) && [[ $1 != -- ]]; do configs+=("$1"); shift; done
mkdir -p "$out_dir"
for config in "${configs[@]}"; do
  [[ -f $work/${config}_best.safetensors ]] || continue
  python3 -c 'import sys; from mprnet.checkpoint import resave_weights; resave_weights(*sys.argv[1:])' \
    "$work/${config}_best.safetensors" "$out_dir/$config.safetensors" || status=1
done
tar -czf "$out_dir/logs.tar.gz" -C "$work" $(cd "$work" && ls -- *.out *_log.jsonl 2>/dev/null)
ls -l "$out_dir"
exit $status
