#!/usr/bin/env bash
# Reproduces the embedded default model segstudio/resources/models/camvid_deeplabv3plus_mobilenetv2.*
# in one command, straight through: DeepLab v3+ / MobileNetV2 (ImageNet init from ../shared/weights) on CamVid
# train, 24 epochs of one poly schedule, the checkpoint selected on val, exported as float16.
# CPU, 2 threads: ~0.8 s a step (batch 8, 180x240 crops, torch 2.14; measured 2026-12-05), 1080 steps, ~18 min in all
# on an idle machine (2.2 s a step when it was written).
# Measured 2026-12-05: this recipe straight through (`scripts/camvid_recipe.py ablate base`, validated every 4
# epochs: 41.0 / 51.5 / 59.0 / 57.5 / 59.4 / 59.7) selects 59.7 val mIoU, not the shipped weights' 63.3: their mixed
# schedule and the checkpoint picked on val are worth ~3.6 points, and epoch-to-epoch val noise is ~2 points.
#
# The recipe is fixed here (no EPOCHS override): the weights shipped on 2026-11-23 came from a run started for
# 40 epochs, stopped after epoch 3 and resumed with 24, so its first 3 epochs followed the 40-epoch schedule
# (see the card's notes). That mix is what this script prevents:
#   * a fresh run refuses to start in a run folder that already holds a run (move it away, or set RUN=...);
#   * RESUME=1 continues an interrupted run of this script from $RUN/last.* only when the recipe saved there
#     (last.json) is exactly the one below.
# Environment: RUN (run folder, default runs/camvid_default), PYTHON (default python), RESUME=1.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${RUN:-runs/camvid_default}"
PYTHON="${PYTHON:-python}"
export TORCH_HOME="${TORCH_HOME:-$PWD/.torch}"
mkdir -p "$TORCH_HOME/hub/checkpoints"
cp -n ../shared/weights/mobilenet_v2-b0353104.pth "$TORCH_HOME/hub/checkpoints/" 2>/dev/null || true

EPOCHS=24 BATCH=8 LR=1e-3 CROP=180,240 SCALE=0.5,1.25 VAL_EVERY=5 SEED=0
if [[ -n "${RESUME:-}" ]]; then
  [[ -f "$RUN/last.json" ]] || { echo "RESUME=1: $RUN has no last.json to resume" >&2; exit 2; }
  "$PYTHON" - "$RUN/last.json" "$EPOCHS" "$BATCH" "$LR" "$CROP" "$SCALE" "$VAL_EVERY" "$SEED" <<'EOF'
import json, sys
path, epochs, batch, lr, crop, scale, val_every, seed = sys.argv[1:]
saved = json.load(open(path)).get("training", {}).get("config", {})
want = {"epochs": int(epochs), "batch_size": int(batch), "lr": float(lr),
        "crop_size": [int(v) for v in crop.split(",")], "scale_range": [float(v) for v in scale.split(",")],
        "val_every": int(val_every), "seed": int(seed), "max_steps": None}
diff = {k: (saved.get(k), v) for k, v in want.items() if saved.get(k) != v}
if diff:
    sys.exit(f"RESUME=1: {path} was trained with another recipe {diff} (saved, this script); resuming would mix "
             "two schedules. Start a fresh run instead (move the run folder away).")
EOF
elif [[ -e "$RUN" ]] && [[ -n "$(ls -A "$RUN" 2>/dev/null)" ]]; then
  echo "$RUN already holds a run: move it away (or set RUN=another/folder) for a fresh run, or RESUME=1 to continue it" >&2
  exit 2
fi

"$PYTHON" -m segstudio train \
  --data ../shared/datasets/camvid --model deeplabv3plus --encoder mobilenet_v2 --output-stride 16 \
  --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" --crop-size "$CROP" --scale-range "$SCALE" \
  --val-every "$VAL_EVERY" --seed "$SEED" -o "$RUN" ${RESUME:+--resume}
# Ship the best checkpoint as float16 (halves the file, < 10 MB). This rewrites the bundled .safetensors, .json
# and .md card (the card's hand-written notes are not kept: add them back from git).
"$PYTHON" scripts/export_bundled.py "$RUN/model.safetensors" camvid_deeplabv3plus_mobilenetv2 \
  --command "scripts/train_default_camvid.sh" \
  --data-note "CamVid train (367 images, 11 classes, SegNet's 480x360 version; Brostow et al. 2008/2009, research use, see ../shared/datasets/camvid/SOURCE.md); model selected on CamVid val (101 images)"
