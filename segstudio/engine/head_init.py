"""Initialise a new classifier from the training pixels' features: linear discriminant analysis (LDA).

A fine-tune to new classes starts with freshly initialised classifier rows on pretrained layers. While those rows
are random, the first steps back-propagate noise into the pretrained features ("Fine-Tuning can Distort Pretrained
Features and Underperform Out-of-Distribution", Kumar et al., ICLR 2022, whose remedy LP-FT first fits the linear
head with the body fixed). Here the linear head is fitted in closed form instead of by gradient steps, so it costs
one forward pass over the training images (a few seconds on a CPU) and no part of the time budget's steps:

- the classifier's input features ``f`` (D channels) at the labelled pixels of the training images at native size
  (eval mode, the labels resized to the feature map with nearest neighbour);
- per class mean ``mu_c`` and the pooled within-class covariance ``S``, shrunk towards ``tr(S)/D * I`` by the
  Ledoit-Wolf coefficient ("A well-conditioned estimator for large-dimensional covariance matrices", J. Multivar.
  Anal. 2004) so a handful of images gives a well-conditioned matrix;
- the Gaussian classifier with a shared covariance (Fisher's LDA; Hastie, Tibshirani & Friedman, "The Elements of
  Statistical Learning", eq. 4.10): ``logit_c(f) = f . S^-1 mu_c - mu_c . S^-1 mu_c / 2 + log pi_c``, with the class
  priors ``pi_c`` from the training pixels. It is a 1×1 convolution: weight ``S^-1 mu_c``, bias the rest.

The math is :func:`lda_head` (torch tensors, no model); :func:`init_fresh_rows` applies it to a model's classifier.
The covariance and solve are written out here (a few lines of torch) rather than taken from scikit-learn, which the
app does not otherwise need.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from segstudio.core.labels import IGNORE_INDEX

log = logging.getLogger(__name__)

MAX_PIXELS = 200_000
"""At most this many labelled feature pixels enter the statistics (an even subsample beyond it): D = 256 channels
need far fewer, and the D×D covariance then costs well under a second."""
MAX_IMAGES = 16
"""At most this many training images (evenly spread over the set) are passed through the model at native size."""


def ledoit_wolf_shrinkage(x: torch.Tensor) -> float:
    """Ledoit-Wolf shrinkage coefficient of centred samples ``x`` (N, D) towards ``tr(S)/D * I``, in [0, 1].

    ``S = x^T x / N``; ``m = tr(S) / D``; ``d2 = ||S - m I||_F^2``; ``b2 = min(d2, sum_i ||x_i x_i^T - S||_F^2 / N^2)``;
    the coefficient is ``b2 / d2`` (Ledoit & Wolf 2004, Lemma 3.2 and Theorem 3.2; 0 when ``d2 = 0``).

    Raises:
        ValueError: ``x`` is not 2-D or has no rows.
    """
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"expected centred samples (N, D) with N >= 1, got shape {tuple(x.shape)}")
    x = x.double()
    n, d = x.shape
    s = x.T @ x / n
    m = torch.trace(s) / d
    d2 = float(((s - m * torch.eye(d, dtype=s.dtype, device=s.device)) ** 2).sum())
    if d2 <= 0:
        return 0.0
    # sum_i ||x_i x_i^T - S||_F^2 = sum_i ||x_i||^4 - 2 sum_i x_i^T S x_i + N ||S||_F^2
    sq = (x * x).sum(1)
    b_bar2 = float((sq**2).sum() - 2.0 * ((x @ s) * x).sum() + n * (s**2).sum()) / n**2
    return float(min(max(b_bar2, 0.0), d2) / d2)


def lda_head(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Closed-form linear discriminant classifier of labelled feature pixels.

    Args:
        features: float (N, D) feature vectors (the classifier's input at N labelled pixels).
        labels: int64 (N,) class ids in ``0..K-1``.
        num_classes: K.

    Returns:
        ``(weight float32 (K, D), bias float32 (K,), present bool (K,), shrinkage)``; rows of classes without
        pixels (``present`` False) are zero and must not be used; ``shrinkage`` is the Ledoit-Wolf coefficient used.

    Raises:
        ValueError: shapes disagree, no pixels, or a label outside ``0..K-1``.
    """
    if features.ndim != 2 or labels.ndim != 1 or features.shape[0] != labels.shape[0] or labels.numel() == 0:
        raise ValueError(f"expected features (N, D) and labels (N,) with N >= 1, got {tuple(features.shape)}, {tuple(labels.shape)}")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    f = features.double()
    n, d = f.shape
    counts = torch.bincount(labels, minlength=num_classes).double()
    present = counts > 0
    means = torch.zeros(num_classes, d, dtype=torch.float64, device=f.device)
    means.index_add_(0, labels, f)
    means[present] /= counts[present, None]
    centred = f - means[labels]
    shrink = ledoit_wolf_shrinkage(centred)
    cov = centred.T @ centred / n
    eye = torch.eye(d, dtype=torch.float64, device=f.device)
    cov = (1.0 - shrink) * cov + shrink * (torch.trace(cov) / d) * eye
    cov += 1e-6 * (torch.trace(cov) / d + 1e-12) * eye  # a zero feature channel stays invertible
    w = torch.linalg.solve(cov, means.T).T  # (K, D): S^-1 mu_c
    b = -0.5 * (w * means).sum(1) + torch.log(counts.clamp_min(1.0) / n)
    w[~present], b[~present] = 0.0, 0.0
    return w.float(), b.float(), present, shrink


@torch.no_grad()
def classifier_features(
    model: torch.nn.Module, classifier: torch.nn.Conv2d, samples: Sequence[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device, ignore_index: int = IGNORE_INDEX, max_pixels: int = MAX_PIXELS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's input features at the labelled pixels of ``samples``.

    Args:
        model: the segmentation model (its ``forward`` runs ``classifier``); put in eval mode here and left so.
        classifier: the 1×1 convolution whose input is read (a forward hook).
        samples: ``(image float32 (3, H, W) normalised, label map int64 (H, W))`` pairs at native size.
        device: where the model runs.
        max_pixels: even subsample to at most this many pixels.

    Returns:
        ``(features float32 (N, D), labels int64 (N,))`` on the CPU; N may be 0.
    """
    grabbed: dict = {}
    hook = classifier.register_forward_hook(lambda _m, inp, _out: grabbed.__setitem__("f", inp[0]))
    feats, labels = [], []
    try:
        model.eval()
        for x, y in samples:
            model(x.unsqueeze(0).to(device))
            f = grabbed["f"][0].float()
            h, w = f.shape[1:]
            yy = F.interpolate(y[None, None].float(), size=(h, w), mode="nearest")[0, 0].long().to(f.device)
            keep = yy != ignore_index
            feats.append(f.permute(1, 2, 0)[keep].cpu())
            labels.append(yy[keep].cpu())
    finally:
        hook.remove()
    if not feats:
        return torch.zeros(0, classifier.in_channels), torch.zeros(0, dtype=torch.long)
    f, y = torch.cat(feats), torch.cat(labels)
    if len(y) > max_pixels:
        idx = torch.linspace(0, len(y) - 1, max_pixels).round().long()
        f, y = f[idx], y[idx]
    return f, y


def init_fresh_rows(
    model: torch.nn.Module, samples: Sequence[tuple[torch.Tensor, torch.Tensor]], new_rows: Sequence[bool],
    device: torch.device,
) -> dict:
    """Set the new rows of ``model.classifier`` (a 1×1 ``nn.Conv2d`` with bias) to the LDA classifier of the
    training pixels (:func:`lda_head`); rows of classes the checkpoint already knew are left as they are.

    When some known classes have training pixels, the new rows' biases move by the mean difference between the kept
    rows' logits and their LDA logits at those pixels, so old and new rows speak on one scale. New rows of classes
    without training pixels get a zero weight and the lowest LDA logit seen at any training pixel as bias (they win
    nowhere until they get pixels).

    Args:
        model: segmentation model with a ``classifier`` attribute.
        samples: training ``(image (3, H, W), label map (H, W))`` pairs at native size.
        new_rows: bool (K,), True for the freshly initialised rows.
        device: where the model runs.

    Returns:
        a JSON-able record for the model card: ``{"method": "lda", "pixels", "shrinkage"...}`` or
        ``{"method": "random", "why": ...}`` when nothing was done.
    """
    clf = getattr(model, "classifier", None)
    if not isinstance(clf, torch.nn.Conv2d) or clf.kernel_size != (1, 1) or clf.bias is None or clf.groups != 1:
        return {"method": "random", "why": "the classifier is not a single 1x1 convolution with bias"}
    k = clf.out_channels
    new = torch.as_tensor(list(new_rows), dtype=torch.bool)
    if new.numel() != k:
        raise ValueError(f"new_rows has {new.numel()} entries for a {k}-class classifier")
    if not new.any():
        return {"method": "random", "why": "no new classifier rows"}
    was_training = model.training
    f, y = classifier_features(model, clf, samples, device)
    model.train(was_training)
    if y.numel() == 0:
        return {"method": "random", "why": "no labelled pixels"}
    w, b, present, shrink = lda_head(f, y, k)
    lda_logits = f @ w.T + b  # (N, K)
    kept_here = (~new)[y]
    if kept_here.any():
        old_w = clf.weight.detach().cpu().flatten(1).float()
        old_logits = f[kept_here] @ old_w.T + clf.bias.detach().cpu().float()
        yk = y[kept_here]
        delta = float((old_logits.gather(1, yk[:, None]) - lda_logits[kept_here].gather(1, yk[:, None])).mean())
    else:
        delta = 0.0
    floor = float(lda_logits[:, present].min()) + delta
    wt, bt = clf.weight.data, clf.bias.data
    for c in torch.nonzero(new).flatten().tolist():
        if present[c]:
            wt[c] = w[c].view_as(wt[c]).to(wt)
            bt[c] = float(b[c]) + delta
        else:
            wt[c].zero_()
            bt[c] = floor
    return {"method": "lda", "pixels": int(len(y)), "rows": int(new.sum()), "rows_with_pixels": int((new & present).sum()),
            "bias_shift": round(delta, 4), "shrinkage": round(shrink, 4)}
