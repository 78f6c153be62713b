"""engine.uncertainty (entropy / margin maps, ranking) and the trainer options the GUI loop adds
(freeze_encoder, holdout_split)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segstudio.engine.finetune import holdout_split
from segstudio.engine.trainer import TrainConfig, Trainer
from segstudio.engine.uncertainty import (
    entropy_map,
    margin_map,
    mean_uncertainty,
    rank_by_uncertainty,
    uncertainty_map,
)
from segstudio.io.datasets import DatasetSample
from segstudio.models import get_model


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(logits), 0).numpy()


def test_entropy_and_margin_extremes():
    k, h, w = 4, 3, 5
    uniform = np.full((k, h, w), 1 / k, np.float32)
    onehot = np.zeros((k, h, w), np.float32)
    onehot[2] = 1
    for fn in (entropy_map, margin_map):
        u, c = fn(uniform), fn(onehot)
        assert u.dtype == np.float32 and u.shape == (h, w)
        np.testing.assert_allclose(u, 1.0, atol=1e-6)
        np.testing.assert_allclose(c, 0.0, atol=1e-6)
    # A tie between two classes: margin says "maximally unsure", entropy is log 2 / log 4 = 0.5.
    tie = np.zeros((k, h, w), np.float32)
    tie[0] = tie[3] = 0.5
    np.testing.assert_allclose(margin_map(tie), 1.0, atol=1e-6)
    np.testing.assert_allclose(entropy_map(tie), 0.5, atol=1e-6)


def test_maps_match_formulas_on_random_probabilities():
    rng = np.random.default_rng(0)
    p = _softmax(rng.normal(size=(6, 20, 30)).astype(np.float32) * 3)
    h = -(p * np.log(p)).sum(0) / np.log(6)
    np.testing.assert_allclose(entropy_map(p), h, rtol=1e-5, atol=1e-6)
    s = np.sort(p, axis=0)
    np.testing.assert_allclose(margin_map(p), 1 - (s[-1] - s[-2]), atol=1e-6)
    # torch input gives the same result; values are in [0, 1]
    np.testing.assert_allclose(uncertainty_map(torch.as_tensor(p), "margin"), margin_map(p))
    for m in (entropy_map(p), margin_map(p)):
        assert 0 <= m.min() and m.max() <= 1


def test_uncertainty_errors():
    with pytest.raises(ValueError, match="unknown uncertainty method"):
        uncertainty_map(np.full((2, 2, 2), 0.5), "variance")
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        entropy_map(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        margin_map(np.ones((1, 4, 4)))
    with pytest.raises(ValueError, match="empty"):
        mean_uncertainty(np.zeros((0, 3)))


def test_ranking_most_uncertain_first_nan_last():
    ranked = rank_by_uncertainty({"a": 0.1, "b": 0.7, "c": float("nan"), "d": 0.4})
    assert [k for k, _ in ranked] == ["b", "d", "a", "c"]
    assert rank_by_uncertainty([("x", 0.2), ("y", 0.2)]) == [("x", 0.2), ("y", 0.2)]  # stable on ties
    assert mean_uncertainty(np.array([[0.0, 1.0]], np.float32)) == pytest.approx(0.5)


def test_holdout_split_is_stable_and_needs_five_images():
    samples = [DatasetSample(Path(f"img{i:03d}.png"), Path(f"labels/img{i:03d}.png")) for i in range(40)]
    train, held = holdout_split(samples[:4], 0.2)
    assert held == [] and len(train) == 4
    train, held = holdout_split(samples, 0.2)
    assert held and len(train) + len(held) == 40 and not {s.image for s in train} & {s.image for s in held}
    assert 2 <= len(held) <= 16  # about 20 % of 40 by a hash
    # Labelling more images never moves an image from held-out to training or back.
    more = samples + [DatasetSample(Path(f"new{i}.png"), Path(f"labels/new{i}.png")) for i in range(20)]
    _, held2 = holdout_split(more, 0.2)
    assert {s.image for s in held} <= {s.image for s in held2}
    _, five = holdout_split(samples[:5], 0.2)
    assert len(five) >= 1


class _Tiny(torch.utils.data.Dataset):
    def __init__(self, n=4):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 3, 32, 32, generator=g)
        self.y = (self.x[:, 0] > 0.5).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_freeze_encoder_trains_only_the_decoder(tmp_path):
    torch.manual_seed(0)
    model = get_model("deeplabv3plus", 2, encoder="mobilenet_v2", pretrained=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    card = {"architecture": "deeplabv3plus", "classes": [{"name": "a", "color": [0, 0, 0]}, {"name": "b", "color": [255, 255, 255]}]}
    cfg = TrainConfig(epochs=1, batch_size=2, max_steps=2, lr=1e-2, device="cpu", freeze_encoder=True)
    Trainer(model, card, _Tiny(), None, cfg, tmp_path).fit()
    after = model.state_dict()
    enc = [k for k in after if k.startswith("encoder.")]
    dec = [k for k in after if not k.startswith("encoder.") and after[k].is_floating_point()]
    assert enc and dec
    for k in enc:  # weights and BatchNorm running statistics untouched
        assert torch.equal(after[k], before[k]), k
    assert any(not torch.equal(after[k], before[k]) for k in dec), "the decoder must train"


def test_freeze_encoder_without_encoder_is_a_clear_error(tmp_path):
    model = torch.nn.Conv2d(3, 2, 1)
    card = {"architecture": "x", "classes": [{"name": "a", "color": [0, 0, 0]}, {"name": "b", "color": [1, 1, 1]}]}
    with pytest.raises(ValueError, match="no encoder"):
        Trainer(model, card, _Tiny(), None, TrainConfig(device="cpu", freeze_encoder=True), tmp_path)
