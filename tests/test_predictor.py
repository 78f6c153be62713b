"""Predictor: sliding windows, batching/prefetch, out-of-memory fallback, conv/BN folding.

Real model (the bundled CamVid DeepLab v3+) on real CamVid samples where the property depends on the
network; a pointwise (1×1 conv) model where the property is exact arithmetic (tile blending).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segstudio.engine import Predictor, load_checkpoint
from segstudio.engine.checkpoint import LoadedModel
from segstudio.engine.predictor import fast_argmax, fuse_conv_bn, is_out_of_memory
from segstudio.engine.tiling import tile_starts, tile_weight_map
from segstudio.io import ImageReadError, read_image


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    torch.manual_seed(0)
    return load_checkpoint(None)


@pytest.fixture(scope="module")
def sample_paths(samples_dir) -> list[Path]:
    paths = sorted(p for p in Path(samples_dir).glob("*.png"))
    assert len(paths) >= 3
    return paths


@pytest.fixture(scope="module")
def image(sample_paths) -> np.ndarray:
    return read_image(sample_paths[0])


@pytest.fixture(scope="module")
def predictor(loaded) -> Predictor:
    return Predictor(loaded, device="cpu")


class Pointwise(torch.nn.Module):
    """A 1×1-conv "segmenter": every output pixel depends on its own input pixel only, so tiling is exact."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, k, 1)
        self.bn = torch.nn.Sequential(torch.nn.Conv2d(k, k, 1), torch.nn.BatchNorm2d(k))

    def forward(self, x):
        return {"out": self.bn(self.conv(x))}


def _pointwise(loaded: LoadedModel) -> LoadedModel:
    torch.manual_seed(1)
    k = loaded.classes.num_classes
    model = Pointwise(k).eval()
    with torch.no_grad():
        bn = model.bn[1]
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    return LoadedModel(model=model, card=loaded.card)


def test_tile_starts_cover_and_align():
    for size in (37, 100, 257, 360, 481, 1000):
        for tile in (64, 96, 128, 250):
            for overlap in (0.0, 0.25, 0.5):
                starts = tile_starts(size, tile, overlap, align=32)
                assert starts[0] == 0 and starts == sorted(set(starts))
                assert all(s % 32 == 0 for s in starts)
                covered = np.zeros(size, bool)
                for s in starts:
                    covered[s : s + tile] = True
                    assert s < size
                assert covered.all(), (size, tile, overlap, starts)
                if tile < size and len(starts) > 2:  # inner neighbours share at least the requested overlap
                    assert min(b - a for a, b in zip(starts[:-1], starts[1:])) <= tile * (1 - overlap)
    assert tile_starts(100, 128, 0.25) == [0]
    with pytest.raises(ValueError, match="twice the alignment"):
        tile_starts(500, 40, 0.25, align=32)


def test_tile_weight_map():
    g = tile_weight_map(64, 80)
    assert g.shape == (64, 80) and g.dtype == torch.float32
    assert g.max() == pytest.approx(1.0) and g.min() >= 1e-3
    assert g[32, 40] > g[0, 0]  # the centre dominates the corner
    assert torch.equal(tile_weight_map(5, 7, "constant"), torch.ones(5, 7))
    with pytest.raises(ValueError, match="tile weights"):
        tile_weight_map(4, 4, "cosine-ish")


@pytest.mark.parametrize("weights", ["gaussian", "constant"])
def test_tiled_equals_whole_for_pointwise_model_odd_sizes(loaded, weights):
    """Blending arithmetic: with a pointwise model, tiles (odd sizes, clipped edges, bands) reproduce the image exactly."""
    lm = _pointwise(loaded)
    p = Predictor(lm, "cpu", tile_size=(64, 96), tile_overlap=0.3, tile_weights=weights, max_pixels=None)
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, size=(203, 317, 3), dtype=np.uint8)
    whole = p.predict_logits([im])[0].numpy()
    tiled = p.predict_tiled(im, "logits")
    assert tiled.shape == whole.shape == (lm.classes.num_classes, 203, 317)
    np.testing.assert_allclose(tiled, whole, atol=1e-4, rtol=1e-4)
    proba = p.predict_tiled(im, "proba")
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-5)
    labels = p.predict_tiled(im, "labels")
    assert labels.dtype == np.uint8 and (labels == whole.argmax(0)).mean() > 0.9999


def test_fuse_conv_bn_matches_and_leaves_model_alone(loaded, image):
    fused, n = fuse_conv_bn(loaded.model)
    assert n > 20
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in loaded.model.modules())  # original untouched
    plain = Predictor(loaded, "cpu", fuse_bn=False, channels_last=False).predict_logits([image[:160, :224]])
    fast = Predictor(loaded, "cpu").predict_logits([image[:160, :224]])
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), atol=2e-3)


def test_fast_argmax_equals_argmax():
    x = torch.randn(2, 11, 37, 53)
    assert torch.equal(fast_argmax(x), x.argmax(1).to(torch.uint8))


def test_sliding_window_agrees_with_whole_image_real_model(predictor, image):
    """Real model, real CamVid image: tiles covering most of the image (offsets aligned to the network stride)."""
    whole = predictor.predict(image)
    tiled = predictor.predict_tiled(image, "labels", tile_size=(360, 448))
    assert tiled.shape == whole.shape == image.shape[:2] and tiled.dtype == np.uint8
    assert (tiled == whole).mean() > 0.99


def test_large_images_go_through_tiles_automatically(loaded, image):
    crop = np.ascontiguousarray(image[:201, :333])  # odd size
    p = Predictor(loaded, "cpu", tile_size=160, max_pixels=150 * 150)
    auto = p.predict(crop)
    assert auto.shape == (201, 333)
    assert np.array_equal(auto, p.predict_tiled(crop, "labels"))
    assert p.notices == []


def test_predict_many_batches_equal_one_by_one(predictor, sample_paths):
    paths = sample_paths[:2]
    odd = np.ascontiguousarray(read_image(sample_paths[2])[:181, :243])  # a different (odd) size breaks the batch
    items = [paths[0], odd, paths[1], paths[0]]
    res = list(predictor.predict_many(items, batch_size=2, output="logits"))
    assert [r.index for r in res] == [0, 1, 2, 3]
    assert res[1].output.shape == (11, 181, 243)
    single = {0: predictor.predict_logits([read_image(paths[0])])[0].numpy()}
    np.testing.assert_allclose(res[0].output, single[0], atol=1e-3)
    np.testing.assert_allclose(res[3].output, single[0], atol=1e-3)
    assert np.array_equal(res[0].image, read_image(paths[0]))
    np.testing.assert_allclose(res[1].output, predictor.predict_logits([odd])[0].numpy(), atol=1e-3)


def test_predict_many_unreadable_file(predictor, sample_paths, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    small = np.ascontiguousarray(read_image(sample_paths[0])[:96, :128])
    res = list(predictor.predict_many([small, bad, small], errors="yield"))
    assert [r.index for r in res] == [0, 1, 2]
    assert isinstance(res[1].error, ImageReadError) and res[1].output is None
    assert np.array_equal(res[0].output, res[2].output) and res[0].output.shape == (96, 128)
    with pytest.raises(ImageReadError):
        list(predictor.predict_many([small, bad]))
    with pytest.raises(ValueError, match="output"):
        next(predictor.predict_many([small], output="probs"))


def _oom_above(monkeypatch, p: Predictor, max_pixels: int, on_devices=("cpu", "cuda")):
    """Inject CUDA out-of-memory at the forward boundary for inputs larger than ``max_pixels``."""
    real = p._run_model
    calls = []

    def fake(x, device):
        calls.append((tuple(x.shape), device.type))
        if device.type in on_devices and x.shape[-2] * x.shape[-1] > max_pixels:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x, torch.device("cpu"))

    monkeypatch.setattr(p, "_run_model", fake)
    return calls


def test_out_of_memory_falls_back_to_tiles(loaded, image, monkeypatch):
    crop = np.ascontiguousarray(image[:200, :260])
    seen = []
    p = Predictor(loaded, "cpu", on_notice=seen.append)
    calls = _oom_above(monkeypatch, p, 160 * 160)
    labels = p.predict(crop)
    assert labels.shape == (200, 260)
    assert len(p.notices) == 1 and "out of memory" in p.notices[0] and "tiles" in p.notices[0]
    assert seen == p.notices
    assert all(s[-2] * s[-1] <= 160 * 160 for s, _ in calls[1:])  # every retry fitted
    monkeypatch.undo()
    assert np.array_equal(labels, p.predict_tiled(crop, "labels", tile_size=160))


def test_out_of_memory_on_gpu_falls_back_to_cpu(loaded, image, monkeypatch):
    crop = np.ascontiguousarray(image[:120, :160])
    p = Predictor(loaded, "cpu")
    p.device = torch.device("cuda")  # pretend: the fake forward never touches CUDA
    _oom_above(monkeypatch, p, 0, on_devices=("cuda",))
    labels = p.predict(crop)
    assert p.device.type == "cpu"
    assert any("CPU" in n for n in p.notices)
    monkeypatch.undo()
    assert np.array_equal(labels, p.predict_tiled(crop, "labels", tile_size=128))


def test_other_errors_propagate_and_cpu_oom_is_clear(loaded, monkeypatch):
    p = Predictor(loaded, "cpu")
    im = np.zeros((64, 64, 3), np.uint8)

    def boom(x, device):
        raise RuntimeError("boom")

    monkeypatch.setattr(p, "_run_model", boom)
    with pytest.raises(RuntimeError, match="boom"):
        p.predict(im)
    _oom_above(monkeypatch, p, 0)
    with pytest.raises(MemoryError, match="out of memory"):
        p.predict(im)
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_bad_options(loaded):
    with pytest.raises(ValueError, match="tile_overlap"):
        Predictor(loaded, "cpu", tile_overlap=1.0)
    with pytest.raises(ValueError, match="tile_size"):
        Predictor(loaded, "cpu", tile_size=32)
    with pytest.raises(ValueError, match="one size"):
        Predictor(loaded, "cpu").predict_logits([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)])


def test_lazy_predictor_prepares_on_first_prediction_in_that_thread(loaded, image, predictor, monkeypatch):
    """``lazy=True`` defers BN folding to the first prediction (the GUI's worker thread), same results."""
    import threading

    import segstudio.engine.predictor as pred_mod

    threads = []
    orig = pred_mod.fuse_conv_bn

    def spy(model):
        threads.append(threading.current_thread())
        return orig(model)

    monkeypatch.setattr(pred_mod, "fuse_conv_bn", spy)
    lazy = Predictor(loaded, device="cpu", lazy=True)
    assert not lazy.prepared and threads == []
    out: dict = {}
    worker = threading.Thread(target=lambda: out.setdefault("labels", lazy.predict(image)))
    worker.start()
    worker.join()
    assert lazy.prepared and threads == [worker], "prepared once, on the thread that predicted"
    np.testing.assert_array_equal(out["labels"], predictor.predict(image))
    lazy.predict(image)
    assert len(threads) == 1, "prepared only once"
