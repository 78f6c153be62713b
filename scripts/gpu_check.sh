#!/usr/bin/env bash
# Issue 33: one prepared GPU check that fits a single <= 8-minute run on a GPU machine.
#
#   python scripts/make_gpu_subset.py          # here, once: gpu_subset/ (gitignored, ~25 MiB) travels with the tree
#   scripts/gpu_check.sh                       # on the GPU machine (carry gpu_subset); results: docs/gpu/<stamp>/
#   scripts/gpu_check.sh --dry-run             # anywhere: every step on the CPU for a few seconds (the plumbing)
#
# Steps, each under its own time limit (a step that overruns is killed and recorded; the next one still runs):
#   1. pytest -m cuda                                   (tests/test_cuda.py)
#   2. python -m bench predict_folder --device cuda     (plain loop, Predictor, batched pipeline; where the time goes)
#   3. python -m bench train_step --device cuda         (plain loop, Trainer with autocast, Trainer in float32)
#   4. python -m bench hitl --suite <subset> --budgets 1 --long-minutes 0 --no-fixed --split val  (HITL_ONLY proxies)
#   5. scripts/gpu_zoo.py: SegNet-Basic, simple CNN, U-Net, SegNet from scratch for ZOO_EPOCHS epochs on the subset
# Each step's JSON and log go to docs/gpu/<stamp>/ (and to $OUT/gpu/ when $OUT is set); summary.json lists the steps
# with exit code and seconds. Env: PYTHON (python3), SEGSTUDIO_GPU_SUBSET (gpu_subset), ZOO_EPOCHS (30),
# HITL_ONLY (drive: one proxy fits the time), GPU_CHECK_LIMITS ("90 90 60 100 120": seconds for steps 1-5).
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
PY="${PYTHON:-python3}"
SUBSET="${SEGSTUDIO_GPU_SUBSET:-gpu_subset}"
if [ ! -d "$SUBSET/datasets/camvid" ]; then
  echo "no $SUBSET/datasets/camvid: run 'python scripts/make_gpu_subset.py' first (and carry $SUBSET)" >&2
  exit 2
fi
export SEGSTUDIO_SHARED="$(cd "$SUBSET" && pwd)" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TORCH_HOME="${TORCH_HOME:-$PWD/.torch}"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
if [ "$DRY" = 1 ]; then
  DEV=cpu; RES="${GPU_CHECK_OUT:-/tmp/segstudio-gpu-check-dry-$STAMP}"
  read -r L1 L2 L3 L4 L5 <<< "${GPU_CHECK_LIMITS:-60 60 60 60 150}"
  export SEGSTUDIO_BENCH_IMAGES=4 SEGSTUDIO_BENCH_ROUNDS=1 SEGSTUDIO_BENCH_ONNX=0 SEGSTUDIO_BENCH_STEPS=1 \
         SEGSTUDIO_BENCH_BATCH=2 SEGSTUDIO_BENCH_CROP=96 SEGSTUDIO_BENCH_WORKERS=0
  QUICK=--quick; ZOO_ARGS=(--epochs 1 --max-steps 2 --val-limit 2 --rows segnet_basic,simple_cnn); HITL_BUDGET=0.1
else
  DEV=cuda; RES="${GPU_CHECK_OUT:-docs/gpu/$STAMP}"
  read -r L1 L2 L3 L4 L5 <<< "${GPU_CHECK_LIMITS:-90 90 60 100 120}"
  export SEGSTUDIO_BENCH_IMAGES="${SEGSTUDIO_BENCH_IMAGES:-96}" SEGSTUDIO_BENCH_CHUNK="${SEGSTUDIO_BENCH_CHUNK:-32}" \
         SEGSTUDIO_BENCH_ROUNDS="${SEGSTUDIO_BENCH_ROUNDS:-1}" SEGSTUDIO_BENCH_WORKERS="${SEGSTUDIO_BENCH_WORKERS:-6}"
  QUICK=; ZOO_ARGS=(--epochs "${ZOO_EPOCHS:-30}" --time-limit $((L5 - 30))); HITL_BUDGET=1
fi
mkdir -p "$RES"
echo "gpu check: device $DEV, data $SEGSTUDIO_SHARED, results $RES"
"$PY" -c "import torch, json; print(json.dumps({'torch': torch.__version__, 'cuda': torch.cuda.is_available(), \
'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))" | tee "$RES/device.json"

STEPS=()
step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to $RES/NAME.log, remember rc and seconds
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$@" > "$RES/$name.log" 2>&1
  local rc=$?
  tail -n 15 "$RES/$name.log"
  echo "--- $name: exit $rc after $((SECONDS - t0))s"
  STEPS+=("{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0)), \"timed_out\": $([ $rc -eq 124 ] || [ $rc -eq 137 ] && echo true || echo false)}")
}

if [ "$DRY" = 1 ]; then  # no GPU: the cuda tests are deselected (pytest exits 5: "no tests ran"); collect them instead
  step pytest_cuda "$L1" "$PY" -m pytest -q -p no:cacheprovider -m cuda --collect-only tests/test_cuda.py
else
  step pytest_cuda "$L1" "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
fi
step bench_predict_folder "$L2" "$PY" -m bench predict_folder $QUICK --device "$DEV" --json "$RES/predict_folder.json"
step bench_train_step "$L3" "$PY" -m bench train_step $QUICK --device "$DEV" --json "$RES/train_step.json"
step bench_hitl "$L4" "$PY" -m bench hitl --suite "$SEGSTUDIO_SHARED/datasets" --only "${HITL_ONLY:-drive}" \
  --budgets "$HITL_BUDGET" --long-minutes 0 --no-fixed --split val --device "$DEV" --out-dir "$RES/hitl"
step zoo_from_scratch "$L5" "$PY" scripts/gpu_zoo.py --data "$SEGSTUDIO_SHARED/datasets/camvid" --device "$DEV" \
  --out "${TMPDIR:-/tmp}/segstudio-gpu-zoo" --json "$RES/zoo_from_scratch.json" "${ZOO_ARGS[@]}"

{
  echo "{\"device\": \"$DEV\", \"dry_run\": $([ "$DRY" = 1 ] && echo true || echo false), \"stamp\": \"$STAMP\","
  echo " \"subset\": $(cat "$SEGSTUDIO_SHARED/SUBSET.json" 2>/dev/null || echo null),"
  echo " \"steps\": [$(IFS=,; echo "${STEPS[*]}")]}"
} > "$RES/summary.json"
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT/gpu" && cp -r "$RES"/. "$OUT/gpu/"; fi
echo "results: $RES"
cat "$RES/summary.json"
