#!/usr/bin/env bash
# Retrain the shipped models sim-3x5 and sim-3x3 (the curriculum that makes SR-REDSIM use the
# illumination pattern; bioimage_model/README.md says why each stage exists) and red-fairsim (a RED-Net
# on the classical reconstructions of the same data), and build their bioimage.io packages.
#
#   bash bioimage_model/retrain.sh WORKDIR [WORKERS]
#
# As it ran for the shipped models: 2 CPU cores (AMD EPYC, AVX512-BF16: bf16 training), all
# stages on a 32-filter, depth-5 SR-REDSIM, about 3 hours of training in all (the epochs below are
# the ones that ran; stages 2-3 ran two at a time on the 2 cores). FULL=1 adds stage 4: the full SR-REDSIM (64 filters, depth 10) grown
# from the 3x5 model with the same function (srredsim.grow) and trained on (a GPU job).
set -euo pipefail
W=${1:?usage: retrain.sh WORKDIR [WORKERS]}
WORKERS=${2:-$(nproc)}
mkdir -p "$W"
DATA="python -m srredsim.recipes training-data"
SMALL="--filters 32 --depth 5 --set train.tensorboard=false"
CFG=bioimage_model/sim_config.yaml
THREE="--set optics.phases=3 --set model.in_channels=9"

# ---- data (3000 + 48 validation stacks of 96^2 per set; target: the truth inside the SIM support)
[ -d "$W/probe" ] || python bioimage_model/make_probe_data.py "$W/probe" 1200
[ -d "$W/easy" ] || $DATA "$W/easy" --recipe sim-easy --phases 5 --count 3000 --test-count 48 --size 96 \
  --targets support --workers "$WORKERS"
[ -d "$W/sim5" ] || $DATA "$W/sim5" --recipe sim --phases 5 --count 3000 --test-count 48 --size 96 \
  --targets support --workers "$WORKERS"
[ -d "$W/sim3" ] || $DATA "$W/sim3" --recipe sim --phases 3 --count 3000 --test-count 48 --size 96 \
  --targets support --workers "$WORKERS"

# ---- stage 0: one pattern |k|, strong modulation, plenty of light: the network finds the demodulation
[ -f "$W/stage0/weights_best.weights.h5" ] || srredsim train "$W/probe" -o "$W/stage0" --config "$CFG" $SMALL \
  --epochs 12 --learning-rate 0.001
# ---- stage 1: the sim-easy recipe (any orientation, |k| 0.75-0.95, modulation 0.6-0.95, 50-1000 photons)
[ -f "$W/stage1/weights_best.weights.h5" ] || srredsim train "$W/easy/support" -o "$W/stage1" --config "$CFG" $SMALL \
  --epochs 11 --learning-rate 0.001 --init-from "$W/stage0"
# ---- stage 2: the full sim recipe (|k| 0.70-0.98, modulation 0.2-0.95, 1-1000 photons, aberrations, ...)
[ -f "$W/stage2_3x5/weights_best.weights.h5" ] || srredsim train "$W/sim5/support" -o "$W/stage2_3x5" --config "$CFG" \
  $SMALL --epochs 6 --learning-rate 0.0005 --init-from "$W/stage1"
[ -f "$W/stage2_3x3/weights_best.weights.h5" ] || srredsim train "$W/sim3/support" -o "$W/stage2_3x3" --config "$CFG" \
  $SMALL $THREE --epochs 6 --learning-rate 0.0005 --init-from "$W/stage1"   # 15 -> 9 frames: srredsim.layouts
# ---- stage 3: 15 % pattern-free pairs (data.widefield_fraction): no pattern, no detail beyond widefield
[ -f "$W/stage3_3x5/weights_best.weights.h5" ] || srredsim train "$W/sim5/support" -o "$W/stage3_3x5" --config "$CFG" \
  $SMALL --epochs 22 --learning-rate 0.0005 --set data.widefield_fraction=0.15 --init-from "$W/stage2_3x5"
[ -f "$W/stage3_3x3/weights_best.weights.h5" ] || srredsim train "$W/sim3/support" -o "$W/stage3_3x3" --config "$CFG" \
  $SMALL $THREE --epochs 22 --learning-rate 0.0005 --set data.widefield_fraction=0.15 --init-from "$W/stage2_3x3"
# ---- stage 3b: 30 % pattern-free pairs, constant learning rate; the last weights are kept (the
# validation loss is flat within its noise here, the pattern-removed control still improves).
# 3x3: 55 minutes (29 epochs, sharing the cores with another training); its held-out control rose
# from +1.88 to +3.06 dB (bioimage_model/README.md)
if [ ! -f "$W/sim-3x3/weights_best.weights.h5" ]; then
  srredsim train "$W/sim3/support" -o "$W/sim-3x3" --config "$CFG" $SMALL $THREE --epochs 29 --learning-rate 0.0003 \
    --set train.reduce_lr_on_plateau=false --set data.widefield_fraction=0.3 --init-from "$W/stage3_3x3"
  cp "$W/sim-3x3/weights_last.weights.h5" "$W/sim-3x3/weights_best.weights.h5"
fi
if [ ! -f "$W/sim-3x5/weights_best.weights.h5" ]; then
  srredsim train "$W/sim5/support" -o "$W/sim-3x5" --config "$CFG" $SMALL --epochs 24 --learning-rate 0.0003 \
    --set train.reduce_lr_on_plateau=false --set data.widefield_fraction=0.3 --init-from "$W/stage3_3x5"
  cp "$W/sim-3x5/weights_last.weights.h5" "$W/sim-3x5/weights_best.weights.h5"
fi
# ---- stage 4 (FULL=1): the paper's size, grown from the small network (same function at step 0)
if [ "${FULL:-0}" = 1 ]; then
  srredsim train "$W/sim5/support" -o "$W/sim-3x5-full" --config "$CFG" --set data.widefield_fraction=0.15 \
    --learning-rate 0.0002 --init-from "$W/sim-3x5"
fi

# ---- RED-fairSIM (the paper's second method): the classical reconstructions of both sets, then a RED-Net
[ -d "$W/red_pairs" ] || python -m srredsim.redfairsim pairs -o "$W/red_pairs" "$W/sim5/support" "$W/sim3/support" \
  --workers "$WORKERS"
# MSE first (lr 1e-3 halved on plateaus; the shipped run was stopped after 34 epochs, ~55 min sharing
# the cores), then mean absolute error from its weights: MSE's posterior mean smoothed the finest
# resolved pairs away (160 nm dip visibility 0.10 vs classical's 0.20); MAE kept them (0.27) and
# scored higher (bioimage_model/README.md)
[ -f "$W/red_mse/weights_best.weights.h5" ] || srredsim train "$W/red_pairs" -o "$W/red_mse" \
  --config bioimage_model/red_fairsim_config.yaml --set train.tensorboard=false --epochs 34
[ -f "$W/red_mae/weights_best.weights.h5" ] || srredsim train "$W/red_pairs" -o "$W/red_mae" \
  --config bioimage_model/red_fairsim_config.yaml --set train.tensorboard=false --set train.loss=mae \
  --learning-rate 0.0003 --epochs 47 --init-from "$W/red_mse"
# Two MAE continuations at lr 1.5e-4: 30 epochs constant, then halved on plateaus (seed 3). They lifted
# the 140 nm pairs' dip visibility from 0.11-0.13 to 0.16 at 20 and 200 photons (issue 15's "<= 140 nm
# at 20 photons") at equal PSNR. The shipped weights are the second run's best after 21 epochs (epoch
# 12); that run, continued to epoch 27, scored 0.15 (just under the threshold) and +0.2 dB.
[ -f "$W/red_mae2/weights_best.weights.h5" ] || srredsim train "$W/red_pairs" -o "$W/red_mae2" \
  --config bioimage_model/red_fairsim_config.yaml --set train.tensorboard=false --set train.loss=mae \
  --learning-rate 0.00015 --set train.reduce_lr_on_plateau=false --epochs 30 --init-from "$W/red_mae"
[ -f "$W/red-fairsim/weights_best.weights.h5" ] || srredsim train "$W/red_pairs" -o "$W/red-fairsim" \
  --config bioimage_model/red_fairsim_config.yaml --set train.tensorboard=false --set train.loss=mae \
  --learning-rate 0.00015 --seed 3 --epochs 21 --init-from "$W/red_mae2"

# ---- controls, packages, validation
python benchmarks/sim_information.py --no-shipped --model "sim-3x5=$W/sim-3x5" --model "sim-3x3=$W/sim-3x3" \
  --model "red-fairsim=$W/red-fairsim" --output "$W/sim_information.md"
srredsim export "$W/red-fairsim" --format bioimageio -o "$W/red-fairsim.bioimageio.zip" --overwrite
srredsim validate "$W/red-fairsim.bioimageio.zip" --jvm --deepimagej | tee "$W/validation-red-fairsim.txt"
for L in 3x5 3x3; do
  srredsim export "$W/sim-$L" --format bioimageio -o "$W/sr-redsim-sim-$L.bioimageio.zip" --overwrite
  srredsim validate "$W/sr-redsim-sim-$L.bioimageio.zip" --jvm --deepimagej | tee "$W/validation-sim-$L.txt"
done
