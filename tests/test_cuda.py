"""CUDA path (issue 33): predict, train a few steps and bf16 autocast on an NVIDIA GPU (export is not here yet: it
builds its check input on the CPU, never run with a CUDA model). Marked ``cuda``:
deselected where ``torch.cuda.is_available()`` is False (CI, this CPU machine; see conftest.py), run on a GPU
machine with the plain ``python -m pytest``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from segstudio.engine import Predictor, finetune_config, load_checkpoint, train_on_folder
from segstudio.io import read_image, read_index_png
from segstudio.metrics import ConfusionMatrix

from conftest import SHARED

pytestmark = pytest.mark.cuda
SAMPLES = SHARED / "datasets" / "camvid_samples"


def _frames(n=3):
    images = sorted((SAMPLES / "images").glob("*.png"))[:n]
    return [(read_image(p), read_index_png(SAMPLES / "masks" / p.name)) for p in images]


def test_cuda_predict_agrees_with_the_cpu():
    loaded = load_checkpoint(None)
    cpu, gpu = Predictor(loaded, device="cpu"), Predictor(loaded, device="cuda")
    cm_cpu, cm_gpu = ConfusionMatrix(11), ConfusionMatrix(11)
    for image, mask in _frames():
        a, b = cpu.predict(image), gpu.predict(image)
        assert (a == b).mean() > 0.995  # float16 autocast on CUDA: a few boundary pixels may differ
        cm_cpu.update(mask, a)
        cm_gpu.update(mask, b)
    assert abs(cm_cpu.miou - cm_gpu.miou) < 0.01


def test_cuda_bf16_autocast_agrees_with_fp32():
    model = load_checkpoint(None).model.cuda().eval()
    x = torch.randn(2, 3, 360, 480, device="cuda")
    with torch.inference_mode():
        ref = model(x)["out"].argmax(1)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(x)["out"].argmax(1)
    assert (ref == low).float().mean().item() > 0.95


def test_cuda_fine_tune_a_few_steps(tmp_path):
    from PIL import Image

    app = tmp_path / "app"
    (app / "labels").mkdir(parents=True)
    (app / "labels" / "classes.json").write_text((SHARED / "datasets" / "camvid" / "classes.json").read_text())
    for p in sorted((SAMPLES / "images").glob("*.png"))[:2]:
        Image.open(p).save(app / p.name)
        Image.open(SAMPLES / "masks" / p.name).save(app / "labels" / p.name)
    final = train_on_folder(app, tmp_path / "run", init="default", config=finetune_config(max_steps=5, device="cuda"))
    card = json.loads(final.with_suffix(".json").read_text())
    assert card["training"]["device"].startswith("cuda") and card["training"]["steps_done"] == 5
    assert np.isfinite(json.loads((tmp_path / "run" / "history.json").read_text())[-1]["train_loss"])

