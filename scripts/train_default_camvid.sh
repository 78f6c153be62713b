#!/usr/bin/env bash
# Reproduces the embedded default model segstudio/resources/models/camvid_deeplabv3plus_mobilenetv2.*
# DeepLab v3+ / MobileNetV2 (ImageNet init from ../shared/weights) on CamVid train, selected on val.
# CPU, 2 threads: ~2.2 s a step (batch 8, 180x240 crops), ~45 min in all on an idle machine.
# Re-run with RESUME=1 to continue an interrupted run from runs/camvid_default/last.*.
set -euo pipefail
cd "$(dirname "$0")/.."
export TORCH_HOME="${TORCH_HOME:-$PWD/.torch}"
mkdir -p "$TORCH_HOME/hub/checkpoints"
cp -n ../shared/weights/mobilenet_v2-b0353104.pth "$TORCH_HOME/hub/checkpoints/" 2>/dev/null || true
python -m segstudio train \
  --data ../shared/datasets/camvid --model deeplabv3plus --encoder mobilenet_v2 --output-stride 16 \
  --epochs "${EPOCHS:-24}" --batch-size 8 --lr 1e-3 --crop-size 180,240 --scale-range 0.5,1.25 \
  --val-every 5 --seed 0 -o runs/camvid_default ${RESUME:+--resume}
# Ship the best checkpoint as float16 (halves the file, < 10 MB):
python scripts/export_bundled.py runs/camvid_default/model.safetensors camvid_deeplabv3plus_mobilenetv2 \
  --command "scripts/train_default_camvid.sh" \
  --data-note "CamVid train (367 images, 11 classes, SegNet's 480x360 version; Brostow et al. 2008/2009, research use, see ../shared/datasets/camvid/SOURCE.md); model selected on CamVid val (101 images)"
