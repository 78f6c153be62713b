"""The batched predict pipeline (issue 33, ``segstudio.engine.fast_predict``) on the CPU: the same labels and files as
the per-image path, atomic writes that never touch an input, per-image errors, ``--batch-size auto``.
(Its CUDA half is in ``test_cuda.py``.)"""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from segstudio.engine import Predictor, load_checkpoint
from segstudio.engine.accel import amp_dtype, auto_batch_size, loader_workers, parse_batch_size
from segstudio.engine.checkpoint import LoadedModel
from segstudio.engine.fast_predict import WriterPool, fast_path_supported, predict_batched, resolve_batch_size
from segstudio.engine.predict_folder import predict_folder
from segstudio.io import ImageReadError, read_image, read_index_png


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return load_checkpoint(None)


@pytest.fixture(scope="module")
def predictor(loaded) -> Predictor:
    return Predictor(loaded, device="cpu")


@pytest.fixture(scope="module")
def paths(samples_dir) -> list[Path]:
    found = sorted(Path(samples_dir).glob("*.png"))[:3]
    assert len(found) == 3
    return found


class _Small(torch.nn.Module):
    """A cheap 3×3-conv segmenter (fast tests that need many images, not the real network)."""

    def __init__(self, k: int, fail_on_bright: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, k, 3, padding=1)
        self.fail_on_bright = fail_on_bright

    def forward(self, x):
        if self.fail_on_bright and bool((x.amax(dim=(1, 2, 3)) > 2.5).any()):
            raise RuntimeError("this model refuses bright images")
        return {"out": self.conv(x)}


def _small_predictor(loaded, **kw) -> Predictor:
    model = _Small(loaded.classes.num_classes, **kw).eval()
    return Predictor(LoadedModel(model=model, card=loaded.card), device="cpu", fuse_bn=False)


def _write(folder: Path, n: int, size=(40, 56), seed=0) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"im{i:02d}.png"
        Image.fromarray(rng.integers(0, 200, (*size, 3), dtype=np.uint8)).save(p)
        out.append(p)
    return out


def test_batched_labels_are_bit_identical_to_the_per_image_predictor(predictor, paths):
    ref = [predictor.predict(read_image(p)) for p in paths]
    for batch in (1, 2):
        got = list(predict_batched(predictor, paths, batch_size=batch))
        assert [r.index for r in got] == [0, 1, 2] and all(r.error is None for r in got)
        for r, want in zip(got, ref):
            assert r.labels.dtype == np.uint8 and r.labels.shape == want.shape
            assert np.array_equal(r.labels, want)


def test_predict_folder_batched_writes_the_same_files_as_per_image(predictor, paths, tmp_path):
    a = predict_folder(predictor, paths, tmp_path / "old", pipeline="per-image")
    b = predict_folder(predictor, paths, tmp_path / "new", pipeline="batched", batch_size=2)
    assert [p.name for p in a.written] == [p.name for p in b.written] == [p.name for p in paths]
    names = sorted(os.listdir(tmp_path / "old"))
    assert names == sorted(os.listdir(tmp_path / "new")) and len(names) == 6
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "old", tmp_path / "new", names, shallow=False)
    assert mismatch == [] and errors == []


def test_options_the_fast_path_does_not_serve_keep_the_per_image_path(loaded, tmp_path):
    imgs = _write(tmp_path / "in", 2)
    tta = Predictor(loaded, device="cpu", tta=True, lazy=True)
    assert not fast_path_supported(tta) and not fast_path_supported(_small_predictor(loaded), morph=object())
    with pytest.raises(ValueError, match="test-time augmentation"):
        next(predict_batched(tta, imgs))
    with pytest.raises(ValueError, match="per-image"):
        predict_folder(tta, imgs, tmp_path / "out", pipeline="batched")


def test_mixed_sizes_and_rescaled_images_keep_order_and_match(loaded, tmp_path):
    pred = _small_predictor(loaded)
    imgs = _write(tmp_path / "a", 3) + _write(tmp_path / "b", 2, size=(33, 47), seed=1) + _write(tmp_path / "c", 2, seed=2)
    got = list(predict_batched(pred, imgs, batch_size=4))
    assert [r.index for r in got] == list(range(7))
    for r, p in zip(got, imgs):
        assert np.array_equal(r.labels, pred.predict(read_image(p)))
    scaled = Predictor(pred.loaded, device="cpu", fuse_bn=False, scale=0.5)  # per image, through the Predictor
    for r, p in zip(predict_batched(scaled, imgs[:3], batch_size=2), imgs[:3]):
        assert r.labels.shape == read_image(p).shape[:2] and np.array_equal(r.labels, scaled.predict(read_image(p)))


def test_an_unreadable_image_and_a_failing_image_are_reported_the_others_written(loaded, tmp_path):
    from PIL import Image

    pred = _small_predictor(loaded, fail_on_bright=True)
    imgs = _write(tmp_path / "in", 5)
    (tmp_path / "in" / "im01.png").write_bytes(b"not a png")
    Image.fromarray(np.full((40, 56, 3), 255, np.uint8)).save(tmp_path / "in" / "im03.png")  # the model fails on it
    seen = []
    res = predict_folder(pred, [tmp_path / "in"], tmp_path / "out", batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert [p.name for p in res.written] == ["im00.png", "im02.png", "im04.png"]
    assert set(res.failed) == {imgs[1], imgs[3]}
    assert "ImageReadError" not in res.failed[imgs[1]] and "im01" in res.failed[imgs[1]]
    assert "refuses bright images" in res.failed[imgs[3]]
    assert seen == [(i, 5) for i in range(1, 6)]
    for p in res.written:
        assert read_index_png(p).shape == (40, 56)
    assert not (tmp_path / "out" / "im01.png").exists() and not (tmp_path / "out" / "im03.png").exists()


def test_writes_are_atomic_and_never_overwrite_an_input(loaded, tmp_path, monkeypatch):
    pred = _small_predictor(loaded)
    imgs = _write(tmp_path / "in", 3)
    before = {p: p.read_bytes() for p in imgs}
    with pytest.raises(ValueError, match="overwrite the input"):
        predict_folder(pred, [tmp_path / "in"], tmp_path / "in")
    assert {p: p.read_bytes() for p in imgs} == before
    # a write that fails half-way leaves the previous output and no temporary file behind
    first = predict_folder(pred, imgs, tmp_path / "out")
    old = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append(Path(dst).name)
        if Path(dst).name == "im01_overlay.png":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    res = predict_folder(pred, imgs, tmp_path / "out", opacity=0.9)
    assert [p.name for p in res.written] == ["im00.png", "im02.png"] and list(res.failed) == [imgs[1]]
    assert len(first.written) == 3 and "im01_overlay.png" in calls
    assert (tmp_path / "out" / "im01_overlay.png").read_bytes() == old["im01_overlay.png"]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(old)  # no temp file left
    assert {p: p.read_bytes() for p in imgs} == before


def test_writer_pool_reports_each_job_in_order():
    def job(i):
        if i == 2:
            raise OSError("disk gone")

    with WriterPool(workers=2, max_pending=2) as pool:
        done = []
        for i in range(5):
            done += pool.submit(i, job, i)
        done += pool.close()
    assert [k for k, _ in done] == list(range(5))
    assert [type(e).__name__ if e else None for _, e in done] == [None, None, "OSError", None, None]


def test_batch_size_auto_falls_back_on_the_cpu(predictor, paths, tmp_path):
    assert parse_batch_size("auto") == "auto" and parse_batch_size("3") == 3 and parse_batch_size(None) is None
    for bad in ("0", "-2", "many"):
        with pytest.raises(ValueError):
            parse_batch_size(bad)
    assert resolve_batch_size(predictor, "auto", read_image(paths[0])) == 1
    assert resolve_batch_size(predictor, None, None) == 1 and resolve_batch_size(predictor, 5, None) == 5
    assert auto_batch_size(10**6, "cpu") == 1 and auto_batch_size(None, "cpu", cpu_default=2) == 2
    res = predict_folder(predictor, paths[:1], tmp_path / "out", batch_size="auto")
    assert len(res.written) == 1 and not res.failed


def test_cli_predict_batch_size_auto(paths, tmp_path, capsys):
    from segstudio import cli

    shutil.copy(paths[0], tmp_path / "a.png")
    assert cli.main(["predict", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--device", "cpu", "--batch-size", "auto"]) == 0
    assert (tmp_path / "out" / "a.png").is_file() and (tmp_path / "out" / "a_overlay.png").is_file()
    with pytest.raises(SystemExit) as exc:
        cli.main(["predict", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--batch-size", "zero"])
    assert exc.value.code == 2 and "batch size" in capsys.readouterr().err


def test_accelerator_settings_leave_the_cpu_alone():
    assert amp_dtype("cpu") is None and amp_dtype("cpu", "bf16") is None
    with pytest.raises(ValueError):
        amp_dtype("cpu", "fp8")
    assert loader_workers(None, "cpu") == 0 and loader_workers(3, "cpu") == 3 and loader_workers(0, "cuda") == 0
    with pytest.raises(ValueError):
        loader_workers(-1, "cpu")


def test_cpu_training_keeps_float32_and_no_workers(loaded, tmp_path):
    """Issue 33's CUDA training settings leave the CPU Trainer as it was: no autocast, no scaler, no workers."""
    from segstudio.data import SegmentationDataset
    from segstudio.data.transforms import eval_transforms
    from segstudio.engine import TrainConfig, Trainer
    from segstudio.io.datasets import find_samples

    root = tmp_path / "ds"
    imgs = _write(root / "images", 2)
    (root / "masks").mkdir()
    from PIL import Image

    for p in imgs:
        Image.fromarray(np.zeros((40, 56), np.uint8)).save(root / "masks" / p.name)
    (root / "train.txt").write_text("".join(p.stem + "\n" for p in imgs))
    (root / "classes.json").write_text('[{"id": 0, "name": "a", "color": [0, 0, 0]}, {"id": 1, "name": "b", "color": [9, 9, 9]}]')
    samples, classes = find_samples(root, "train")
    ds = SegmentationDataset(samples, classes.num_classes, transform=eval_transforms())
    card = dict(loaded.card, classes=[{"id": 0, "name": "a"}, {"id": 1, "name": "b"}])
    cfg = TrainConfig(epochs=1, batch_size=2, lr=1e-3, crop_size=(32, 32), loss="ce", class_weights="none",
                      freeze_bn=False, device="cpu", max_steps=1)
    tr = Trainer(_Small(2), card, ds, None, cfg, out_dir=tmp_path / "run")
    assert tr.amp_dtype is None and not tr.use_amp and not tr.scaler.is_enabled()
    assert tr.num_workers == 0 and not tr.loader.pin_memory and cfg.amp == "auto" and cfg.num_workers is None
    tr.fit()
    assert tr.state.step == 1


def test_out_of_memory_in_a_batch_halves_the_batch_and_loses_no_image(loaded, tmp_path, monkeypatch):
    from segstudio.engine import fast_predict

    pred = _small_predictor(loaded)
    imgs = _write(tmp_path / "in", 6)
    real, sizes = fast_predict._run_batch, []

    def fake(predictor, images, dtype, pending=True, inputs=None):
        sizes.append(len(images))
        if len(images) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(predictor, images, dtype, pending, inputs)

    monkeypatch.setattr(fast_predict, "_run_batch", fake)
    got = list(predict_batched(pred, imgs, batch_size=4))
    assert [r.index for r in got] == list(range(6)) and all(r.error is None for r in got)
    assert sizes == [4, 2] and any("batches of 2" in n for n in pred.notices)
    for r, p in zip(got, imgs):
        assert np.array_equal(r.labels, pred.predict(read_image(p)))
