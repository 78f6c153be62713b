"""scripts/export_bundled.py (issue 18): a model shipped on train+val carries its recipe's train-only val figure,
labelled as such, never as a val figure of its own; the card renders it, the ablation table and the notes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from segstudio.engine import load_checkpoint
from segstudio.engine.checkpoint import default_checkpoint
from helpers import load_script
from qt_helpers import show_window


def _eval(split="val", miou=0.703):
    return {"split": split, "images": 101, "miou": miou, "pixel_accuracy": 0.94, "mean_class_accuracy": 0.8,
            "iou": {"Sky": 0.938, "Pole": 0.068}, "f1": {"Sky": 0.96, "Pole": 0.12}, "confusion_matrix": [[1, 0], [0, 1]]}


def test_recipe_val_is_labelled_and_refuses_another_split_or_the_exported_run(tmp_path):
    exp = load_script("export_bundled")
    twin = tmp_path / "docs" / "twin-val.json"
    twin.parent.mkdir()
    twin.write_text(json.dumps(_eval()))
    ship = tmp_path / "run" / "model.safetensors"
    res = exp._recipe_val(twin, ship)
    assert res["miou"] == 0.703 and "confusion_matrix" not in res and "train only" in res["weights"]
    twin.write_text(json.dumps(_eval(split="test")))
    with pytest.raises(ValueError, match="--split val"):
        exp._recipe_val(twin, ship)
    own = tmp_path / "run" / "val_metrics.json"
    own.parent.mkdir()
    own.write_text(json.dumps(_eval()))
    with pytest.raises(ValueError, match="not the exported checkpoint"):
        exp._recipe_val(own, ship)


def test_card_of_a_train_plus_val_model_shows_the_recipe_figure_ablation_and_notes(tmp_path):
    exp = load_script("export_bundled")
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"0" * 1000)
    card = {"name": "m", "architecture": "deeplabv3plus", "model_kwargs": {}, "num_parameters": 2.7e6,
            "weights_dtype": "float16", "normalization": {"mean": [0.5] * 3, "std": [0.2] * 3},
            "encoder_pretrained": True, "training": {"epochs_done": 24, "steps_done": 1392, "config": {}},
            "classes": [{"id": 0, "name": "Sky", "color": [128, 128, 128]}, {"id": 1, "name": "Pole", "color": [192, 192, 128]}],
            "metrics": {"val_recipe": {**_eval(), "weights": "the same recipe trained on train only"}}}
    ablation = {"base": {"miou": 0.626, "iou": {"Sky": 0.93, "Pole": 0.059}, "minutes": 19.5, "device": "cpu",
                         "curve": [[24, 0.626]], "seconds_per_step": 0.99, "flags": {"crop_size": [180, 240]}},
                "full_res": {"miou": 0.703, "iou": {"Sky": 0.94, "Pole": 0.068}, "minutes": 107.3, "device": "cpu",
                             "curve": [[24, 0.703]], "seconds_per_step": 5.86, "flags": {"crop_size": [360, 480]}}}
    md = exp.markdown(card, weights, 0.3, "scripts/train_default_camvid.sh", "CamVid train+val", ablation, "- a note\n")
    assert "(model selection)" not in md, "no val figure of its own"
    assert "trained on train only, scored on val" in md and "mIoU **70.30**" in md and "| 0 | Sky | (128, 128, 128) | 93.8 | 96.0 |" in md
    assert "they have no val figure of their own" in md
    assert "| full_res | `--crop-size 360,480` | 70.3 | +7.7 | 70.3 (24) | Pole 6.8, Sky 94.0 | 107.3 (cpu, 5.86) |" in md
    assert md.rstrip().endswith("## Notes\n\n- a note")


def test_model_panel_labels_a_recipe_figure_as_the_recipes(qtbot):
    loaded = load_checkpoint(default_checkpoint())
    win = show_window(qtbot, loaded, active=False)
    label = win.model_panel.model_combo.currentText()
    win.model_panel.show_model(replace(loaded, card={**loaded.card, "metrics": {"val_recipe": {"miou": 0.703}}}), label)
    assert "recipe val mIoU 70.3 (trained on train only)" in win.model_panel.info.text()
    win.model_panel.show_model(replace(loaded, card={**loaded.card, "metrics": {"val": {"miou": 0.633}}}), label)
    text = win.model_panel.info.text()
    assert "val mIoU 63.3" in text and "recipe" not in text
