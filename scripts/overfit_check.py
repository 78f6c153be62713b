"""Can a random-init model fit 2 CamVid train images? A capacity / gradient-flow check, not a benchmark.

    python scripts/overfit_check.py [MODEL ...]     # default: segnet unet

Downscales the first 2 CamVid train images to 96x128, trains each model on them (AdamW lr 1e-3, batch 2,
200 steps, 1 thread) and prints the loss and the eval-mode pixel accuracy on those images every 50 steps.
A model that cannot reach ~100 % here has a bug (gradient flow, BN, unpooling), not a budget problem.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from segstudio.models import get_model
from segstudio.io import read_image, read_index_png
from segstudio.data.transforms import to_model_input
torch.manual_seed(0); torch.set_num_threads(1)
root = Path("../shared/datasets/camvid"); names = (root / "train.txt").read_text().split()[:2]
xs, ys = [], []
for n in names:
    img = cv2.resize(read_image(root / "images" / f"{n}.png"), (128, 96), interpolation=cv2.INTER_AREA)
    lab = cv2.resize(read_index_png(root / "masks" / f"{n}.png"), (128, 96), interpolation=cv2.INTER_NEAREST)
    x = to_model_input(img); xs.append(x[None] if x.dim() == 3 else x); ys.append(torch.from_numpy(lab.astype(np.int64))[None])
x, y = torch.cat(xs), torch.cat(ys)
for name in sys.argv[1:] or ("segnet", "unet"):
    torch.manual_seed(0)
    m = get_model(name, 11, pretrained=False); opt = torch.optim.AdamW(m.parameters(), 1e-3)
    t0 = time.time()
    for step in range(1, 201):
        m.train(); loss = F.cross_entropy(m(x)["out"], y, ignore_index=255); opt.zero_grad(); loss.backward(); opt.step()
        if step % 50 == 0:
            m.eval()
            with torch.no_grad(): p = m(x)["out"].argmax(1)
            ok = y != 255
            print(f"{name} step {step}: loss {loss.item():.3f}, train pixel acc (eval mode) {(p[ok] == y[ok]).float().mean().item():.3f} ({time.time()-t0:.0f}s)", flush=True)
