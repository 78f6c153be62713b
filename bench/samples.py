"""The bundled samples: what the shipped models score on them, and the inference-scale check on photos 2× larger.

``python -m bench samples [--record]`` (``--record`` writes ``docs/records/samples.json``).

1. **Unseen**: the CamVid samples (``resources/samples/*.png``) must be images no bundled model trained or
   selected a checkpoint on. Checked by content (SHA-1, the key the model cards use) against every CamVid train and
   val image in ``../shared`` (the default model trained on train+val, the click model on train) and against the
   default model's card, and by name against CamVid's ``train.txt`` / ``val.txt``.
2. **mIoU on the samples**: every bundled segmentation model on its sample folder (CamVid: the six frames; ISBI-2012:
   ``isbi2012/``), whole images on the CPU, one confusion matrix over the folder (ignore 255), and per image.
   ``tests/test_bundled_models.py`` takes its floors from this record.
3. **Inference scale** (issue 19): each CamVid sample upscaled 2× (bicubic; ground truth nearest) and predicted as is
   (``scale=1``) and at ``scale=0.5`` (what ``scale="auto"`` picks from the card's 360×480 training size); mIoU
   against the upscaled ground truth. ``tests/test_inference_scale.py`` takes its expected gain from this record.

Predictions are deterministic on one machine (no timing is involved), so load does not change these figures.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGSTUDIO_SHARED", REPO.parent / "shared"))
CAMVID = SHARED / "datasets" / "camvid"
SAMPLES = REPO / "resources" / "samples"
SAMPLE_FOLDERS = {"camvid_deeplabv3plus_mobilenetv2": ".", "isbi2012_unet": "isbi2012"}
"""Bundled model -> its sample folder under ``resources/samples``."""


def camvid_samples() -> list[Path]:
    """The bundled CamVid sample images, sorted by name."""
    return sorted(SAMPLES.glob("*.png"))


def seen_check() -> dict:
    """Which CamVid samples a bundled model saw: by content against CamVid train+val and the default card, and by name."""
    import json

    from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR
    from segstudio.engine.heldout import file_sha1

    stems = {s for split in ("train", "val") for s in (CAMVID / f"{split}.txt").read_text().split()}
    seen_sha = {file_sha1(p) for p in (CAMVID / "images").glob("*.png") if p.stem in stems}
    card = json.loads((DEFAULT_MODEL_DIR / "camvid_deeplabv3plus_mobilenetv2.json").read_text())
    td = card["training_data"]
    seen_sha |= set(td.get("image_sha1") or []) | set(td.get("val_image_sha1") or [])
    per = {p.name: {"sha1": file_sha1(p), "in_camvid_train_or_val_by_name": p.stem in stems} for p in camvid_samples()}
    for v in per.values():
        v["in_camvid_train_or_val_or_card_by_content"] = v["sha1"] in seen_sha
    return {"images": per, "camvid_train_val_images_checked": len(stems),
            "any_seen": any(v["in_camvid_train_or_val_by_name"] or v["in_camvid_train_or_val_or_card_by_content"] for v in per.values())}


def _miou(pred, gt, k: int) -> float:
    from segstudio.metrics import ConfusionMatrix

    cm = ConfusionMatrix(k)
    cm.update(gt, pred)
    return cm.miou


def samples_miou() -> dict:
    """Each bundled segmentation model's mIoU / pixel accuracy on its sample folder, overall and per image."""
    from segstudio.engine import Predictor, load_checkpoint
    from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR
    from segstudio.io import read_image, read_index_png
    from segstudio.metrics import ConfusionMatrix

    out = {}
    for name, folder in SAMPLE_FOLDERS.items():
        loaded = load_checkpoint(DEFAULT_MODEL_DIR / f"{name}.safetensors")
        pred = Predictor(loaded, device="cpu")
        k = loaded.classes.num_classes
        cm = ConfusionMatrix(k)
        per = {}
        for p in sorted((SAMPLES / folder).glob("*.png")):
            gt = read_index_png(SAMPLES / folder / "ground_truth" / p.name)
            lab = pred.predict(read_image(p))
            cm.update(gt, lab)
            per[p.name] = round(_miou(lab, gt, k), 4)
            print(f"{name} {p.name}: mIoU {per[p.name]:.3f}", flush=True)
        out[name] = {"folder": folder, "images": len(per), "miou": round(cm.miou, 4),
                     "pixel_accuracy": round(cm.pixel_accuracy, 4), "per_image_miou": per}
        print(f"{name}: mIoU {cm.miou:.4f} over {len(per)} images, pixel accuracy {cm.pixel_accuracy:.4f}", flush=True)
    return out


def inference_scale() -> dict:
    """Per CamVid sample upscaled 2×: mIoU at ``scale=1`` and ``scale=0.5`` against the upscaled ground truth."""
    import numpy as np
    from PIL import Image

    from segstudio.engine import Predictor, load_checkpoint
    from segstudio.io import read_image, read_index_png

    loaded = load_checkpoint(None)
    k = loaded.classes.num_classes
    plain, half = Predictor(loaded, device="cpu"), Predictor(loaded, device="cpu", scale=0.5)
    auto = Predictor(loaded, device="cpu", scale="auto")
    rows = {}
    for p in camvid_samples():
        image, gt = read_image(p), read_index_png(SAMPLES / "ground_truth" / p.name)
        h, w = gt.shape
        big = np.array(Image.fromarray(image).resize((2 * w, 2 * h), Image.BICUBIC))
        big_gt = np.array(Image.fromarray(gt).resize((2 * w, 2 * h), Image.NEAREST))
        rows[p.stem] = {"scale_1": round(_miou(plain.predict(big), big_gt, k), 4),
                        "scale_0.5": round(_miou(half.predict(big), big_gt, k), 4)}
        print(f"inference scale {p.stem}: {rows[p.stem]}", flush=True)
    return {"upscale": 2, "auto_scale_for_2x": auto.scale_for(2 * h, 2 * w), "per_image": rows,
            "min_gain": round(min(r["scale_0.5"] - r["scale_1"] for r in rows.values()), 4)}


def run(args) -> dict:
    """Measure all three; with ``--record`` write ``docs/records/samples.json``."""
    from bench._record import model_entry, write_record
    from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR

    if not (CAMVID / "train.txt").is_file():
        raise FileNotFoundError(f"CamVid not found at {CAMVID}; set SEGSTUDIO_SHARED")
    res = {"unseen": seen_check()}
    if res["unseen"]["any_seen"]:
        print("WARNING: a bundled sample is a CamVid train/val image (a bundled model saw it)", flush=True)
    res["miou"] = samples_miou()
    res["inference_scale"] = inference_scale()
    if getattr(args, "record", False):
        models = [model_entry(n, DEFAULT_MODEL_DIR / f"{n}.safetensors") for n in SAMPLE_FOLDERS]
        path = write_record("samples", res, script="python -m bench samples", models=models,
                            notes="CPU, whole images; predictions are deterministic, so the shared machine's load "
                                  "does not change the figures")
        print(f"wrote {path}")
    return res
