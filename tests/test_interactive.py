"""Click-to-segment engine: click simulation (RITM protocol), NoC, guidance maps, ClickNet shapes, the
encode-once session and GrabCut driven by clicks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segstudio.core.labels import IGNORE_INDEX
from segstudio.engine.click.protocol import (
    Click,
    evaluate_object,
    grabcut_from_clicks,
    guidance_maps,
    iou,
    next_click,
    noc,
    object_masks,
)
from segstudio.engine.click.session import ClickSession
from segstudio.models.clicknet import ClickNet


def _rect(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_first_click_is_the_most_interior_point_of_the_object():
    gt = _rect((60, 80), 10, 31, 20, 61)  # 21 x 41 rectangle: centre row 20, the interior ridge along it
    c = next_click(gt, np.zeros_like(gt))
    assert c.positive
    assert gt[c.y, c.x]
    assert c.y == 20  # 10 px from the top and bottom edges: the farthest any pixel gets
    assert 30 <= c.x <= 50


def test_next_click_goes_to_the_largest_error_with_the_right_sign():
    gt = _rect((100, 100), 20, 80, 20, 80)
    # prediction: the object's left half missing (false negative 60x30) and a small false positive blob
    pred = gt.copy()
    pred[20:80, 20:50] = False
    pred[85:95, 85:95] = True
    c = next_click(gt, pred)
    assert c.positive and gt[c.y, c.x] and not pred[c.y, c.x]
    assert 20 <= c.x < 50
    # now the big error is a false positive: a 40x40 block outside the object
    pred2 = gt | _rect((100, 100), 0, 15, 0, 100)  # 15-px band above the object, predicted but wrong
    pred2[40:45, 40:45] = False  # a tiny hole (false negative, 5x5)
    c2 = next_click(gt, pred2)
    assert not c2.positive and pred2[c2.y, c2.x] and not gt[c2.y, c2.x]
    assert c2.y < 15


def test_next_click_ignores_ignore_pixels_and_stops_without_errors():
    gt = _rect((50, 50), 10, 40, 10, 40)
    assert next_click(gt, gt.copy()) is None
    pred = np.zeros_like(gt)
    ignore = np.zeros_like(gt)
    ignore[:, :30] = True  # the only place left to click is x >= 30
    c = next_click(gt, pred, ignore)
    assert c.x >= 30 and c.positive


def test_object_masks_splits_components_and_drops_small_ones():
    labels = np.full((100, 100), 0, np.uint8)
    labels[10:30, 10:30] = 1  # 400 px = 4 %
    labels[60:90, 60:90] = 1  # 900 px
    labels[50:52, 0:2] = 1  # 4 px < 0.5 %
    labels[0:5, 90:100] = IGNORE_INDEX
    objs = object_masks(labels, [1])
    assert [int(m.sum()) for _, m in objs] == [900, 400]
    assert all(c == 1 for c, _ in objs)
    every = object_masks(labels)
    assert {c for c, _ in every} == {0, 1}  # never the ignore index


def test_noc_counts_clicks_to_threshold_and_caps():
    ious = [0.5, 0.8, 0.86, 0.91]
    assert noc(ious, 0.85) == 3
    assert noc(ious, 0.90) == 4
    assert noc(ious, 0.95, max_clicks=20) == 20
    with pytest.raises(ValueError):
        noc(ious, 0.9, max_clicks=0)


def test_protocol_on_a_synthetic_oracle_reaches_noc_two():
    """An oracle that returns the object once it has a negative click and a positive click, and a
    too-big square otherwise, needs exactly two clicks: the second one must be negative."""
    gt = _rect((64, 64), 16, 48, 16, 48)
    too_big = _rect((64, 64), 0, 64, 0, 64)
    seen = []

    def predict(clicks, prev):
        seen.append(list(clicks))
        return gt.copy() if any(not c.positive for c in clicks) else too_big

    ious = evaluate_object(predict, gt, max_clicks=20)
    assert seen[0][0].positive and gt[seen[0][0].y, seen[0][0].x]
    assert not seen[1][1].positive and not gt[seen[1][1].y, seen[1][1].x]
    assert ious == [pytest.approx(iou(too_big, gt)), 1.0]
    assert noc(ious, 0.85) == 2 and noc(ious, 0.90) == 2


def test_guidance_maps_are_disks_and_the_previous_mask():
    prev = _rect((40, 40), 0, 5, 0, 5)
    g = guidance_maps([Click(20, 20, True), Click(5, 30, False)], (40, 40), prev, radius=5)
    assert g.shape == (3, 40, 40) and g.dtype == np.float32
    assert g[0, 20, 20] == 1 and g[0, 20, 25] == 1 and g[0, 20, 26] == 0 and g[0, 24, 24] == 0  # radius 5
    assert g[1, 5, 30] == 1 and g[1].sum() == g[0].sum()  # same disk, other channel
    assert g[2].sum() == 25
    with pytest.raises(ValueError):
        guidance_maps([], (40, 40), np.zeros((10, 10), bool))


def test_clicknet_shapes_and_errors():
    net = ClickNet(num_classes=1, pretrained=False).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 6, 50, 70))["out"].shape == (2, 1, 50, 70)
    with pytest.raises(ValueError, match="6"):
        net(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="num_classes"):
        ClickNet(num_classes=3, pretrained=False)
    size_mb = sum(p.numel() for p in net.parameters()) * 4 / 1e6
    assert size_mb < 10


def test_session_encodes_once_and_split_equals_forward():
    torch.manual_seed(0)
    net = ClickNet(num_classes=1, pretrained=False).eval()
    calls = []
    net.encoder.register_forward_hook(lambda *_: calls.append(1))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (72, 90, 3), dtype=np.uint8)
    s = ClickSession(net, image)
    assert len(calls) == 1 and s.encoder_runs == 1
    p1 = s.probabilities([Click(30, 40, True)])
    prev = p1 > 0.5
    p2 = s.probabilities([Click(30, 40, True), Click(10, 10, False)], prev)
    assert len(calls) == 1  # the second click did not re-run the encoder
    assert p1.shape == p2.shape == (72, 90) and p1.dtype == np.float32
    assert not np.allclose(p1, p2)  # the click and the mask do reach the output
    # the cached split is the same computation as the one-shot forward
    from segstudio.data.transforms import to_model_input

    x = torch.cat([to_model_input(image)[None], torch.from_numpy(guidance_maps([Click(30, 40, True)], (72, 90)))[None]], 1)
    with torch.no_grad():
        ref = torch.sigmoid(net(x)["out"])[0, 0].numpy()
    np.testing.assert_allclose(p1, ref, atol=1e-5)
    with pytest.raises(ValueError):
        s.probabilities([])


def test_session_downscales_large_images():
    net = ClickNet(num_classes=1, pretrained=False).eval()
    image = np.zeros((100, 300, 3), np.uint8)
    s = ClickSession(net, image, max_side=150)
    assert s.work_shape == (50, 150)
    assert s.predict([Click(99, 299, True)], np.zeros((100, 300), bool)).shape == (100, 300)


def test_grabcut_from_clicks_finds_a_contrasting_object():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 40, (80, 80, 3), dtype=np.uint8)
    gt = _rect((80, 80), 25, 55, 25, 55)
    image[gt] = rng.integers(200, 255, (int(gt.sum()), 3), dtype=np.uint8)
    mask = grabcut_from_clicks(image, [Click(40, 40, True)])
    assert iou(mask, gt) > 0.8
    assert not grabcut_from_clicks(image, [Click(40, 40, False)]).any()  # no positive click: nothing
