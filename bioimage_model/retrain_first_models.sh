#!/usr/bin/env bash
# Retrain the FIRST models (default/faithful of release 0.1, bio recipe; they fail the pattern-removed control, see docs/sim_information.md) (needs a GPU to finish in minutes:
# 8.4 min on one H200; on 2 CPU cores expect about a day). Keras uses TensorFlow by default;
# on a machine with JAX but no TensorFlow, set KERAS_BACKEND=jax.
#   bash bioimage_model/retrain_first_models.sh WORKDIR [WORKERS]
set -euo pipefail
work=${1:?usage: retrain.sh WORKDIR [WORKERS]}
workers=${2:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
# stage 1 -> the 'faithful' model: target = ground truth blurred by 1 fine pixel (20 nm)
python -m srredsim.recipes training-data "$work/data1" --recipe bio --count 2000 --val-count 32 --targets truth --truth-blur 1 --workers "$workers"
srredsim train "$work/data1/truth" --out "$work/faithful" --config "$here/training_config.yaml"
# stage 2 -> the 'default' model: fine-tuned toward the exact ground truth
python -m srredsim.recipes training-data "$work/data2" --recipe bio --count 1500 --val-count 32 --targets truth --truth-blur 0 --workers "$workers"
srredsim train "$work/data2/truth" --out "$work/default" --config "$here/finetune_config.yaml" --init-from "$work/faithful"
# the bioimage.io package, validated
srredsim export "$work/default" --format bioimageio -o "$work/sr-redsim-default.bioimageio.zip"
srredsim validate "$work/sr-redsim-default.bioimageio.zip"
