"""CUDA path (issue 33): predict (per image and the batched pipeline), train a few steps (with autocast), bf16 autocast
agreement and export of a model that lives on the GPU, on an NVIDIA GPU. Marked ``cuda``:
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



def _sample_paths(n=6):
    return sorted((SAMPLES / "images").glob("*.png"))[:n]


def test_cuda_batched_pipeline_agrees_with_fp32_per_image(tmp_path):
    from segstudio.engine.fast_predict import predict_batched, resolve_batch_size
    from segstudio.engine.predict_folder import predict_folder

    loaded = load_checkpoint(None)
    ref_pred = Predictor(loaded, device="cuda", amp=False)  # float32, one image at a time
    fast = Predictor(loaded, device="cuda")
    paths = _sample_paths()
    ref = [ref_pred.predict(read_image(p)) for p in paths]
    for batch in (4, "auto"):
        got = list(predict_batched(fast, paths, batch_size=batch))
        assert [r.index for r in got] == list(range(len(paths))) and all(r.error is None for r in got)
        agree = np.mean([(r.labels == want).mean() for r, want in zip(got, ref)])
        assert agree >= 0.995, f"batch {batch}: {agree:.4%} of pixels equal to fp32"
    assert resolve_batch_size(fast, "auto", read_image(paths[0])) >= 1
    res = predict_folder(fast, paths, tmp_path / "out", batch_size="auto")
    assert len(res.written) == len(paths) and not res.failed
    for p, want in zip(res.written, ref):
        assert (read_index_png(p) == want).mean() >= 0.995


def _tiny_trainer(tmp_path, amp, steps):
    from segstudio.data import SegmentationDataset
    from segstudio.data.transforms import eval_transforms
    from segstudio.engine import TrainConfig, Trainer
    from segstudio.io.datasets import find_samples

    samples, classes = find_samples(SHARED / "datasets" / "camvid", "train")
    ds = SegmentationDataset(samples[:4], classes.num_classes, transform=eval_transforms())  # a fixed batch to overfit
    loaded = load_checkpoint(None)
    losses = []
    cfg = TrainConfig(epochs=1000, batch_size=4, lr=1e-4, crop_size=(256, 256), loss="ce", class_weights="none",
                      freeze_bn=False, device="cuda", max_steps=steps, seed=0, amp=amp, val_every=10**6)
    trainer = Trainer(loaded.model, loaded.card, ds, None, cfg, out_dir=tmp_path / amp,
                      callbacks=[lambda ev, info: losses.append(info["loss"]) if ev == "step" else None])
    return trainer, losses


def test_cuda_train_steps_with_autocast_overfit_a_tiny_set(tmp_path):
    trainer, losses = _tiny_trainer(tmp_path, "auto", 30)
    assert trainer.amp_dtype in (torch.bfloat16, torch.float16) and torch.backends.cudnn.benchmark
    assert trainer.num_workers >= 0 and trainer.loader.pin_memory
    trainer.fit()
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_cuda_autocast_train_step_agrees_with_fp32():
    from segstudio.losses import get_loss

    model = load_checkpoint(None).model.cuda().train().to(memory_format=torch.channels_last)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 256, 256, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 11, (2, 256, 256), device="cuda")
    loss_fn = get_loss("ce")
    grads = []
    for dtype in (None, torch.bfloat16):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(model(x)["out"], y)
        loss.backward()
        grads.append((loss.item(), torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])))
    (l32, g32), (l16, g16) = grads
    assert abs(l32 - l16) / abs(l32) < 0.02
    assert torch.nn.functional.cosine_similarity(g32, g16, dim=0).item() > 0.95


def test_cuda_model_exports(tmp_path):
    from segstudio.engine.export import export_model

    loaded = load_checkpoint(None)
    loaded.model.cuda()
    res = export_model(loaded, tmp_path / "m.pt", "torchscript")
    assert res.path.is_file() and res.checks
    assert next(loaded.model.parameters()).is_cuda  # left on the GPU
    pytest.importorskip("onnxruntime")
    assert export_model(loaded, tmp_path / "m.onnx", "onnx").path.is_file()
