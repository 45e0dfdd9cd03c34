#!/usr/bin/env bash
# Trains bundled models side by side on one machine, each within the time budget of its config, then copies their
# best weights and logs to OUT_DIR as <config>_best.safetensors and <config>_log.jsonl.
#   scripts/train_bundled.sh TRAIN_DIR VAL_DIR OUT_DIR [CONFIG ...] [-- --set KEY=VALUE ...]
# CONFIG defaults to the three MPRNet models (bundled-denoise bundled-deblur bundled-derain); the same-budget peers
# of the study are nafnet-denoise-cpu mimo-unet-deblur-cpu srn-deblur-cpu did-mdn-derain-cpu. Settings after `--`
# apply to every run, e.g.
#   scripts/train_bundled.sh ../shared/data/train/bsds432 ../shared/data/val/mcmaster18 out -- --set time_budget_s=600
set -uo pipefail
train_dir=$1 val_dir=$2 out_dir=$3
shift 3
configs=()
while (($#)) && [[ $1 != -- ]]; do configs+=("$1"); shift; done
(($#)) && shift
((${#configs[@]})) || configs=(bundled-denoise bundled-deblur bundled-derain)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
mkdir -p "$out_dir"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
pids=()
for config in "${configs[@]}"; do
  python3 -m mprnet train "$config" --set "data.clean_dir=$train_dir" --set "val.dir=$val_dir" \
    --set "out_dir=$out_dir/run-$config" "$@" >"$out_dir/$config.out" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for config in "${configs[@]}"; do
  echo "== $config"; tail -n 3 "$out_dir/$config.out"
  cp "$out_dir/run-$config/best.safetensors" "$out_dir/${config}_best.safetensors" 2>/dev/null
  cp "$out_dir/run-$config/log.jsonl" "$out_dir/${config}_log.jsonl" 2>/dev/null
done
exit $status
