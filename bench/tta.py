"""Horizontal-flip test-time augmentation (``Predictor(tta=True)``, ``segstudio predict --tta``): cost and gain.

The baseline is the same :class:`~segstudio.engine.Predictor` without TTA, in the same run, on the same images:
the first N (``--images N``, default 20; ``--quick``: 5) images of CamVid ``val.txt`` (360×480, 11 classes, ignore 255) and the bundled default model.
Per image the two are timed back to back, their order alternating from image to image so that machine load
hits both alike; ms/image is the median, the ratio is TTA / plain of the total times.

Quality: mIoU and pixel accuracy on those images of the plain prediction, of TTA (the predictor's merge: mean of
the logits) and of the other common merge, the mean of the two softmax probabilities (computed here from the
plain pass and an extra, untimed mirrored pass; mmsegmentation's flip TTA merges this way). The TTA logits are
checked against the hand-computed mean of the two passes.

``--samples`` scores the bundled CamVid samples instead (six CamVid test frames no bundled model trained or selected
on: a held-out figure for the shipped weights, on few images). ``--record`` (the dispatcher's) writes
``docs/records/tta-<samples|val>.json`` with the model's SHA-256.

``python -m bench tta [--images N | --samples] [--checkpoint PATH] [--quick] [--device cpu] [--record]``; data from ``$SEGSTUDIO_SHARED``
or ``../shared`` beside the repo. Since 2026-12-05 the bundled default model trains on CamVid train+val, so its
val figures here are figures on its own training images (the run says so): for quality, pass the same recipe
trained on train only (``--checkpoint runs/camvid_recipe/full_res/model.safetensors``); the timing holds either way.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGSTUDIO_SHARED", REPO.parent / "shared"))
CAMVID = SHARED / "datasets" / "camvid"
N_IMAGES = 20


def _stems(n: int) -> list[str]:
    return (CAMVID / "val.txt").read_text().split()[:n]


def _pairs(n: int, samples: bool) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) of the first ``n`` CamVid val images, or of every bundled CamVid sample."""
    if samples:
        root = REPO / "resources" / "samples"
        return [(p.stem, p, root / "ground_truth" / p.name) for p in sorted(root.glob("*.png"))]
    return [(s, CAMVID / "images" / f"{s}.png", CAMVID / "masks" / f"{s}.png") for s in _stems(n)]


def _options(args) -> tuple[int, str | None]:
    """(number of val images, checkpoint path or ``None`` for the bundled default) from the bench's extra args."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench tta")
    p.add_argument("--images", type=int, default=N_IMAGES, help=f"first N images of CamVid val.txt (default {N_IMAGES})")
    p.add_argument("--checkpoint", help="model to measure (default: the bundled default model)")
    p.add_argument("--samples", action="store_true", help="the bundled CamVid samples (unseen test frames) instead of val")
    ns = p.parse_args(list(getattr(args, "extra", []) or []))
    if ns.images < 1:
        p.error(f"--images must be >= 1, got {ns.images}")
    args.tta_samples = ns.samples
    return (5 if getattr(args, "quick", False) else ns.images), ns.checkpoint


def run(args) -> dict:
    import torch

    from segstudio.engine import Predictor, load_checkpoint
    from segstudio.engine.checkpoint import default_checkpoint
    from segstudio.io import read_image, read_index_png
    from segstudio.metrics import ConfusionMatrix

    if not (CAMVID / "val.txt").is_file():
        raise FileNotFoundError(f"CamVid not found at {CAMVID}; set SEGSTUDIO_SHARED")
    n, checkpoint = _options(args)
    device = getattr(args, "device", "auto")
    loaded = load_checkpoint(checkpoint)
    trained_on_val = "val" in (loaded.card.get("training_data") or {}).get("splits", [])
    samples = getattr(args, "tta_samples", False)
    if trained_on_val and not samples:
        print("note: this model trained on CamVid val: its mIoU below is on its own training images; pass "
              "--checkpoint with the recipe trained on train only for a val figure", flush=True)
    plain = Predictor(loaded, device=device)
    tta = Predictor(loaded, device=device, tta=True)
    k = loaded.classes.num_classes
    pairs = _pairs(n, samples)
    n, stems = len(pairs), [s for s, _, _ in pairs]

    warm = read_image(pairs[0][1])
    plain.predict_logits([warm]), tta.predict_logits([warm])  # preparation and first-call costs out of the timings

    cms = {name: ConfusionMatrix(k) for name in ("plain", "tta (logit mean)", "tta (probability mean)")}
    times: dict[str, list[float]] = {"plain": [], "tta": []}
    max_dev = 0.0
    for i, (stem, image_path, mask_path) in enumerate(pairs):
        image = read_image(image_path)
        target = read_index_png(mask_path)
        order = ("plain", "tta") if i % 2 == 0 else ("tta", "plain")
        out = {}
        for name in order:
            pred = plain if name == "plain" else tta
            t = time.perf_counter()
            out[name] = pred.predict_logits([image])[0]
            times[name].append(time.perf_counter() - t)
        z1, zt = out["plain"], out["tta"]
        z2 = plain.predict_logits([np.ascontiguousarray(image[:, ::-1])])[0].flip(-1)  # untimed
        max_dev = max(max_dev, float((zt - (z1 + z2) / 2).abs().max()))
        cms["plain"].update(target, z1.argmax(0).numpy().astype(np.uint8))
        cms["tta (logit mean)"].update(target, zt.argmax(0).numpy().astype(np.uint8))
        p = torch.softmax(z1, 0) + torch.softmax(z2, 0)
        cms["tta (probability mean)"].update(target, p.argmax(0).numpy().astype(np.uint8))
        print(f"  {i + 1:>2}/{n} {stem}: plain {1000 * times['plain'][-1]:7.1f} ms  tta {1000 * times['tta'][-1]:7.1f} ms",
              flush=True)

    med = {name: statistics.median(v) for name, v in times.items()}
    ratio = sum(times["tta"]) / sum(times["plain"])
    where = f"the {n} bundled CamVid samples" if samples else f"CamVid val, first {n} images of val.txt"
    print(f"{where} (360x480), {loaded.path or 'bundled default model'}, device {plain.device}, "
          f"{torch.get_num_threads()} threads:")
    print(f"  plain  median {1000 * med['plain']:8.1f} ms/image")
    print(f"  --tta  median {1000 * med['tta']:8.1f} ms/image   ratio (total time) {ratio:.2f}x")
    quality = {}
    for name, cm in cms.items():
        quality[name] = {"miou": cm.miou, "pixel_accuracy": cm.pixel_accuracy,
                         "iou": dict(zip(loaded.classes.names, map(float, cm.iou)))}
        print(f"  {name:<24} mIoU {100 * cm.miou:6.2f}  pixel acc {100 * cm.pixel_accuracy:6.2f}")
    print(f"  TTA logits vs the hand-computed mean of the two passes: max |diff| {max_dev:.2e}")
    res = {
        "data": "bundled samples" if samples else "CamVid val",
        "images": n,
        "stems": stems,
        "checkpoint": str(loaded.path) if loaded.path else None,
        "trained_on_val": trained_on_val,
        "device": str(plain.device),
        "median_ms": {k_: 1000 * v for k_, v in med.items()},
        "ratio": ratio,
        "quality": quality,
        "max_abs_diff_to_hand_mean": max_dev,
    }
    if getattr(args, "record", False):
        from bench._record import model_entry, write_record

        weights = loaded.path or default_checkpoint()
        path = write_record("tta-samples" if samples else "tta-val", res, script="python -m bench tta",
                            models=[model_entry(loaded.card.get("name") or Path(weights).stem, weights)],
                            notes=getattr(args, "notes", "") or "")
        print(f"wrote {path}")
    return res
