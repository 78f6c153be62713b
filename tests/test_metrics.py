"""segstudio.metrics.ConfusionMatrix against scikit-learn (an independent implementation) on random data
with ignore pixels and classes missing from the prediction and/or the target; NaN rules; merging."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    jaccard_score,
    precision_recall_fscore_support,
)

from segstudio.core import IGNORE_INDEX
from segstudio.metrics import ConfusionMatrix

K = 7
# class 4: predicted, never in the target; class 5: in the target, never predicted; class 6: in neither.
ONLY_PRED, ONLY_TRUE, NEITHER = 4, 5, 6


def random_batches(seed: int, n: int = 5, shape=(24, 32)):
    """``n`` (target, prediction) pairs of uint8 maps with ~10 % ignore pixels and the class gaps above."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = rng.choice([0, 1, 2, 3, ONLY_TRUE], size=shape, p=[0.4, 0.25, 0.15, 0.1, 0.1])
        noise = rng.choice([0, 1, 2, 3, ONLY_PRED], size=shape)
        p = np.where(rng.random(shape) < 0.65, t, noise)
        p[p == ONLY_TRUE] = 0
        t[rng.random(shape) < 0.1] = IGNORE_INDEX
        out.append((t.astype(np.uint8), p.astype(np.uint8)))
    return out


def flat_valid(batches):
    t = np.concatenate([b[0].ravel() for b in batches]).astype(np.int64)
    p = np.concatenate([b[1].ravel() for b in batches]).astype(np.int64)
    keep = t != IGNORE_INDEX
    return t[keep], p[keep]


@pytest.fixture(scope="module")
def data():
    batches = random_batches(0)
    cm = ConfusionMatrix(K)
    for t, p in batches:
        cm.update(t, p)
    t, p = flat_valid(batches)
    assert ONLY_PRED in p and ONLY_PRED not in t and ONLY_TRUE in t and ONLY_TRUE not in p
    assert NEITHER not in t and NEITHER not in p
    assert sum((b[0] == IGNORE_INDEX).sum() for b in batches) > 100
    return cm, t, p


LABELS = list(range(K))


def test_matrix_and_accuracies_match_sklearn(data):
    cm, t, p = data
    np.testing.assert_array_equal(cm.mat, confusion_matrix(t, p, labels=LABELS))
    assert cm.pixels == t.size
    assert cm.pixel_accuracy == pytest.approx(accuracy_score(t, p), rel=1e-12)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = balanced_accuracy_score(t, p)  # mean recall over classes in the target
    assert cm.mean_class_accuracy == pytest.approx(balanced, rel=1e-12)
    assert cm.mean_recall == cm.mean_class_accuracy


def test_per_class_precision_recall_f1_match_sklearn(data):
    cm, t, p = data
    precision, recall, f1, support = precision_recall_fscore_support(
        t, p, labels=LABELS, average=None, zero_division=np.nan
    )
    np.testing.assert_allclose(cm.precision, precision, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(cm.recall, recall, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(cm.class_accuracy, recall, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(cm.f1, f1, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(cm.dice, cm.f1)
    np.testing.assert_array_equal(cm.support, support)


def test_means_match_sklearn_macro_averages_that_skip_undefined_classes(data):
    cm, t, p = data
    for attr, average in [("mean_precision", 0), ("mean_recall", 1), ("mean_f1", 2)]:
        macro = precision_recall_fscore_support(t, p, labels=LABELS, average="macro", zero_division=np.nan)[average]
        assert getattr(cm, attr) == pytest.approx(macro, rel=1e-12), attr
    assert cm.mean_f1 == pytest.approx(f1_score(t, p, labels=LABELS, average="macro", zero_division=np.nan), rel=1e-12)
    assert cm.mean_dice == cm.mean_f1


def test_iou_miou_fwiou_match_sklearn_jaccard(data):
    cm, t, p = data
    occurring = sorted(set(t) | set(p))
    iou = jaccard_score(t, p, labels=LABELS, average=None, zero_division=0)
    defined = np.isin(LABELS, occurring)
    np.testing.assert_allclose(cm.iou[defined], iou[defined], rtol=1e-12)
    assert np.isnan(cm.iou[~defined]).all() and not defined[NEITHER]
    assert cm.miou == pytest.approx(jaccard_score(t, p, labels=occurring, average="macro"), rel=1e-12)
    # Long et al.'s frequency-weighted IU is jaccard averaged with weights = target support.
    assert cm.fw_iou == pytest.approx(jaccard_score(t, p, labels=LABELS, average="weighted", zero_division=0), rel=1e-12)


def test_nan_rules_for_missing_classes(data):
    cm, _, _ = data
    # In neither target nor prediction: everything undefined.
    for values in (cm.precision, cm.recall, cm.iou, cm.f1, cm.dice):
        assert np.isnan(values[NEITHER])
    # Predicted, never true: recall undefined; precision, IoU, F1 are 0 and count in the means.
    assert np.isnan(cm.recall[ONLY_PRED])
    assert cm.precision[ONLY_PRED] == 0 and cm.iou[ONLY_PRED] == 0 and cm.f1[ONLY_PRED] == 0
    # True, never predicted: precision undefined; recall, IoU, F1 are 0.
    assert np.isnan(cm.precision[ONLY_TRUE])
    assert cm.recall[ONLY_TRUE] == 0 and cm.iou[ONLY_TRUE] == 0 and cm.f1[ONLY_TRUE] == 0
    assert cm.miou == pytest.approx(np.mean([cm.iou[c] for c in range(K) if c != NEITHER]))
    assert cm.mean_precision == pytest.approx(np.mean([cm.precision[c] for c in range(K) if c not in (ONLY_TRUE, NEITHER)]))

    s = cm.summary([f"c{i}" for i in range(K)])
    json.dumps(s)  # JSON-ready: NaN became None
    assert s["iou"]["c6"] is None and s["recall"]["c4"] is None and s["precision"]["c5"] is None
    assert s["precision"]["c4"] == 0.0 and s["support"]["c4"] == 0 and s["support"]["c5"] > 0
    for key in ("pixel_accuracy", "mean_class_accuracy", "miou", "fw_iou", "mean_precision", "mean_recall", "mean_f1", "mean_dice"):
        assert s[key] == pytest.approx(getattr(cm, key)), key
    for key in ("iou", "precision", "recall", "f1", "dice"):
        assert list(s[key]) == [f"c{i}" for i in range(K)]
    assert s["pixels"] == cm.pixels
    with pytest.raises(ValueError, match="3 class names for a 7-class matrix"):
        cm.summary(["a", "b", "c"])


def test_empty_matrix_is_all_nan():
    cm = ConfusionMatrix(3)
    for name in ("pixel_accuracy", "mean_class_accuracy", "miou", "fw_iou", "mean_precision", "mean_recall", "mean_f1"):
        assert np.isnan(getattr(cm, name)), name
    for values in (cm.iou, cm.precision, cm.recall, cm.f1):
        assert np.isnan(values).all()
    s = cm.summary()
    assert s["fw_iou"] is None and s["mean_f1"] is None and s["f1"] == {"0": None, "1": None, "2": None} and s["pixels"] == 0


def test_hand_computed_fw_iou_and_f1():
    # M = [[3, 1], [2, 4]]: IoU_0 = 3/6, IoU_1 = 4/7; t = (4, 6); fwIoU = (4·3/6 + 6·4/7) / 10 (FCN, Sec. 5).
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1]))
    np.testing.assert_array_equal(cm.mat, [[3, 1], [2, 4]])
    assert cm.fw_iou == pytest.approx((4 * 3 / 6 + 6 * 4 / 7) / 10)
    np.testing.assert_allclose(cm.precision, [3 / 5, 4 / 5])
    np.testing.assert_allclose(cm.recall, [3 / 4, 4 / 6])
    f1 = [2 * pr * rc / (pr + rc) for pr, rc in zip(cm.precision, cm.recall)]  # harmonic mean of P and R
    np.testing.assert_allclose(cm.f1, f1)


def test_merge_of_batches_equals_one_pass():
    batches = random_batches(1, n=6)
    whole = ConfusionMatrix(K)
    whole.update(np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches]))
    workers = [ConfusionMatrix(K) for _ in range(3)]
    for i, (t, p) in enumerate(batches):  # round-robin, as several DataLoader workers / processes would
        workers[i % 3].update(t, p)
    merged = ConfusionMatrix(K)
    for w in reversed(workers):
        merged.merge(w)
    np.testing.assert_array_equal(merged.mat, whole.mat)
    assert json.dumps(merged.summary()) == json.dumps(whole.summary())
    t, p = flat_valid(batches)
    np.testing.assert_array_equal(whole.mat, confusion_matrix(t, p, labels=LABELS))
