#!/usr/bin/env bash
# Issue 29's proxy suite, in the order the figures were produced (each step keeps the runs already recorded in
# docs/hitl/suite/*.json while the data, the images, the starting model and the recipe's code are unchanged, so an
# interrupted session resumes where it stopped):
#   1. decisions on val: the one-click recipe and the fixed plan at 3 min on every proxy;
#   2. the report on test, once: the same two runs;
#   3. the 20-min long references on test (the slowest part: 20 min a domain on 2 CPU cores).
# Usage: scripts/hitl_suite.sh [val|test|long] (default: all three). CPU: runs at nice -5 so that other work on the
# machine takes less of the budget; the records say how many threads each run had.
set -euo pipefail
cd "$(dirname "$0")/.."
export TORCH_HOME="${TORCH_HOME:-$PWD/.torch}" OMP_WAIT_POLICY=PASSIVE
mkdir -p "$TORCH_HOME/hub/checkpoints"
cp -n ../shared/weights/mobilenet_v2-b0353104.pth "$TORCH_HOME/hub/checkpoints/" 2>/dev/null || true
PY="${PYTHON:-.venv/bin/python}"
SUITE="${SUITE:-../shared/datasets}"
OUT="${OUT:-docs/hitl/suite}"
step="${1:-all}"
if [[ $step == val || $step == all ]]; then
  nice -n -5 "$PY" -m bench hitl --suite "$SUITE" --split val --budgets 3 --long-minutes 0 --out-dir "$OUT"
fi
if [[ $step == test || $step == all ]]; then
  nice -n -5 "$PY" -m bench hitl --suite "$SUITE" --split test --budgets 3 --long-minutes 0 --out-dir "$OUT"
fi
if [[ $step == long || $step == all ]]; then
  for d in ${LONG_ORDER:-isbi2012_membrane drive crackforest jsrt_scr car_parts}; do
    nice -n -5 "$PY" -m bench hitl --suite "$SUITE" --only "$d" --split test --budgets 3 --long-minutes 20 --out-dir "$OUT"
  done
  nice -n -5 "$PY" -m bench hitl --suite "$SUITE" --split test --budgets 3 --long-minutes 20 --out-dir "$OUT"  # the table
fi
