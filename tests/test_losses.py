"""segstudio.losses against formulas written out independently here (per-pixel loops on small tensors),
values and gradients; ignore pixels; the output dict / aux term; class weights; spec strings; CLI training."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import TINY_UNET, camvid_stems, make_dataset_folder
from segstudio.core import IGNORE_INDEX
from segstudio.losses import (
    CLASS_WEIGHT_METHODS,
    LOSSES,
    CombinedLoss,
    CrossEntropy,
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    LovaszSoftmax,
    class_pixel_counts,
    compute_class_weights,
    get_loss,
    inverse_frequency_weights,
    lovasz_softmax_flat,
    median_frequency_weights,
    parse_loss_spec,
)

N, K, H, W = 2, 3, 4, 4


def make_batch(seed: int = 0, k: int = K, absent: int | None = None, dtype=torch.float64):
    """Logits (N, K, H, W) and int64 targets (N, H, W) with 5 ignore pixels (optionally without class ``absent``)."""
    g = torch.Generator().manual_seed(seed)
    logits = (2 * torch.randn(N, k, H, W, generator=g)).to(dtype)
    target = torch.randint(0, k, (N, H, W), generator=g)
    if absent is not None:
        target[target == absent] = (absent + 1) % k
    for n, i, j in [(0, 0, 0), (0, 1, 2), (0, 3, 3), (1, 2, 1), (1, 0, 3)]:
        target[n, i, j] = IGNORE_INDEX
    return logits, target


def labelled(target):
    """(n, i, j) of every labelled pixel."""
    return [tuple(int(v) for v in idx) for idx in torch.nonzero(target != IGNORE_INDEX)]


def softmax_at(z, n, i, j):
    e = torch.exp(z[n, :, i, j])
    return e / e.sum()


# -- reference formulas (per-pixel loops) ------------------------------------------------------


def ref_ce(z, y, weight=None):
    num = den = 0.0
    for n, i, j in labelled(y):
        c = int(y[n, i, j])
        w = 1.0 if weight is None else float(weight[c])
        num = num - w * torch.log(softmax_at(z, n, i, j)[c])
        den += w
    return num / den


def ref_focal(z, y, gamma, alpha=None, weight=None):
    num = den = 0.0
    for n, i, j in labelled(y):
        c = int(y[n, i, j])
        p = softmax_at(z, n, i, j)[c]
        a = 1.0 if alpha is None else (alpha if isinstance(alpha, float) else float(alpha[c]))
        w = 1.0 if weight is None else float(weight[c])
        num = num - w * a * (1 - p) ** gamma * torch.log(p)
        den += w
    return num / den


def ref_region_sums(z, y, k):
    """Per class: Σ p·g, Σ p, Σ p², Σ g over labelled pixels (lists of scalars)."""
    inter, psum, psq, gsum = [0.0] * k, [0.0] * k, [0.0] * k, [0] * k
    for n, i, j in labelled(y):
        p = softmax_at(z, n, i, j)
        for c in range(k):
            g = 1.0 if int(y[n, i, j]) == c else 0.0
            inter[c] = inter[c] + p[c] * g
            psum[c] = psum[c] + p[c]
            psq[c] = psq[c] + p[c] ** 2
            gsum[c] += int(g)
    return inter, psum, psq, gsum


def ref_dice(z, y, k, squared=True, smooth=0.0, classes="present"):
    inter, psum, psq, gsum = ref_region_sums(z, y, k)
    sel = [c for c in range(k) if classes == "all" or gsum[c] > 0]
    scores = [(2 * inter[c] + smooth) / ((psq[c] if squared else psum[c]) + gsum[c] + smooth) for c in sel]
    return 1 - sum(scores) / len(scores)


def ref_jaccard(z, y, k, smooth=0.0, classes="present"):
    inter, psum, _, gsum = ref_region_sums(z, y, k)
    sel = [c for c in range(k) if classes == "all" or gsum[c] > 0]
    scores = [(inter[c] + smooth) / (psum[c] + gsum[c] - inter[c] + smooth) for c in sel]
    return 1 - sum(scores) / len(scores)


def jaccard_set_loss(fg: set, mispredicted: set) -> float:
    """Δ_J(M) = |M| / |{y = c} ∪ M|: the Jaccard loss of class c as a set function of the mispredicted
    pixels M (Berman et al. 2018)."""
    union = fg | mispredicted
    return len(mispredicted) / len(union) if union else 0.0


def ref_lovasz_flat(probas, labels, k, classes="present"):
    """The Lovász extension by its definition: Δ̄(m) = Σ_i m_π(i) (Δ({π_1..π_i}) − Δ({π_1..π_{i−1}})),
    π sorting the errors m in decreasing order; averaged over classes."""
    losses = []
    for c in range(k):
        fg = {i for i in range(len(labels)) if int(labels[i]) == c}
        if classes == "present" and not fg:
            continue
        m = [abs((1.0 if i in fg else 0.0) - probas[i, c]) for i in range(len(labels))]
        order = sorted(range(len(m)), key=lambda i: -float(m[i].detach()))
        total, prev = 0.0, 0.0
        for r in range(len(order)):
            cur = jaccard_set_loss(fg, set(order[: r + 1]))
            total = total + m[order[r]] * (cur - prev)
            prev = cur
        losses.append(total)
    return sum(losses) / len(losses)


def ref_lovasz(z, y, k, classes="present"):
    pix = labelled(y)
    probas = torch.stack([softmax_at(z, n, i, j) for n, i, j in pix])
    labels = torch.tensor([int(y[p]) for p in pix])
    return ref_lovasz_flat(probas, labels, k, classes)


WEIGHTS = [0.5, 2.0, 1.25]

CASES = {
    "ce": (lambda: CrossEntropy(), lambda z, y: ref_ce(z, y)),
    "ce weighted": (lambda: CrossEntropy(weight=WEIGHTS), lambda z, y: ref_ce(z, y, WEIGHTS)),
    "focal": (lambda: FocalLoss(), lambda z, y: ref_focal(z, y, 2.0)),
    "focal g1.5 a0.25 weighted": (
        lambda: FocalLoss(gamma=1.5, alpha=0.25, weight=WEIGHTS),
        lambda z, y: ref_focal(z, y, 1.5, 0.25, WEIGHTS),
    ),
    "focal per-class alpha": (
        lambda: FocalLoss(gamma=3.0, alpha=[0.25, 0.5, 0.75]),
        lambda z, y: ref_focal(z, y, 3.0, [0.25, 0.5, 0.75]),
    ),
    "dice": (lambda: DiceLoss(), lambda z, y: ref_dice(z, y, K)),
    "dice linear smooth all": (
        lambda: DiceLoss(smooth=1.0, squared=False, classes="all"),
        lambda z, y: ref_dice(z, y, K, squared=False, smooth=1.0, classes="all"),
    ),
    "jaccard": (lambda: JaccardLoss(), lambda z, y: ref_jaccard(z, y, K)),
    "jaccard smooth all": (
        lambda: JaccardLoss(smooth=0.5, classes="all"),
        lambda z, y: ref_jaccard(z, y, K, smooth=0.5, classes="all"),
    ),
    "lovasz": (lambda: LovaszSoftmax(), lambda z, y: ref_lovasz(z, y, K)),
    "lovasz all": (lambda: LovaszSoftmax(classes="all"), lambda z, y: ref_lovasz(z, y, K, "all")),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("absent", [None, 1])
def test_loss_and_gradient_match_the_formula(case, absent):
    make_loss, ref = CASES[case]
    z, y = make_batch(seed=3 if absent is None else 4, absent=absent)
    if absent is not None:
        assert not (y == absent).any()
    z.requires_grad_(True)
    loss = make_loss()
    value = loss(z, y)
    expected = ref(z, y)
    assert value.dtype == torch.float64 and value.ndim == 0
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    (g,) = torch.autograd.grad(value, z)
    (g_ref,) = torch.autograd.grad(expected, z)
    torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-12)
    assert g.abs().sum() > 0


@pytest.mark.parametrize("case", ["ce weighted", "focal g1.5 a0.25 weighted", "dice", "jaccard smooth all", "lovasz"])
def test_gradcheck_float64(case):
    loss = CASES[case][0]()
    z, y = make_batch(seed=5)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (z,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_ignore_pixels_contribute_nothing(case):
    loss = CASES[case][0]()
    z, y = make_batch(seed=6)
    ignored = (y == IGNORE_INDEX).unsqueeze(1).expand_as(z)
    z2 = torch.where(ignored, 50 * torch.randn_like(z), z)
    assert not torch.equal(z, z2)
    z.requires_grad_(True)
    z2.requires_grad_(True)
    a, b = loss(z, y), loss(z2, y)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    (ga,) = torch.autograd.grad(a, z)
    (gb,) = torch.autograd.grad(b, z2)
    torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-14)
    assert torch.all(ga[ignored] == 0)


@pytest.mark.parametrize("name", list(LOSSES))
def test_all_ignored_batch_gives_zero_not_nan(name):
    z = torch.randn(N, K, H, W, requires_grad=True)
    y = torch.full((N, H, W), IGNORE_INDEX, dtype=torch.long)
    loss = get_loss(name)(z, y)
    assert loss.item() == 0.0
    (g,) = torch.autograd.grad(loss, z)
    assert torch.all(g == 0)


def test_float32_and_half_logits():
    z, y = make_batch(seed=7, dtype=torch.float32)
    for name in LOSSES:
        ref = get_loss(name)(z.double(), y)
        out = get_loss(name)(z, y)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)
        half = get_loss(name)(z.half(), y)  # AMP outputs are computed in float32
        assert half.dtype == torch.float32
        torch.testing.assert_close(half.double(), ref, rtol=1e-2, atol=1e-2)


def test_default_ce_is_torch_cross_entropy_with_aux():
    """TrainConfig's default loss: identical to F.cross_entropy (ignore 255) + 0.4 · aux."""
    z, y = make_batch(seed=8, dtype=torch.float32)
    aux = torch.randn_like(z)
    loss = get_loss("ce")
    assert type(loss) is CrossEntropy and loss.weight is None and loss.aux_weight == 0.4
    assert torch.equal(loss(z, y), F.cross_entropy(z, y, ignore_index=255))
    assert torch.equal(loss({"out": z}, y), F.cross_entropy(z, y, ignore_index=255))
    expected = F.cross_entropy(z, y, ignore_index=255) + 0.4 * F.cross_entropy(aux, y, ignore_index=255)
    assert torch.equal(loss({"out": z, "aux": aux}, y), expected)


@pytest.mark.parametrize("name", list(LOSSES))
def test_output_dict_and_aux_term(name):
    z, y = make_batch(seed=9)
    aux = torch.randn_like(z)
    loss = get_loss(name, aux_weight=0.3)
    torch.testing.assert_close(loss({"out": z, "aux": aux}, y), loss(z, y) + 0.3 * loss(aux, y))
    torch.testing.assert_close(loss({"out": z, "aux": None}, y), loss(z, y))


def test_combined_loss_sums_terms_and_counts_aux_once():
    z, y = make_batch(seed=10)
    aux = torch.randn_like(z)
    combo = get_loss("ce+0.5*dice")
    assert isinstance(combo, CombinedLoss) and combo.spec == "ce+0.5*dice"
    expected_out = ref_ce(z, y) + 0.5 * ref_dice(z, y, K)
    expected_aux = ref_ce(aux, y) + 0.5 * ref_dice(aux, y, K)
    torch.testing.assert_close(combo(z, y), expected_out)
    torch.testing.assert_close(combo({"out": z, "aux": aux}, y), expected_out + 0.4 * expected_aux)
    three = get_loss("0.25*focal + lovasz*2 + iou", gamma=1.0)
    torch.testing.assert_close(
        three(z, y), 0.25 * ref_focal(z, y, 1.0) + 2 * ref_lovasz(z, y, K) + ref_jaccard(z, y, K)
    )


def test_focal_with_gamma_zero_is_cross_entropy():
    z, y = make_batch(seed=11)
    torch.testing.assert_close(FocalLoss(gamma=0.0, weight=WEIGHTS)(z, y), CrossEntropy(weight=WEIGHTS)(z, y))
    torch.testing.assert_close(FocalLoss(gamma=0.0)(z, y), F.cross_entropy(z, y, ignore_index=IGNORE_INDEX))


def test_lovasz_on_hard_probabilities_is_one_minus_iou():
    """For one-hot probabilities the Lovász extension equals the Jaccard loss itself (Berman et al. 2018)."""
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 4, 60))
    labels[labels == 3] = 0  # class 3 absent from the target ...
    pred = torch.where(torch.from_numpy(rng.random(60) < 0.6), labels, torch.from_numpy(rng.integers(0, 4, 60)))
    assert (pred == 3).any()  # ... but predicted
    probas = F.one_hot(pred, 4).double()
    ious = []
    for c in range(4):
        inter = int(((labels == c) & (pred == c)).sum())
        union = int(((labels == c) | (pred == c)).sum())
        ious.append(inter / union)
    assert lovasz_softmax_flat(probas, labels, "present").item() == pytest.approx(1 - np.mean(ious[:3]))
    assert lovasz_softmax_flat(probas, labels, "all").item() == pytest.approx(1 - np.mean(ious))
    assert lovasz_softmax_flat(probas, labels, [1, 3]).item() == pytest.approx(1 - (ious[1] + ious[3]) / 2)


def test_lovasz_per_image():
    z, y = make_batch(seed=12)
    per_image = LovaszSoftmax(per_image=True)(z, y)
    expected = (ref_lovasz(z[:1], y[:1], K) + ref_lovasz(z[1:], y[1:], K)) / 2
    torch.testing.assert_close(per_image, expected)
    y[1] = IGNORE_INDEX  # an image without labels is left out of the mean
    torch.testing.assert_close(LovaszSoftmax(per_image=True)(z, y), ref_lovasz(z[:1], y[:1], K))


def test_bad_inputs_raise_clear_errors():
    z, y = make_batch()
    loss = CrossEntropy()
    with pytest.raises(ValueError, match=r"target must be \(N, H, W\)"):
        loss(z, y[:, :3])
    with pytest.raises(ValueError, match="integer class ids"):
        loss(z, y.double())
    with pytest.raises(ValueError, match=r"logits must be \(N, K, H, W\)"):
        loss(z[0], y)
    with pytest.raises(ValueError, match="'out'"):
        loss({"logits": z}, y)
    with pytest.raises(ValueError, match="weight has 2 entries but the logits have 3 classes"):
        CrossEntropy(weight=[1.0, 2.0])(z, y)
    with pytest.raises(ValueError, match="non-negative"):
        CrossEntropy(weight=[1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1)
    with pytest.raises(ValueError, match="classes"):
        DiceLoss(classes="some")
    with pytest.raises(ValueError, match="smooth"):
        JaccardLoss(smooth=-1)


# -- spec strings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, terms",
    [
        ("ce", [(1.0, "ce")]),
        ("ce+dice", [(1.0, "ce"), (1.0, "dice")]),
        ("ce+0.5*dice", [(1.0, "ce"), (0.5, "dice")]),
        (" CE + 0.5 * Dice ", [(1.0, "ce"), (0.5, "dice")]),
        ("focal", [(1.0, "focal")]),
        ("lovasz", [(1.0, "lovasz")]),
        ("2*focal+lovasz*0.25+iou", [(2.0, "focal"), (0.25, "lovasz"), (1.0, "jaccard")]),
        ("1e-1*jaccard", [(0.1, "jaccard")]),
    ],
)
def test_parse_loss_spec(spec, terms):
    assert parse_loss_spec(spec) == terms
    loss = get_loss(spec)
    if terms == [(1.0, terms[0][1])]:
        assert type(loss) is LOSSES[terms[0][1]]
    else:
        assert isinstance(loss, CombinedLoss)
        assert [(w, type(m)) for w, m in zip(loss.weights, loss.terms)] == [(w, LOSSES[n]) for w, n in terms]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty loss spec"),
        ("   ", "empty loss spec"),
        ("ce+", "empty term"),
        ("+dice", "empty term"),
        ("ce++dice", "empty term"),
        ("ce+tversky", "unknown loss 'tversky'; choose from ce, focal, dice, jaccard, lovasz"),
        ("half*dice", "needs a number on one side of '*'"),
        ("0.5*dice*2", "more than one '*'"),
        ("0*dice", "must be a positive finite number"),
        ("-1*dice", "must be a positive finite number"),
        ("inf*ce", "must be a positive finite number"),
        ("nan*ce", "must be a positive finite number"),
        ("ce+0.5*ce", "'ce' appears more than once"),
        ("jaccard+iou", "'jaccard' appears more than once"),
    ],
)
def test_bad_specs_raise_value_error(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        get_loss(spec)


def test_get_loss_options_and_class_weights():
    focal = get_loss("ce+focal", gamma=1.0, weight=WEIGHTS)
    ce, fl = focal.terms
    assert fl.gamma == 1.0 and torch.equal(fl.weight, torch.tensor(WEIGHTS)) and torch.equal(ce.weight, fl.weight)
    dice = get_loss("ce+dice", classes="all", weight=WEIGHTS).terms[1]
    assert dice.classes == "all"
    assert get_loss("lovasz", classes=[0, 2]).classes == [0, 2]
    with pytest.raises(ValueError, match="class weights apply to the ce, focal losses"):
        get_loss("dice+lovasz", weight=WEIGHTS)
    with pytest.raises(ValueError, match="option 'gamma' is not taken by any loss in 'ce'"):
        get_loss("ce", gamma=2.0)
    assert get_loss("ce", ignore_index=0).ignore_index == 0
    assert set(CLASS_WEIGHT_METHODS) == {"none", "median", "sqrt_median", "inverse"}


# -- class weights -----------------------------------------------------------------------------


def hand_label_maps():
    i = IGNORE_INDEX
    return [
        np.array([[0, 0, 0, 1], [0, 0, 1, 1]], np.uint8),  # 8 labelled: 5 × class 0, 3 × class 1
        np.array([[2, 2, i, 0], [2, 2, 2, 0]], np.uint8),  # 7 labelled: 5 × class 2, 2 × class 0
        torch.tensor([[1, i], [i, i]]),  # 1 labelled: class 1 (a tensor works too)
    ]


def test_class_pixel_counts_and_median_frequency_by_hand():
    counts = class_pixel_counts(hand_label_maps(), 4)
    np.testing.assert_array_equal(counts.pixels, [7, 4, 5, 0])
    np.testing.assert_array_equal(counts.image_pixels, [8 + 7, 8 + 1, 7, 0])
    np.testing.assert_array_equal(counts.images, [2, 2, 1, 0])
    assert counts.num_images == 3 and counts.total == 16
    # freq = [7/15, 4/9, 5/7]; median = 7/15 (class 0); class 3 never occurs: weight 0.
    w = median_frequency_weights(counts)
    np.testing.assert_allclose(w, [1.0, (7 / 15) / (4 / 9), (7 / 15) / (5 / 7), 0.0], rtol=1e-12)
    np.testing.assert_allclose(compute_class_weights("median", counts), w)
    assert compute_class_weights("none", counts) is None
    # the softer balance: the square root of each weight (the median class keeps 1, absent classes 0)
    np.testing.assert_allclose(compute_class_weights("sqrt_median", counts), np.sqrt(w), rtol=1e-12)
    with pytest.raises(ValueError, match="unknown class-weight method 'sqrt'"):
        compute_class_weights("sqrt", counts)


def test_inverse_frequency_matches_sklearn_balanced():
    from sklearn.utils.class_weight import compute_class_weight

    maps = hand_label_maps()
    counts = class_pixel_counts(maps, 4)
    w = inverse_frequency_weights(counts)
    pixels = np.concatenate([np.asarray(m).ravel() for m in maps])
    pixels = pixels[pixels != IGNORE_INDEX]
    np.testing.assert_allclose(w[:3], compute_class_weight("balanced", classes=np.arange(3), y=pixels), rtol=1e-12)
    assert w[3] == 0 and (counts.pixels * w).sum() == pytest.approx(counts.total)


def test_class_weight_errors():
    with pytest.raises(ValueError, match="label map 1 holds values \\[7\\]"):
        class_pixel_counts([np.zeros((2, 2), np.uint8), np.full((2, 2), 7, np.uint8)], 4)
    empty = class_pixel_counts([np.full((3, 3), IGNORE_INDEX, np.uint8)], 4)
    with pytest.raises(ValueError, match="no labelled pixels"):
        median_frequency_weights(empty)
    with pytest.raises(ValueError, match="no labelled pixels"):
        inverse_frequency_weights(empty)


def test_class_pixel_counts_of_a_segmentation_dataset(camvid):
    from segstudio.data import SegmentationDataset
    from segstudio.io import find_samples, read_index_png

    samples, classes = find_samples(camvid, "train")
    ds = SegmentationDataset(samples[:2], classes.num_classes)
    counts = class_pixel_counts(ds, classes.num_classes)
    masks = [read_index_png(s.mask) for s in samples[:2]]
    expected = sum(np.bincount(m[m != IGNORE_INDEX].ravel(), minlength=11) for m in masks)
    np.testing.assert_array_equal(counts.pixels, expected)
    assert counts.num_images == 2


# -- training through the CLI ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run_inputs(camvid, tmp_path_factory):
    from segstudio.engine import save_checkpoint
    from segstudio.engine.checkpoint import new_card
    from segstudio.io import load_classes
    from segstudio.models import get_model

    root = tmp_path_factory.mktemp("losses_cli")
    data = make_dataset_folder(root / "ds", camvid, {"train": camvid_stems(camvid, "train", 2)})
    torch.manual_seed(0)
    model = get_model("unet", 11, **TINY_UNET)
    ckpt = save_checkpoint(root / "init", model, new_card("unet", load_classes(camvid / "classes.json"), dict(TINY_UNET)))
    return data, ckpt


def test_cli_training_with_ce_plus_dice_lowers_the_loss(tiny_run_inputs, tmp_path):
    from segstudio.cli import main
    from segstudio.io import find_samples, read_index_png

    data, ckpt = tiny_run_inputs
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--init", str(ckpt), "--loss", "ce+dice", "--class-weights", "median"]
    args += ["--epochs", "8", "--batch-size", "2", "--crop-size", "90,120", "--scale-range", "1,1", "--lr", "0.01"]
    args += ["--no-recipe"]  # the loss alone: no AdaBN / warm-up from the fine-tune recipe (tests/test_recipe.py)
    assert main(args + ["--device", "cpu", "-o", str(out)]) == 0
    history = [e["train_loss"] for e in json.loads((out / "history.json").read_text())]
    assert len(history) == 8 and all(math.isfinite(v) for v in history)  # one step per epoch (2 images, batch 2)
    assert np.mean(history[-2:]) < 0.93 * np.mean(history[:2]), history

    training = json.loads((out / "model.json").read_text())["training"]
    assert training["config"]["loss"] == "ce+dice" and training["config"]["class_weights"] == "median"
    samples, classes = find_samples(data, "train")
    expected = median_frequency_weights(class_pixel_counts([read_index_png(s.mask) for s in samples], 11))
    assert training["class_weights"]["method"] == "median"
    assert list(training["class_weights"]["weights"]) == list(classes.names)
    np.testing.assert_allclose(list(training["class_weights"]["weights"].values()), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--loss", "ce+bogus"], "unknown loss 'bogus'"),
        (["--loss", "dice", "--class-weights", "median"], "class weights apply to the ce, focal losses"),
    ],
)
def test_cli_rejects_bad_loss_options(tiny_run_inputs, tmp_path, capsys, extra, message):
    from segstudio.cli import main

    data, ckpt = tiny_run_inputs
    rc = main(["train", "--data", str(data), "--init", str(ckpt), "--device", "cpu", "-o", str(tmp_path / "r"), *extra])
    assert rc == 2
    err = capsys.readouterr().err
    assert "segstudio train: error:" in err and message in err
    assert not (tmp_path / "r").exists()


def test_cli_class_weights_choices_match_the_library(capsys):
    from segstudio.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    action = next(a for a in train._actions if "--class-weights" in a.option_strings)
    # Unset flags are None: with --init the recipe chooses, otherwise the TrainConfig defaults ("none", "ce") apply.
    assert tuple(action.choices) == CLASS_WEIGHT_METHODS and action.default is None
    assert next(a for a in train._actions if "--loss" in a.option_strings).default is None
    from segstudio.engine import TrainConfig

    assert (TrainConfig().class_weights, TrainConfig().loss) == ("none", "ce")
