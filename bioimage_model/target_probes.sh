#!/usr/bin/env bash
# Which training target makes a SIM network? Four small probes (probe_sim_config.yaml), one per
# target, trained from scratch for the same 1500 steps on the same stacks (the first curriculum stage of the SIM recipe), then
# measured with the standing controls (benchmarks/sim_information.py).
#   bash bioimage_model/target_probes.sh WORKDIR [WORKERS]
set -euo pipefail
work=${1:?usage: target_probes.sh WORKDIR [WORKERS]}
workers=${2:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$work/data" ] || python -m srredsim.recipes training-data "$work/data" --recipe sim-easy --count 3000 --val-count 48 \
  --size 96 --targets truth,bandlimited,classical,support --truth-blur 0 --workers "$workers"
for t in truth bandlimited classical support; do
  [ -f "$work/probe_$t/weights_best.weights.h5" ] && [ ! -d "$work/probe_$t/backup" ] && continue
  resume=""; [ -d "$work/probe_$t" ] && resume="--resume"
  srredsim train "$work/data/$t" --out "$work/probe_$t" --config "$here/probe_sim_config.yaml" $resume \
    --set "metadata.training_data=target probe, $t" --set train.tensorboard=false
done
python "$here/../benchmarks/sim_information.py" --no-shipped --model "probe truth=$work/probe_truth" \
  --model "probe bandlimited=$work/probe_bandlimited" --model "probe classical=$work/probe_classical" \
  --model "probe support=$work/probe_support" \
  --output "$here/target_probes.md"
