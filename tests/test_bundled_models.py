"""Every bundled model loads offline, predicts on the bundled samples, and is as good as its card says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segstudio.engine import Predictor, load_checkpoint
from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, default_checkpoint
from segstudio.io import load_classes, read_image, read_index_png
from segstudio.metrics import ConfusionMatrix

BUNDLED = sorted(DEFAULT_MODEL_DIR.glob("*.safetensors"))
REPO = Path(__file__).resolve().parents[1]
SAMPLES_RECORD = REPO / "docs" / "records" / "samples.json"
"""``python -m bench samples --record``: each bundled model's mIoU on its bundled samples, with the weights' SHA-256."""

FLOOR_MARGIN = 0.03
"""A sample floor is the recorded mIoU minus this margin: the prediction is deterministic on one machine, but another
BLAS / thread count / torch build flips a few boundary pixels (a few 0.001 of mIoU on 2-6 images); a real
regression of the weights or the predictor moves it by more."""


def _samples_record() -> dict:
    return json.loads(SAMPLES_RECORD.read_text())


def _floor(name: str) -> tuple[str, float]:
    """(sample folder, mIoU floor) of a bundled model, from the record of the weights shipped now."""
    from bench._record import sha256_file

    record = _samples_record()
    shipped = {m["name"]: m["sha256"] for m in record["models"]}
    assert name in record["results"]["miou"], f"{name}: run `python -m bench samples --record` (no samples figure)"
    assert shipped[name] == sha256_file(DEFAULT_MODEL_DIR / f"{name}.safetensors"), (
        f"{name}: {SAMPLES_RECORD.name} measured other weights; re-run `python -m bench samples --record`")
    res = record["results"]["miou"][name]
    return res["folder"], res["miou"] - FLOOR_MARGIN


def test_default_model_is_bundled_and_small():
    path = default_checkpoint()
    assert path.is_file()
    assert path.stat().st_size <= 10 * 1024 * 1024, "bundled models must stay <= 10 MB"
    card = json.loads(path.with_suffix(".json").read_text())
    if "val" in card["training_data"].get("splits", ["train"]):
        # issue 18: shipped on train+val, so its only val figure is the same recipe trained on train only
        assert "val" not in card["metrics"], "a model that trained on val must not report a val figure of its own"
        recipe_val = card["metrics"]["val_recipe"]
        assert recipe_val["split"] == "val" and recipe_val["images"] == 101 and "train only" in recipe_val["weights"]
        assert recipe_val["miou"] >= 0.68, "issue 18: the shipped recipe reaches CamVid val mIoU >= 68 on train only"
        assert card["training"]["config"]["crop_size"] == [360, 480]
    else:
        assert card["metrics"]["val"]["miou"] >= 0.45, "issue 3: the default model reaches CamVid val mIoU >= 45"
    assert path.with_suffix(".md").is_file(), "each bundled model has a Markdown card"


@pytest.mark.parametrize("weights", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_model_predicts_samples_above_floor(weights: Path, samples_dir: Path):
    folder, floor = _floor(weights.stem)
    samples_dir = samples_dir / folder
    loaded = load_checkpoint(weights)
    gt_dir = samples_dir / "ground_truth"
    classes = load_classes(gt_dir / "classes.json")
    assert loaded.classes.names == classes.names
    predictor = Predictor(loaded, device="cpu")
    cm = ConfusionMatrix(classes.num_classes)
    images = sorted(samples_dir.glob("*.png"))
    assert len(images) >= 2
    for p in images:
        image = read_image(p)
        gt = read_index_png(gt_dir / p.name)
        pred = predictor.predict(image)
        assert pred.shape == gt.shape and pred.max() < classes.num_classes
        cm.update(gt, pred)
    assert cm.miou >= floor, f"{weights.stem}: sample mIoU {cm.miou:.3f} below the recorded one minus {FLOOR_MARGIN} ({floor:.3f})"
    assert cm.pixel_accuracy >= 0.8


def test_isbi_model_card_reports_test_pixel_error():
    card = json.loads((DEFAULT_MODEL_DIR / "isbi2012_unet.json").read_text())
    test = card["metrics"]["test"]
    assert test["images"] == 5 and test["split"] == "test"
    assert abs(test["pixel_error"] - (1 - test["pixel_accuracy"])) < 1e-9
    assert test["pixel_error"] < 0.10 and test["iou"]["membrane"] > 0.6
    assert (DEFAULT_MODEL_DIR / "isbi2012_unet.safetensors").stat().st_size <= 10 * 1024 * 1024


def test_camvid_samples_are_images_no_bundled_model_saw(camvid, samples_dir):
    """Issue 30: the samples a new user sees first are not training or validation images of any bundled model.

    The default model trained on CamVid train+val and the click model on CamVid train: no sample may equal one of
    those images by content (SHA-1, the cards' key) or by name, nor a content key in the default model's card.
    """
    from segstudio.engine.heldout import file_sha1

    samples = sorted(samples_dir.glob("*.png"))
    assert len(samples) == 6
    stems = {s for split in ("train", "val") for s in (camvid / f"{split}.txt").read_text().split()}
    seen = {file_sha1(camvid / "images" / f"{s}.png") for s in stems}
    card = json.loads(default_checkpoint().with_suffix(".json").read_text())
    seen |= set(card["training_data"]["image_sha1"]) | set(card["training_data"].get("val_image_sha1") or [])
    assert len(card["training_data"]["image_sha1"]) == 468  # the card lists its 367 + 101 training images
    for p in samples:
        assert p.stem not in stems and file_sha1(p) not in seen, f"{p.name} is a CamVid train/val image"
        assert (samples_dir / "ground_truth" / p.name).is_file()
    recorded = _samples_record()["results"]["unseen"]
    assert recorded["any_seen"] is False and sorted(recorded["images"]) == [p.name for p in samples]
