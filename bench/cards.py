"""The cheap figures the README and the bundled model cards state about the shipped weights, re-measured.

``python -m bench cards [--record]`` (``--record`` writes ``docs/records/cards.json``).

Per bundled model: the weights file's size (MB, 10^6 bytes), its parameter count and weight dtype, and the median
CPU latency of one image of its card's ``latency_input_size`` (current torch threads; a loaded machine's ms). For
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


def _latency(loaded, size: tuple[int, int], runs: int = 7) -> dict:
    """Median ms of one ``Predictor.predict`` of a random ``size`` image on the CPU (after one warm-up call)."""
    import statistics
    import time

    import numpy as np

    from segstudio.engine import Predictor

    pred = Predictor(loaded, device="cpu")
    img = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    pred.predict(img)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        pred.predict(img)
        times.append(1000 * (time.perf_counter() - t))
    return {"latency_size": list(size), "cpu_latency_ms_median": round(statistics.median(times), 1), "latency_runs": runs}


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
                     "weights_dtype": loaded.card.get("weights_dtype"),
                     **_latency(loaded, tuple(loaded.card.get("latency_input_size") or (360, 480)))}
        print(name, res[name], flush=True)
    test = evaluate(Predictor(load_checkpoint(DEFAULT_MODEL_DIR / "isbi2012_unet.safetensors"), device="cpu"), ISBI, "test")
    res["isbi2012_unet"]["test"] = {"images": test["images"], "pixel_error": round(1 - test["pixel_accuracy"], 4),
                                    "miou": round(test["miou"], 4),
                                    "iou": {k: round(v, 4) for k, v in test["iou"].items()}}
    print("isbi2012_unet test", res["isbi2012_unet"]["test"], flush=True)
    if getattr(args, "record", False):
        path = write_record("cards", res, script="python -m bench cards",
                            models=[model_entry(n, DEFAULT_MODEL_DIR / f"{n}.safetensors") for n in MODELS],
                            notes=" ".join(x for x in (getattr(args, "notes", ""), "CPU; sizes from the files, parameters from "
                                  "the loaded modules; the ISBI test prediction is deterministic (load does not change "
                                  "it); latencies do depend on the load") if x))
        print(f"wrote {path}")
    return res
