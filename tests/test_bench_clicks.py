"""``python -m bench clicks``: a second model in the same run, and the labelling session with adaptation (issue 34)."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from bench import clicks


def _dataset(root, n=3, size=64):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    stems = [f"im{i}" for i in range(n)]
    for i, s in enumerate(stems):
        lab = np.zeros((size, size), np.uint8)
        lab[12:40, 10 + 3 * i:36 + 3 * i] = 1
        img = (rng.integers(0, 50, (size, size, 3)) + 150 * lab[..., None]).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"{s}.png"), img[:, :, ::-1])
        cv2.imwrite(str(root / "masks" / f"{s}.png"), lab)
    (root / "val.txt").write_text("\n".join(stems) + "\n")
    (root / "classes.json").write_text(json.dumps([{"id": 0, "name": "background", "color": [0, 0, 0]},
                                                   {"id": 1, "name": "thing", "color": [255, 0, 0]}]))
    return root


def _args(*extra):
    return argparse.Namespace(extra=list(extra), record=False, notes="")


def test_compare_model_runs_in_the_same_run(tmp_path):
    from segstudio.engine.click.session import default_click_model_path

    root = _dataset(tmp_path / "toy")
    out = clicks.run(_args("--data", str(root), "--split", "val", "--max-clicks", "3", "--methods", "clicknet",
                           "--compare-model", str(default_click_model_path()), "--classes", "thing"))
    assert set(out["methods"]) == {"clicknet", "clicknet_b"}
    assert out["methods"]["clicknet"]["NoC@85"] == out["methods"]["clicknet_b"]["NoC@85"]  # the same model twice
    assert out["objects"] == 3


def test_session_adapts_between_images_and_reports_blocks(tmp_path):
    root = _dataset(tmp_path / "toy")
    out = clicks.run(_args("--data", str(root), "--split", "val", "--session", "--session-images", "3",
                           "--per-image", "1", "--adapt-steps", "2", "--max-clicks", "3"))
    assert out["session_images"] == 3 and len(out["images"]) == 3
    assert len(out["blocks"]) == 1 and out["blocks"][0]["images"] == "1-3"
    for r in out["images"]:
        assert len(r["adapted"]) == len(r["base"]) == r["objects"] == 1
        assert all(1 <= v <= 3 for pair in r["adapted"] + r["base"] for v in pair)
    assert out["images"][0]["adapted"] == out["images"][0]["base"]  # nothing adapted before the first image
    assert out["adapt_seconds_median"] is not None


def test_per_class_noc_is_reported(tmp_path):
    root = _dataset(tmp_path / "toy")
    out = clicks.run(_args("--data", str(root), "--split", "val", "--max-clicks", "2", "--methods", "grabcut"))
    assert set(out["per_class"]) == {"background", "thing"}
    assert out["per_class"]["thing"]["grabcut"]["n"] == 3
    n = sum(row["grabcut"]["n"] for row in out["per_class"].values())
    mean = sum(row["grabcut"]["NoC@85"] * row["grabcut"]["n"] for row in out["per_class"].values()) / n
    assert abs(mean - out["methods"]["grabcut"]["NoC@85"]) < 1e-9


def test_session_adapts_after_each_object_like_the_gui(tmp_path):
    """The session follows the GUI's policy (engine.click.adapt_policy): an adaptation after every finished object
    on the most recent ``--adapt-keep`` objects; ``--adapt-every image`` adapts once per image instead."""
    from segstudio.engine.click import adapt_policy

    root = _dataset(tmp_path / "toy")
    common = ("--data", str(root), "--split", "val", "--session", "--session-images", "3", "--per-image", "2",
              "--adapt-steps", "1", "--max-clicks", "2")
    out = clicks.run(_args(*common, "--adapt-keep", "1"))
    objects = sum(r["objects"] for r in out["images"])
    assert objects == 6 and out["adaptations"] == objects - 1  # none after the last object
    assert out["adapt_every"] == "object" and out["adapt_keep"] == 1
    out = clicks.run(_args(*common, "--adapt-every", "image"))
    assert out["adaptations"] == 2 and out["adapt_keep"] == adapt_policy.KEEP_OBJECTS


def test_boundary_shift_bounds_thin_objects_and_spares_wide_ones():
    """A 1-px outline shift takes a 3-px line far below IoU 0.85 and leaves a 60-px disk above it; widths follow."""
    import pytest

    from segstudio.engine.click.protocol import boundary_shift_iou, structure_width

    line = np.zeros((64, 64), bool)
    line[10:50, 30:33] = True  # 40 x 3 px
    grown, shrunk = boundary_shift_iou(line)
    assert grown == pytest.approx(120 / (42 * 5)) and shrunk == pytest.approx(38 / 120)
    assert structure_width(line) == pytest.approx(3.0)
    yy, xx = np.mgrid[:128, :128]
    disk = (yy - 64) ** 2 + (xx - 64) ** 2 < 30 ** 2
    assert min(boundary_shift_iou(disk)) > 0.9 and 55 <= structure_width(disk) <= 61
    ignore = np.zeros_like(line)
    ignore[:, 33:] = True  # the grown pixels right of the line do not count
    assert boundary_shift_iou(line, ignore)[0] > grown
    with pytest.raises(ValueError):
        boundary_shift_iou(line, px=0)
    with pytest.raises(ValueError):
        structure_width(np.zeros((8, 8), bool))


def test_boundary_mode_reports_each_class_without_a_model(tmp_path):
    root = _dataset(tmp_path / "toy")
    out = clicks.run(_args("--data", str(root), "--split", "val", "--boundary"))
    assert out["objects"] == 6 and set(out["per_class"]) == {"background", "thing"}
    thing = out["per_class"]["thing"]
    assert thing["n"] == 3 and 20 <= thing["width_px_median"] <= 30  # 28 x 26 px boxes
    assert 0.85 < thing["iou_shrunk_1px_mean"] < thing["iou_grown_1px_mean"] < 1
    assert thing["below_85_either"] == 0 and len(out["objects_list"]) == 6


def test_boundary_mode_over_a_session_gives_each_blocks_floor(tmp_path):
    root = _dataset(tmp_path / "toy", n=3)
    lab = np.zeros((64, 64), np.uint8)
    lab[5:60, 40:42] = 1  # a 2-px line: a 1-px shift takes it below 0.85 both ways
    cv2.imwrite(str(root / "masks" / "im2.png"), lab)
    out = clicks.run(_args("--data", str(root), "--split", "val", "--boundary", "--session", "--per-image", "1",
                           "--classes", "thing", "--max-clicks", "20"))
    assert out["session_images"] == 3 and out["objects"] == 3
    (block,) = out["blocks"]
    assert block["images"] == "1-3" and block["objects"] == 3 and block["thin"] == 1
    assert block["noc85_floor"] == round((20 + 2) / 3, 4)
