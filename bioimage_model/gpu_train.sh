#!/usr/bin/env bash
# Train the default model and the three training-target probes on one GPU machine.
#
# The GPU machine has JAX but no TensorFlow, so Keras runs on its JAX backend; the weights
# (.weights.h5, saved by layer name) load unchanged into the TensorFlow backend here.
# Usage (repository root, wheels of keras/pydantic/optree for the machine's Python in .whl/):
#   OUT=/some/dir MINUTES=6 COUNT=2400 WORKERS=16 bash bioimage_model/gpu_train.sh
# Writes to $OUT: gpu.txt, main.tar (run folder of the 64-filter model), probes.tar (three
# 32-filter runs, one per target), logs.tar.
set -uo pipefail
OUT=${OUT:?set OUT}
MINUTES=${MINUTES:-6}
COUNT=${COUNT:-2400}
WORKERS=${WORKERS:-16}
SIZE=${SIZE:-128}
WORK=${WORK:-/tmp/srredsim-gpu}
PROBE_TARGETS=${PROBE_TARGETS-"truth bandlimited classical"}
DATA_TARGETS=${DATA_TARGETS:-truth,bandlimited,classical}
TRUTH_BLUR=${TRUTH_BLUR:-1.0}
MAIN_CONFIG=${MAIN_CONFIG:-bioimage_model/training_config.yaml}
MAIN_ARGS=${MAIN_ARGS:-}   # e.g. "--init-from .gpu_init/weights_best.weights.h5 --learning-rate 2e-4"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
mkdir -p "$WORK" "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())" 2>&1
  nproc; } > "$OUT/gpu.txt"
cat "$OUT/gpu.txt"

start=$(date +%s)
python3 -m srredsim.recipes training-data "$WORK/data" --recipe "${RECIPE:-bio}" --count "$COUNT" --val-count 32 --size "$SIZE" \
  --workers "$WORKERS" --targets "$DATA_TARGETS" --truth-blur "$TRUTH_BLUR" 2> "$WORK/data.log" \
  || { tail -20 "$WORK/data.log"; exit 1; }
echo "data: $(( $(date +%s) - start )) s"; cat "$WORK/data/recipe.json"

hard=$(python3 -c "print(int(60 * ($MINUTES + 1.5)))")
pids=()
timeout -s INT "$hard" python3 -m srredsim train "$WORK/data/truth" --out "$WORK/main" \
  --config "$MAIN_CONFIG" --set train.max_minutes="$MINUTES" $MAIN_ARGS > "$WORK/main.log" 2>&1 &
main_pid=$!
for t in $PROBE_TARGETS; do
  timeout -s INT "$hard" python3 -m srredsim train "$WORK/data/$t" --out "$WORK/probe_$t" \
    --config bioimage_model/probe_config.yaml --set train.max_minutes="$MINUTES" \
    --set "metadata.training_data=probe, target $t" > "$WORK/probe_$t.log" 2>&1 &
  pids+=($!)
done
# fail fast: if the main run dies early, stop everything so the call can be retried
while kill -0 "$main_pid" 2>/dev/null; do
  sleep 10
  if ! kill -0 "$main_pid" 2>/dev/null; then break; fi
done
wait "$main_pid"; rc=$?
echo "main exit $rc after $(( $(date +%s) - start )) s"; tail -5 "$WORK/main.log"
if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$rc" -ne 124 ]; then
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
fi
wait
tar -C "$WORK" -cf "$OUT/main.tar" --exclude backup main
tar -C "$WORK" -cf "$OUT/probes.tar" --exclude backup --exclude 'weights_last*' $(cd "$WORK" && ls -d probe_* 2>/dev/null)
tar -C "$WORK" -cf "$OUT/logs.tar" main.log $(cd "$WORK" && ls probe_*.log 2>/dev/null) data.log data/recipe.json
ls -la "$OUT"
