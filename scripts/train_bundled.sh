#!/usr/bin/env bash
# Trains the three bundled models (denoise, deblur, derain) side by side on one machine, each within the time
# budget of its config (bundled-<task>.yaml), then copies their weights and logs to OUT_DIR.
#   scripts/train_bundled.sh TRAIN_DIR VAL_DIR OUT_DIR [--set KEY=VALUE ...]
# e.g. scripts/train_bundled.sh ../shared/data/train/bsds432 ../shared/data/val/mcmaster18 out
set -uo pipefail
train_dir=$1 val_dir=$2 out_dir=$3
shift 3
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
mkdir -p "$out_dir"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
pids=()
for task in denoise deblur derain; do
  python3 -m mprnet train "bundled-$task" --set "data.clean_dir=$train_dir" --set "val.dir=$val_dir" \
    --set "out_dir=$out_dir/run-$task" "$@" >"$out_dir/$task.out" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for task in denoise deblur derain; do
  echo "== $task"; tail -n 3 "$out_dir/$task.out"
  cp "$out_dir/run-$task/best.safetensors" "$out_dir/${task}_best.safetensors" 2>/dev/null
  cp "$out_dir/run-$task/log.jsonl" "$out_dir/${task}_log.jsonl" 2>/dev/null
done
exit $status
