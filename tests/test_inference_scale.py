"""Inference scale: a photo much larger than the model's training images is resized before predicting.

The bundled CamVid model learned 480×360 street scenes; on the same scene upscaled 2× its objects look twice
as large as anything it saw. Predicting at ``scale=0.5`` (or ``"auto"``, from the card's training image size)
must give the label map at the photo's size and a better mIoU against the (upscaled) ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main as cli_main
from segstudio.core.labels import IGNORE_INDEX
from segstudio.engine import Predictor, load_checkpoint
from segstudio.engine.predictor import parse_scale
from segstudio.io import read_image, read_index_png
from segstudio.metrics import ConfusionMatrix

NAME = "0001TP_008970.png"
"""A bundled sample no bundled model saw (CamVid test split), the one with the largest recorded gain."""
RECORD = Path(__file__).resolve().parents[1] / "docs" / "records" / "samples.json"
"""``python -m bench samples --record``: mIoU at scale 1 and 0.5 of every sample upscaled 2×."""
TOLERANCE = 0.02
"""How far this run may be from the record: the same weights on another BLAS / thread count flip a few pixels."""


def recorded() -> dict:
    """The record's scale-1 and scale-0.5 mIoU of NAME upscaled 2×."""
    return json.loads(RECORD.read_text())["results"]["inference_scale"]["per_image"][Path(NAME).stem]


@pytest.fixture(scope="module")
def upscaled(samples_dir):
    image = read_image(samples_dir / NAME)
    gt = read_index_png(samples_dir / "ground_truth" / NAME)
    h, w = gt.shape
    big = np.array(Image.fromarray(image).resize((2 * w, 2 * h), Image.BICUBIC))
    big_gt = np.array(Image.fromarray(gt).resize((2 * w, 2 * h), Image.NEAREST))
    return big, big_gt


def _miou(pred, gt, k):
    cm = ConfusionMatrix(k, ignore_index=IGNORE_INDEX)
    cm.update(gt, pred)
    return cm.miou


def test_scale_half_beats_scale_one_on_a_2x_photo(upscaled):
    loaded = load_checkpoint(None)
    big, gt = upscaled
    k = loaded.classes.num_classes
    plain = Predictor(loaded, device="cpu").predict(big)
    half = Predictor(loaded, device="cpu", scale=0.5).predict(big)
    auto = Predictor(loaded, device="cpu", scale="auto")
    assert plain.shape == half.shape == gt.shape and half.dtype == np.uint8
    assert auto.scale_for(*big.shape[:2]) == pytest.approx(0.5)  # card: trained on 360×480
    assert auto.scale_for(360, 480) == 1.0  # never shrinks images of the training size
    m1, m05 = _miou(plain, gt, k), _miou(half, gt, k)
    rec = recorded()
    assert rec["scale_0.5"] > rec["scale_1"] + 0.1, rec  # the record shows the gain this test is about
    assert m1 == pytest.approx(rec["scale_1"], abs=TOLERANCE) and m05 == pytest.approx(rec["scale_0.5"], abs=TOLERANCE)
    assert m05 > m1 + 0.1 - 2 * TOLERANCE, (m1, m05)
    proba = Predictor(loaded, device="cpu", scale=0.5).predict_proba(big)
    assert proba.shape == (k, *gt.shape) and np.allclose(proba.sum(0), 1, atol=1e-4)


def test_parse_scale_rejects_bad_values():
    assert parse_scale("auto") == "auto" and parse_scale("0.25") == 0.25
    for bad in ("0", "-1", "big", 5, float("nan")):
        with pytest.raises(ValueError, match="scale must be"):
            parse_scale(bad)


def test_cli_predict_scale(samples_dir, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    image = read_image(samples_dir / NAME)
    Image.fromarray(image).resize((960, 720)).save(src / NAME)
    assert cli_main(["predict", str(src), "-o", str(tmp_path / "out"), "--scale", "0.5", "--device", "cpu"]) == 0
    assert read_index_png(tmp_path / "out" / NAME).shape == (720, 960)
