#!/usr/bin/env bash
# Reproduces the bundled membrane model resources/models/isbi2012_unet.*
# U-Net (base width 16, depth 4, random init) on the 20 ISBI-2012 train slices, selected on the 5 val slices,
# reported on the 5 test slices. Augmentation as in Ronneberger et al. 2015: flips, rotation, elastic deformation.
# CPU, 2 threads: ~1.5-2.5 s a step (batch 4, 256x256 crops; 80 epochs = 400 steps). Re-run with RESUME=1 to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m segstudio train \
  --data ../shared/datasets/isbi2012_membrane --model unet --model-arg base_channels=16 \
  --epochs "${EPOCHS:-80}" --batch-size 4 --lr 2e-3 --crop-size 256,256 --scale-range 0.8,1.25 \
  --vflip --rotate 180 --elastic 30 --jitter 0.2 \
  --val-every 10 --seed 0 -o runs/isbi_unet ${RESUME:+--resume}
python -m segstudio evaluate --data ../shared/datasets/isbi2012_membrane --split test \
  --checkpoint runs/isbi_unet/model.safetensors -o runs/isbi_unet/test_metrics.json
python scripts/export_bundled.py runs/isbi_unet/model.safetensors isbi2012_unet \
  --command "scripts/train_isbi_unet.sh" \
  --data-note "ISBI-2012 EM membranes (Arganda-Carreras et al. 2015; Cardona et al. 2010; as packaged in zhixuhao/unet, MIT), train slices 00-19, selected on val 20-24, see ../shared/datasets/isbi2012_membrane/SOURCE.md"
