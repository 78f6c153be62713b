"""New classifier rows fitted to the training features (issue 29: the recipe's head initialisation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segstudio.engine import recipe as R
from segstudio.engine.head_init import init_fresh_rows, lda_head, ledoit_wolf_shrinkage


def _gaussians(n_per, means, cov, seed=0):
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c, mu in enumerate(means):
        xs.append(rng.multivariate_normal(mu, cov, n_per))
        ys.append(np.full(n_per, c))
    return torch.tensor(np.concatenate(xs), dtype=torch.float32), torch.tensor(np.concatenate(ys), dtype=torch.long)


def test_lda_separates_classes_with_a_shared_anisotropic_covariance():
    """Two classes whose means differ along a low-variance direction, with a high-variance nuisance direction: the
    nearest-mean rule (identity covariance) errs often, the LDA rule (S^-1 mu) almost never."""
    cov = np.diag([25.0, 0.05])
    f, y = _gaussians(2000, [[0.0, 0.0], [1.5, 1.0]], cov)
    w, b, present, _ = lda_head(f, y, 3)
    assert present.tolist() == [True, True, False]
    assert torch.all(w[2] == 0) and float(b[2]) == 0.0
    acc = float(((f @ w[:2].T + b[:2]).argmax(1) == y).float().mean())
    mu = torch.stack([f[y == c].mean(0) for c in (0, 1)])
    nearest = float((torch.cdist(f, mu).argmin(1) == y).float().mean())
    assert acc > 0.98 and nearest < 0.9, (acc, nearest)


def test_lda_prior_moves_the_boundary_towards_the_rare_class():
    f, y = _gaussians(100, [[0.0], [2.0]], np.eye(1))
    f = torch.cat([f, _gaussians(900, [[0.0]], np.eye(1), seed=1)[0]])  # 10x more class 0
    y = torch.cat([y, torch.zeros(900, dtype=torch.long)])
    w, b, _, _ = lda_head(f, y, 2)
    boundary = float((b[0] - b[1]) / (w[1, 0] - w[0, 0]))  # where the two logits are equal
    assert boundary > 1.0 + 0.3  # equal priors put it at the midpoint 1.0; the common class pushes it out


def test_ledoit_wolf_shrinks_few_samples_and_keeps_many():
    rng = np.random.default_rng(0)
    few = torch.tensor(rng.normal(size=(10, 50)))  # N << D, isotropic: the sample covariance is mostly noise
    many = torch.tensor(rng.normal(size=(5000, 5)) * np.array([10.0, 1, 1, 1, 0.1]))  # N >> D, anisotropic
    s_few, s_many = ledoit_wolf_shrinkage(few - few.mean(0)), ledoit_wolf_shrinkage(many - many.mean(0))
    assert 0.5 < s_few <= 1.0 and 0.0 <= s_many < 0.05, (s_few, s_many)
    with pytest.raises(ValueError, match="N, D"):
        ledoit_wolf_shrinkage(torch.zeros(3))


def test_lda_head_rejects_bad_input():
    with pytest.raises(ValueError, match="0..1"):
        lda_head(torch.zeros(4, 2), torch.tensor([0, 1, 2, 0]), 2)
    with pytest.raises(ValueError, match="N >= 1"):
        lda_head(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 2)


class _Tiny(torch.nn.Module):
    """Features = the input's 3 channels (an identity "body"), then a 1×1 classifier with 3 classes."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Identity()
        self.classifier = torch.nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return {"out": self.classifier(self.body(x))}


def _images(n=4, size=16, seed=0):
    """Images whose pixel colour says the class: 0 dark, 1 red, 2 green (plus noise); label maps to match."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        y = rng.integers(0, 3, (size, size))
        colours = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
        x = colours[y].transpose(2, 0, 1) + rng.normal(0, 0.3, (3, size, size))
        out.append((torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)))
    return out


def _accuracy(model, samples):
    with torch.no_grad():
        return float(np.mean([(model(x[None])["out"].argmax(1)[0] == y).float().mean() for x, y in samples]))


def test_init_fresh_rows_fits_the_new_rows_and_keeps_the_known_ones():
    torch.manual_seed(0)
    model = _Tiny()
    samples = _images()
    assert _accuracy(model, samples) < 0.6  # a random head
    rec = init_fresh_rows(model, samples, [True, True, True], torch.device("cpu"))
    assert rec["method"] == "lda" and rec["rows"] == 3 and rec["rows_with_pixels"] == 3
    assert _accuracy(model, _images(seed=1)) > 0.95  # new images of the same colours
    # Class 1 known (kept row), classes 0 and 2 new: row 1 must not change.
    model = _Tiny()
    before = model.classifier.weight.detach().clone(), model.classifier.bias.detach().clone()
    init_fresh_rows(model, samples, [True, False, True], torch.device("cpu"))
    assert torch.equal(model.classifier.weight[1], before[0][1]) and model.classifier.bias[1] == before[1][1]
    assert not torch.equal(model.classifier.weight[0], before[0][0])


def test_a_new_class_without_pixels_wins_nowhere():
    model = _Tiny()
    samples = [(x, y.clamp(max=1)) for x, y in _images()]  # class 2 never labelled
    init_fresh_rows(model, samples, [True, True, True], torch.device("cpu"))
    assert torch.all(model.classifier.weight[2] == 0)
    with torch.no_grad():
        pred = torch.cat([model(x[None])["out"].argmax(1).flatten() for x, _ in samples])
    assert not (pred == 2).any()


def test_a_classifier_that_is_not_a_1x1_conv_is_left_alone():
    model = _Tiny()
    model.classifier = torch.nn.Conv2d(3, 3, 3, padding=1)
    w = model.classifier.weight.detach().clone()
    rec = init_fresh_rows(model, _images(), [True] * 3, torch.device("cpu"))
    assert rec["method"] == "random" and "1x1" in rec["why"]
    assert torch.equal(model.classifier.weight, w)


def test_recipe_fits_new_rows_only_when_there_are_any():
    assert R.choose_head_init(True) == "lda" and R.choose_head_init(False) == "random"
    stats = R.DataStats(((64, 64),), np.array([10, 10]), np.array([4096, 4096]), np.array([5.0, 5.0]))
    assert R.choose_recipe(stats, fresh_head=True).head_init == "lda"
    assert R.choose_recipe(stats, fresh_head=False).head_init == "random"
