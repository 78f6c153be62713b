"""Post-processing: dense CRF (pydensecrf2), per-class morphology (OpenCV), the refine() pipeline and the
``segstudio predict --crf --morph`` flags."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import load_small
from segstudio.core.labels import IGNORE_INDEX
from segstudio.postprocess import (
    CRFParams,
    MorphParams,
    apply_morphology,
    closing,
    dense_crf,
    fill_holes,
    opening,
    parse_crf_params,
    parse_morph_spec,
    refine,
    remove_small_components,
)

IGN = IGNORE_INDEX


def _coarse_probs(labels: np.ndarray, k: int, factor: int) -> np.ndarray:
    """Softmax-like probabilities (K, H, W) whose boundaries are as blurred as a stride-``factor`` network's:
    one-hot labels averaged down by ``factor``, bilinearly upsampled, mixed with 20 % uniform."""
    h, w = labels.shape
    onehot = np.stack([(labels == c) for c in range(k)]).astype(np.float32)
    small = [cv2.resize(o, (w // factor, h // factor), interpolation=cv2.INTER_AREA) for o in onehot]
    up = np.stack([cv2.resize(s, (w, h), interpolation=cv2.INTER_LINEAR) for s in small])
    up /= up.sum(0)
    return (0.8 * up + 0.2 / k).astype(np.float32)


def _two_colour_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 64×96 image with a wavy red/blue colour edge plus sensor-like noise, and its true label map."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :96]
    truth = (xx > 48 + 8 * np.sin(yy / 5)).astype(np.uint8)
    colours = np.where(truth[..., None] == 1, np.array([200, 60, 40]), np.array([40, 90, 180]))
    image = np.clip(colours + rng.normal(0, 8, colours.shape), 0, 255).astype(np.uint8)
    return image, truth


# --- dense CRF ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [CRFParams(), CRFParams(iterations=3, pos_w=2, pos_xy_std=2, bi_w=5, bi_xy_std=30, bi_rgb_std=8, clip=1e-3)])
def test_dense_crf_equals_a_direct_pydensecrf2_call(camvid, params):
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    image, mask = load_small(camvid, "0016E5_07959", (96, 72))  # read-only arrays, as np.asarray(PIL) gives
    probs = _coarse_probs(np.where(mask < 11, mask, 0), 11, 8)
    before = probs.copy()

    d = dcrf.DenseCRF2D(96, 72, 11)
    d.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs, clip=params.clip)))
    d.addPairwiseGaussian(sxy=params.pos_xy_std, compat=params.pos_w)
    d.addPairwiseBilateral(sxy=params.bi_xy_std, srgb=params.bi_rgb_std, rgbim=image.copy(), compat=params.bi_w)
    expected = np.array(d.inference(params.iterations)).reshape(11, 72, 96)

    q = dense_crf(image, probs, params)
    assert q.dtype == np.float32 and q.shape == (11, 72, 96)
    np.testing.assert_array_equal(q, expected)
    np.testing.assert_allclose(q.sum(0), 1, atol=1e-5)
    np.testing.assert_array_equal(probs, before)  # input untouched
    np.testing.assert_array_equal(refine(image, probs, params), expected.argmax(0).astype(np.uint8))


def test_crf_defaults_are_deeplab_v2():
    assert CRFParams().as_dict() == dict(iterations=10, pos_w=3, pos_xy_std=1, bi_w=4, bi_xy_std=67, bi_rgb_std=3, clip=1e-5)


def test_crf_snaps_a_blurred_prediction_to_the_colour_edge():
    image, truth = _two_colour_scene()
    probs = _coarse_probs(truth, 2, 16)  # stride-16 boundary: the wave is lost
    edge = cv2.morphologyEx(truth, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    band = cv2.dilate(edge.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # within 2 px of the edge
    before = (probs.argmax(0) == truth)[band].mean()
    after = (refine(image, probs, CRFParams(iterations=5)) == truth)[band].mean()
    assert before < 0.8
    assert after > 0.99
    # Without the bilateral (colour) term the CRF only smooths and cannot find the edge.
    smooth_only = (refine(image, probs, CRFParams(iterations=5, bi_w=0)) == truth)[band].mean()
    assert smooth_only < 0.85


# --- morphology: exact expected maps ------------------------------------------------------------------------


def _square_with_spur() -> np.ndarray:
    labels = np.zeros((10, 12), np.uint8)
    labels[2:8, 2:8] = 1
    labels[4, 8:12] = 1  # a one-pixel-wide spur to the right border
    labels[0, 0] = IGN
    return labels


def test_opening_removes_a_thin_spur_and_keeps_the_square():
    labels = _square_with_spur()
    before = labels.copy()
    expected = labels.copy()
    expected[4, 8:12] = 0
    np.testing.assert_array_equal(opening(labels, 3, shape="rect"), expected)
    np.testing.assert_array_equal(labels, before)
    # The default elliptical element also removes the spur (beyond its root pixel) but rounds the corners.
    out = opening(labels, 5)
    assert (out[4, 9:12] == 0).all() and out[0, 0] == IGN
    assert out[2, 2] == 0 and (out[3:7, 3:7] == 1).all()


def test_closing_fills_a_gap_narrower_than_the_element():
    labels = np.zeros((7, 14), np.uint8)
    labels[2:5, 2:6] = 1
    labels[2:5, 7:12] = 1  # a 1-px gap at column 6
    labels[2:5, 6] = 2
    expected = labels.copy()
    expected[2:5, 6] = 1
    np.testing.assert_array_equal(closing(labels, 3, shape="rect"), expected)
    np.testing.assert_array_equal(closing(labels, 1, shape="rect"), labels)
    labels[2:5, 6] = IGN  # ignore pixels are never filled
    np.testing.assert_array_equal(closing(labels, 3, shape="rect"), labels)


def test_small_components_take_the_surrounding_class():
    labels = np.full((10, 10), 1, np.uint8)
    labels[:, 7:] = 2  # a large region of class 2 on the right
    labels[2:4, 2:4] = 2  # speck of class 2 (4 px) inside class 1
    labels[6, 5] = 0  # single pixel of class 0
    labels[8, 1] = IGN  # ignore pixels stay
    expected = np.full((10, 10), 1, np.uint8)
    expected[:, 7:] = 2
    expected[8, 1] = IGN
    np.testing.assert_array_equal(remove_small_components(labels, 5), expected)
    np.testing.assert_array_equal(remove_small_components(labels, 4), np.where((labels == 0), 1, labels).astype(np.uint8))
    np.testing.assert_array_equal(remove_small_components(labels, 0), labels)


def test_a_small_component_on_a_boundary_is_split_between_its_neighbours():
    labels = np.zeros((6, 8), np.uint8)
    labels[:, 4:] = 1
    labels[2:4, 3:5] = 2  # 2×2 speck straddling the 0|1 boundary
    expected = np.zeros((6, 8), np.uint8)
    expected[:, 4:] = 1
    np.testing.assert_array_equal(remove_small_components(labels, 5), expected)


def test_holes_up_to_max_area_are_filled_with_the_enclosing_class():
    labels = np.zeros((9, 12), np.uint8)
    labels[1:8, 1:8] = 1
    labels[3:5, 3:5] = 2  # 4-px hole in class 1
    labels[5, 6] = IGN  # 1-px ignore hole: counted but kept
    labels[3:6, 9:12] = 1  # class 1 touching the border...
    labels[4, 11] = 2  # ... around a pixel on the border: not a hole
    expected = labels.copy()
    expected[3:5, 3:5] = 1
    np.testing.assert_array_equal(fill_holes(labels, 4), expected)
    np.testing.assert_array_equal(fill_holes(labels, 3), labels)
    np.testing.assert_array_equal(fill_holes(labels, 0), labels)


def test_nested_holes_go_to_the_enclosing_class():
    labels = np.zeros((9, 9), np.uint8)
    labels[1:8, 1:8] = 1
    labels[2:7, 2:7] = 2
    labels[4, 4] = 3
    out = fill_holes(labels, 25)
    expected = labels.copy()
    expected[2:7, 2:7] = 1
    np.testing.assert_array_equal(out, expected)
    inner = fill_holes(labels, 24)  # class 1's hole (25 px) is too big; class 2's (1 px) is filled
    expected = labels.copy()
    expected[4, 4] = 2
    np.testing.assert_array_equal(inner, expected)


def test_apply_morphology_runs_the_steps_in_order():
    labels = _square_with_spur()
    labels[5, 4] = 2  # 1-px speck, also a hole of class 1
    params = parse_morph_spec("open=3,shape=rect,min-area=2,fill-holes=1")
    assert params == MorphParams(open=3, min_area=2, fill_holes=1, shape="rect")
    expected = labels.copy()
    expected[4, 8:12] = 0
    expected[5, 4] = 1
    np.testing.assert_array_equal(apply_morphology(labels, params, num_classes=3), expected)
    np.testing.assert_array_equal(apply_morphology(labels, MorphParams()), labels)


def test_refine_argmax_morph_on_probabilities():
    labels = _square_with_spur()
    labels[0, 0] = 0
    probs = np.stack([(labels == c) * 0.7 + 0.1 for c in range(3)]).astype(np.float32)
    image = np.zeros((10, 12, 3), np.uint8)
    np.testing.assert_array_equal(refine(image, probs), labels)
    expected = labels.copy()
    expected[4, 8:12] = 0
    np.testing.assert_array_equal(refine(image, probs, None, MorphParams(open=3, shape="rect")), expected)


@pytest.mark.parametrize("seed", range(4))
def test_morphology_does_not_depend_on_class_order(seed):
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 5, (6, 8)).astype(np.uint8)
    labels = cv2.resize(blocks, (64, 48), interpolation=cv2.INTER_NEAREST)
    noise = rng.random(labels.shape) < 0.05
    labels[noise] = rng.integers(0, 5, int(noise.sum()))
    labels[rng.random(labels.shape) < 0.01] = IGN
    perm = np.arange(256, dtype=np.uint8)
    perm[:5] = rng.permutation(5)
    params = MorphParams(open=3, close=3, min_area=6, fill_holes=30)
    out = apply_morphology(labels, params, num_classes=5)
    assert (out != labels).any() and ((out == IGN) == (labels == IGN)).all()
    np.testing.assert_array_equal(apply_morphology(perm[labels], params, num_classes=5), perm[out])


# --- bad input ----------------------------------------------------------------------------------------------


def _ok_inputs():
    probs = np.full((3, 4, 5), 1 / 3, np.float32)
    return np.zeros((4, 5, 3), np.uint8), probs


@pytest.mark.parametrize(
    "image, probs, kw, match",
    [
        (None, np.zeros((4, 5), np.float32), {}, r"shape \(K, H, W\)"),
        (None, np.zeros((3, 4, 5), np.uint8), {}, "floating point"),
        (None, np.full((3, 4, 5), 0.5, np.float32), {}, "sum to 1"),
        (None, np.full((3, 4, 5), 5.0, np.float32), {}, "not logits"),
        (None, np.full((3, 4, 5), np.nan, np.float32), {}, "NaN"),
        (None, None, {"num_classes": 11}, "K=3 classes but 11"),
        (np.zeros((4, 6, 3), np.uint8), None, {}, "image is 4x6"),
        (np.zeros((4, 5, 3), np.float32), None, {}, "uint8"),
        (np.zeros((4, 5), np.uint8), None, {}, r"RGB \(H, W, 3\)"),
        (None, [[0.5]], {}, "numpy array"),
    ],
)
@pytest.mark.parametrize("use_crf", [False, True])
def test_bad_input_raises_a_clear_value_error(image, probs, kw, match, use_crf):
    ok_image, ok_probs = _ok_inputs()
    image = ok_image if image is None else image
    probs = ok_probs if probs is None else probs
    with pytest.raises(ValueError, match=match):
        refine(image, probs, CRFParams(iterations=1) if use_crf else None, **kw)


def test_bad_labels_and_parameters_raise_value_error():
    with pytest.raises(ValueError, match="uint8"):
        opening(np.zeros((4, 4), np.int32), 3)
    with pytest.raises(ValueError, match="2-D"):
        fill_holes(np.zeros((4, 4, 1), np.uint8), 3)
    with pytest.raises(ValueError, match="only 3 classes"):
        apply_morphology(np.full((4, 4), 7, np.uint8), MorphParams(open=3), num_classes=3)
    with pytest.raises(ValueError, match="connectivity"):
        remove_small_components(np.zeros((4, 4), np.uint8), 3, connectivity=6)
    with pytest.raises(ValueError, match="shape"):
        MorphParams(shape="star")
    with pytest.raises(ValueError, match="open"):
        MorphParams(open=-1)
    with pytest.raises(ValueError, match="iterations"):
        CRFParams(iterations=0)
    with pytest.raises(ValueError, match="bi_rgb_std"):
        CRFParams(bi_rgb_std=0)
    with pytest.raises(ValueError, match="bi_w must be a number"):
        CRFParams(bi_w=None)
    with pytest.raises(ValueError, match="close must be an integer"):
        MorphParams(close="3")
    with pytest.raises(ValueError, match="unknown key 'sigma'"):
        parse_crf_params("sigma=3")
    with pytest.raises(ValueError, match="needs a number"):
        parse_crf_params("bi_w=big")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_morph_spec("open")
    with pytest.raises(ValueError, match="integer"):
        parse_morph_spec("open=2.5")
    assert parse_crf_params("bi-w=5,iterations=5") == CRFParams(bi_w=5, iterations=5)
    assert parse_crf_params("") == CRFParams()


# --- CLI ----------------------------------------------------------------------------------------------------


def test_predict_cli_applies_crf_and_morphology(samples_dir, tmp_path, capsys):
    from segstudio.cli import main
    from segstudio.engine import Predictor, load_checkpoint
    from segstudio.io import read_image, read_index_png

    from PIL import Image

    sample = tmp_path / "0001TP_008970.png"  # a bundled sample at 1/3 size, to keep the test fast
    with Image.open(samples_dir / sample.name) as im:
        im.convert("RGB").resize((160, 120), Image.BILINEAR).save(sample)
    out = tmp_path / "pred"
    spec = "open=3,close=3,min-area=64,fill-holes=256"
    rc = main(["predict", str(sample), "-o", str(out), "--device", "cpu", "--crf", "--crf-params", "iterations=2", "--morph", spec])
    assert rc == 0, capsys.readouterr()
    got = read_index_png(out / "0001TP_008970.png")

    image = read_image(sample)
    predictor = Predictor(load_checkpoint(None), device="cpu")
    probs = predictor.predict_proba(image)
    expected = refine(image, probs, CRFParams(iterations=2), parse_morph_spec(spec), num_classes=len(predictor.classes.names))
    np.testing.assert_array_equal(got, expected)
    assert (got != probs.argmax(0)).any()  # post-processing changed something

    with pytest.raises(SystemExit):  # argparse rejects a bad spec before any work
        main(["predict", str(sample), "-o", str(out), "--morph", "open=big"])
    assert "open needs an integer" in capsys.readouterr().err
