"""P6: dense CRF through :func:`segstudio.postprocess.dense_crf` vs calling pydensecrf2 directly.

Goal (issue 9, P6): DenseCRF on a 480×360 CamVid val image, 11 classes, 5 mean-field iterations, through our
API in at most 1.1× the time of the same direct pydensecrf2 call. Both run on the same image and the bundled
default model's softmax probabilities, interleaved (ours, direct, ours, ...) so machine load hits both alike;
the median of the repeats is reported. The outputs are also checked to be identical.

A quality section follows: CamVid val mIoU of the bundled model on evenly spaced val images with no
post-processing, with the CRF (DeepLab v2 defaults, :class:`~segstudio.postprocess.CRFParams`), and with
morphology, plus the CRF time per image.

``python -m bench crf [--quick]``; data from ``$SEGSTUDIO_SHARED`` or ``../shared`` beside the repo.
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
ITERATIONS = 5
MORPH_SPEC = "min-area=64,open=3,close=3,fill-holes=256"


RECORD_MODELS = ("camvid_deeplabv3plus_mobilenetv2",)
"""Bundled models whose weights these figures depend on (``python -m bench crf --record`` names them)."""

def _direct(image: np.ndarray, probs: np.ndarray, iterations: int) -> np.ndarray:
    """The baseline: pydensecrf2 as its README shows, DeepLab v2 parameters, no checks."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    k, h, w = probs.shape
    d = dcrf.DenseCRF2D(w, h, k)
    d.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs)))
    d.addPairwiseGaussian(sxy=1, compat=3)
    d.addPairwiseBilateral(sxy=67, srgb=3, rgbim=image, compat=4)
    return np.array(d.inference(iterations)).reshape(k, h, w)


def _val_stems(n: int) -> list[str]:
    stems = (CAMVID / "val.txt").read_text().split()
    step = max(1, len(stems) // n)
    return stems[::step][:n]


def run(args) -> dict:
    from segstudio.engine import Predictor, load_checkpoint
    from segstudio.io import read_image, read_index_png
    from segstudio.metrics import ConfusionMatrix
    from segstudio.postprocess import CRFParams, dense_crf, parse_morph_spec, refine

    if not (CAMVID / "val.txt").is_file():
        raise FileNotFoundError(f"CamVid not found at {CAMVID}; set SEGSTUDIO_SHARED")
    quick = getattr(args, "quick", False)
    predictor = Predictor(load_checkpoint(None), device="cpu")  # the CRF runs on the CPU; so does its input here
    stem = _val_stems(1)[0]
    image = read_image(CAMVID / "images" / f"{stem}.png")
    probs = predictor.predict_proba(image)
    assert probs.shape == (11, 360, 480), probs.shape

    params = CRFParams(iterations=ITERATIONS)
    np.testing.assert_array_equal(dense_crf(image, probs, params), _direct(image, probs, ITERATIONS))
    repeats = 3 if quick else 9
    ours, direct = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        dense_crf(image, probs, params)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        _direct(image, probs, ITERATIONS)
        direct.append(time.perf_counter() - t)
    t_ours, t_direct = statistics.median(ours), statistics.median(direct)
    ratio = t_ours / t_direct
    print(f"DenseCRF {image.shape[1]}x{image.shape[0]}, 11 classes, {ITERATIONS} iterations, {repeats} repeats ({stem})")
    print(f"  segstudio.postprocess.dense_crf  median {1000 * t_ours:8.1f} ms")
    print(f"  pydensecrf2 directly             median {1000 * t_direct:8.1f} ms")
    print(f"  ratio {ratio:.3f} (goal <= 1.1: {'met' if ratio <= 1.1 else 'NOT met'})")

    n_images = 5 if quick else 20
    configs = {
        "none": (None, None),
        "crf": (CRFParams(), None),
        f"crf{ITERATIONS}": (params, None),
        "morph": (None, parse_morph_spec(MORPH_SPEC)),
        "crf+morph": (CRFParams(), parse_morph_spec(MORPH_SPEC)),
    }
    matrices = {name: ConfusionMatrix(11) for name in configs}
    times: dict[str, list[float]] = {name: [] for name in configs}
    for s in _val_stems(n_images):
        img = read_image(CAMVID / "images" / f"{s}.png")
        target = read_index_png(CAMVID / "masks" / f"{s}.png")
        p = predictor.predict_proba(img)
        for name, (crf, morph) in configs.items():
            t = time.perf_counter()
            labels = refine(img, p, crf, morph, num_classes=11)
            times[name].append(time.perf_counter() - t)
            matrices[name].update(target, labels)
    quality = {}
    print(f"CamVid val, {n_images} evenly spaced images, bundled default model (morph = {MORPH_SPEC}):")
    for name, cm in matrices.items():
        miou, acc = cm.miou, cm.pixel_accuracy
        quality[name] = {"miou": miou, "pixel_accuracy": acc, "median_s": statistics.median(times[name])}
        print(f"  {name:<10} mIoU {100 * miou:6.2f}  pixel acc {100 * acc:6.2f}  post-processing {1000 * quality[name]['median_s']:7.1f} ms/img")
    return {
        "image": stem,
        "iterations": ITERATIONS,
        "repeats": repeats,
        "ours_s": t_ours,
        "direct_s": t_direct,
        "ratio": ratio,
        "goal_met": ratio <= 1.1,
        "quality_images": n_images,
        "morph_spec": MORPH_SPEC,
        "quality": quality,
    }
