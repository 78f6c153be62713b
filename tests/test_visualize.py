"""Evaluation pictures: error map colours, comparison panels, confusion-matrix image, evaluate --save-vis."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from segstudio.cli import main
from segstudio.core.labels import IGNORE_INDEX, ClassSpec
from segstudio.data.synth import SYNTH_CLASSES, generate_synth_dataset
from segstudio.engine.evaluate import CONFUSION_PNG, evaluate
from segstudio.io import find_samples, read_image, read_index_png
from segstudio.io.visualize import (
    comparison_panel,
    confusion_matrix_image,
    error_map,
    label_overlay,
)

CLASSES = ClassSpec(("a", "b", "c"), ((200, 0, 0), (0, 200, 0), (0, 0, 200)))


def _case():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    target = np.zeros((30, 40), np.uint8)
    target[:, 20:] = 1
    target[0:5] = IGNORE_INDEX
    pred = target.copy()
    pred[pred == IGNORE_INDEX] = 2
    pred[10:20, 5:15] = 2  # wrong
    return image, target, pred


def test_error_map_separates_correct_wrong_and_ignore():
    image, target, pred = _case()
    out = error_map(image, target, pred).astype(int)
    wrong = (pred != target) & (target != IGNORE_INDEX)
    correct = (pred == target) & (target != IGNORE_INDEX)
    ignore = target == IGNORE_INDEX
    r, g = out[..., 0], out[..., 1]
    assert (r[wrong] - g[wrong] > 120).all()  # red
    assert (g[correct] > r[correct]).all()  # green tint, whatever the grey below
    assert (out[ignore].max(1) < 90).all()  # dark
    # the three groups do not overlap in colour
    assert out[wrong][:, 0].min() > out[correct][:, 0].max()
    assert (out[ignore].max(1) == out[ignore].min(1)).all()  # neutral grey: neither green nor red
    with pytest.raises(ValueError, match="differ"):
        error_map(image, target, pred[:, :-1])


def test_comparison_panel_layout_small_images_are_enlarged():
    image, target, pred = _case()
    panel = comparison_panel(image, target, pred, CLASSES, title="x")
    scale = int(np.ceil(240 / 40))
    tile_w, tile_h = 40 * scale, 30 * scale
    assert panel.dtype == np.uint8 and panel.shape[1] == 4 * tile_w + 3 * 6
    top = 28 + 26  # title bar + tile header
    tiles = [panel[top : top + tile_h, k * (tile_w + 6) : k * (tile_w + 6) + tile_w] for k in range(4)]
    big = lambda a: np.kron(a, np.ones((scale, scale), a.dtype))  # noqa: E731
    np.testing.assert_array_equal(tiles[1], label_overlay(np.kron(image, np.ones((scale, scale, 1), np.uint8)), big(target), CLASSES))
    np.testing.assert_array_equal(tiles[3], error_map(np.kron(image, np.ones((scale, scale, 1), np.uint8)), big(target), big(pred)))
    headers = panel[28 : 28 + 26]
    assert (headers.min(2) < 100).sum() > 100, "header text is drawn"
    assert panel.shape[0] > top + tile_h + 10, "legend below the tiles"
    assert not np.array_equal(tiles[1], tiles[2])


def test_confusion_matrix_image_shades_by_row_fraction():
    mat = np.array([[90, 10, 0], [0, 0, 0], [30, 30, 40]])
    img = confusion_matrix_image(mat, ["sky", "road", "car"]).astype(int)
    assert img.dtype == np.int64 and img.ndim == 3
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        confusion_matrix_image(mat[:2], ["sky", "road", "car"])
    # the darkest cell (0.9) is much darker than a 0.1 cell; the empty row is flat grey
    blues = img[(img[..., 2] > img[..., 0] + 40)]
    assert blues.size, "blue cells are drawn"
    big = confusion_matrix_image(np.eye(30, dtype=int) * 5, [f"class {i}" for i in range(30)])
    assert big.shape[0] < 1100 and big.shape[1] < 1100


@pytest.fixture(scope="module")
def synth_ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "ds"
    generate_synth_dataset(root, n=8, size=(40, 48), seed=5)
    return root


class _OraclePredictor:
    """Predicts the ground truth, except one wrong block: a predictor whose errors are known."""

    def __init__(self, root):
        self.classes = SYNTH_CLASSES
        samples, _ = find_samples(root, "val")
        self.masks = {hashlib.sha1(read_image(s.image).tobytes()).hexdigest(): read_index_png(s.mask) for s in samples}

    def predict(self, image):
        pred = self.masks[hashlib.sha1(image.tobytes()).hexdigest()].copy()
        pred[pred == IGNORE_INDEX] = 0
        pred[0:8, 0:8] = 3
        return pred


def test_evaluate_save_vis_writes_the_panels_it_scored(synth_ds, tmp_path):
    predictor = _OraclePredictor(synth_ds)
    res = evaluate(predictor, synth_ds, "val", save_vis=tmp_path / "vis")
    samples, _ = find_samples(synth_ds, "val")
    names = sorted(p.name for p in (tmp_path / "vis").iterdir())
    assert names == sorted([f"{s.image.stem}.png" for s in samples] + [CONFUSION_PNG])
    s = samples[0]
    image, mask = read_image(s.image), read_index_png(s.mask)
    expect_pred = predictor.predict(image)
    saved = read_image(tmp_path / "vis" / f"{s.image.stem}.png")
    ref = comparison_panel(image, mask, expect_pred, SYNTH_CLASSES, title="t")
    assert saved.shape == ref.shape
    top = 28 + 26
    scale = int(np.ceil(240 / 48))
    err = saved[top : top + 40 * scale, 3 * (48 * scale + 6) :][: 8 * scale, : 8 * scale].reshape(-1, 3).astype(int)
    wrong_expected = ((mask[0:8, 0:8] != 3) & (mask[0:8, 0:8] != IGNORE_INDEX)).mean()
    red = ((err[:, 0] - err[:, 1]) > 120).mean()
    assert abs(red - wrong_expected) < 0.05
    cm = read_image(tmp_path / "vis" / CONFUSION_PNG)
    assert cm.shape[0] > 200 and cm.shape[1] > 200
    assert res["vis_dir"] == str(tmp_path / "vis") and res["miou"] < 1.0


def test_cli_evaluate_save_vis(synth_ds, tmp_path, capsys):
    import torch

    from segstudio.engine import save_checkpoint
    from segstudio.engine.checkpoint import new_card
    from segstudio.models import get_model

    torch.manual_seed(0)
    kw = {"depth": 1, "width": 4}
    ckpt = save_checkpoint(tmp_path / "ck", get_model("simple_cnn", SYNTH_CLASSES.num_classes, **kw).eval(),
                           new_card("simple_cnn", SYNTH_CLASSES, kw))
    rc = main(["evaluate", "--data", str(synth_ds), "--checkpoint", str(ckpt), "--device", "cpu",
               "-o", str(tmp_path / "m.json"), "--save-vis", str(tmp_path / "v")])
    assert rc == 0
    assert "confusion_matrix.png" in capsys.readouterr().out
    assert (tmp_path / "v" / CONFUSION_PNG).is_file()
    assert len(list((tmp_path / "v").glob("synth_*.png"))) == len(find_samples(synth_ds, "val")[0])
