"""The cheap figures the README and the bundled model cards state about the shipped weights, re-measured.

``python -m bench cards [--record]`` (``--record`` writes ``docs/records/cards.json``).

Per bundled model: the weights file's size (MB, 10^6 bytes), its parameter count and weight dtype. For
``isbi2012_unet``, its test-split figures (``segstudio evaluate`` of the 5 ISBI-2012 test slices in ``../shared``,
never used for training or selection): pixel error, membrane IoU, mIoU. The CamVid default model has no figure of
its own on a CamVid split (it trained on train+val; test is withheld): its figures on unseen images are the
samples' (``python -m bench samples``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGSTUDIO_SHARED", REPO.parent / "shared"))
ISBI = SHARED / "datasets" / "isbi2012_membrane"
MODELS = ("camvid_deeplabv3plus_mobilenetv2", "isbi2012_unet")


def run(args) -> dict:
    """Measure sizes, parameter counts and the ISBI test figures; with ``--record`` write the record."""
    from bench._record import model_entry, write_record
    from segstudio.engine import Predictor, load_checkpoint
    from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR
    from segstudio.engine.evaluate import evaluate

    res = {}
    for name in MODELS:
        path = DEFAULT_MODEL_DIR / f"{name}.safetensors"
        loaded = load_checkpoint(path)
        res[name] = {"size_mb": round(path.stat().st_size / 1e6, 2),
                     "parameters": sum(p.numel() for p in loaded.model.parameters()),
                     "weights_dtype": loaded.card.get("weights_dtype")}
        print(name, res[name], flush=True)
    test = evaluate(Predictor(load_checkpoint(DEFAULT_MODEL_DIR / "isbi2012_unet.safetensors"), device="cpu"), ISBI, "test")
    res["isbi2012_unet"]["test"] = {"images": test["images"], "pixel_error": round(1 - test["pixel_accuracy"], 4),
                                    "miou": round(test["miou"], 4),
                                    "iou": {k: round(v, 4) for k, v in test["iou"].items()}}
    print("isbi2012_unet test", res["isbi2012_unet"]["test"], flush=True)
    if getattr(args, "record", False):
        path = write_record("cards", res, script="python -m bench cards",
                            models=[model_entry(n, DEFAULT_MODEL_DIR / f"{n}.safetensors") for n in MODELS],
                            notes="CPU; sizes from the files, parameters from the loaded modules; the ISBI test "
                                  "prediction is deterministic, so the shared machine's load does not change it")
        print(f"wrote {path}")
    return res
