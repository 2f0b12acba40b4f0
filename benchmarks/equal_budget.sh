#!/usr/bin/env bash
# Equal-budget comparison of the paper's network with the seed notebook's U-Net (Shah et al. 2021
# compare SR-REDSIM with a U-Net too). Both train for the same wall-clock minutes, one after the
# other on the same idle machine, on the same simulated data (exact ground-truth target), then
# benchmarks/quality.py scores them on the held-out light series next to widefield and classical.
#   bash benchmarks/equal_budget.sh WORKDIR [MINUTES]      (default 30 minutes per network)
# Writes benchmarks/results/equal_budget.md/.csv. Keep the machine otherwise idle while it runs:
# the budget is wall-clock time.
set -euo pipefail
work=${1:?usage: equal_budget.sh WORKDIR [MINUTES]}
minutes=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
python -m srredsim.recipes training-data "$work/data" --count 600 --val-count 16 --targets truth --truth-blur 0
for net in unet sr_redsim; do
  srredsim train "$work/data/truth" --out "$work/$net" --config "$here/equal_budget/$net.yaml" \
    --set "train.max_minutes=$minutes"
done
steps() { python -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(len(r))" "$1/history.csv"; }
note="Equal budget: each network trained ${minutes} wall-clock minutes on $(nproc) CPU cores on the same 600 simulated \
128^2 stacks (exact-truth target, 64^2 patches, batch 8, 40 steps per epoch; benchmarks/equal_budget/*.yaml): \
U-Net $(steps "$work/unet") epochs, SR-REDSIM (64 filters) $(steps "$work/sr_redsim") epochs; best validation epoch kept."
python "$here/quality.py" --no-shipped --no-ceiling --model "U-Net=$work/unet" --model "SR-REDSIM=$work/sr_redsim" \
  --note "$note" --out "$here/results/equal_budget.md"
