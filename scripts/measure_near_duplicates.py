"""Measure the perceptual key's margin (issue 30): near-duplicates vs different frames, on real data.

The held-out rule (:mod:`segstudio.engine.heldout`) treats two images whose perceptual keys
(:func:`~segstudio.engine.heldout.perceptual_key`) differ in at most ``NEAR_DUPLICATE_MAX_BITS`` bits as the same
picture. This script measures, with the shipped key function:

* **near-duplicates**: each CamVid train+val frame (every ``--stride``-th) mirrored left-right, re-encoded as JPEG
  (quality 95, 75, 40), resized (0.25x, 0.5x, 2x), cropped (0.5, 1, 2 % of each side, and 2 % of one side), and
  mirrored + JPEG 60 + 0.6x: the distance between the copy's key and the original's;
* **different images**: for every CamVid train+val frame the distance to the nearest *other* frame (the frames are
  consecutive video frames, 1 s apart: the hardest negatives, including frames taken while the car stood still),
  consecutive pairs, the six first-start samples (``camvid_samples``, withheld test split) to their nearest
  train+val frame, and the ISBI-2012 slices (consecutive EM sections: test 25..29 to the nearest of train+val 0..24).

Writes ``docs/near_duplicates.json`` (atomically) with the commit, the threshold and every distribution.

Usage (repo root, in the venv)::

    python scripts/measure_near_duplicates.py [--shared ../shared] [--stride 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segstudio.engine.heldout import NEAR_DUPLICATE_MAX_BITS, PHASH_BITS, hamming, perceptual_key  # noqa: E402
from segstudio.io import atomic_write_bytes, read_image  # noqa: E402

OUT = REPO / "docs" / "near_duplicates.json"


def _jpeg(im: np.ndarray, q: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", im[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def _resize(im: np.ndarray, s: float) -> np.ndarray:
    return cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def _crop(im: np.ndarray, f: float) -> np.ndarray:
    h, w = im.shape[:2]
    dy, dx = max(1, round(h * f)), max(1, round(w * f))
    return im[dy : h - dy, dx : w - dx]


VARIANTS = {
    "mirror": lambda im: im[:, ::-1],
    "jpeg95": lambda im: _jpeg(im, 95),
    "jpeg75": lambda im: _jpeg(im, 75),
    "jpeg40": lambda im: _jpeg(im, 40),
    "resize0.25": lambda im: _resize(im, 0.25),
    "resize0.5": lambda im: _resize(im, 0.5),
    "resize2": lambda im: _resize(im, 2.0),
    "crop0.5%": lambda im: _crop(im, 0.005),
    "crop1%": lambda im: _crop(im, 0.01),
    "crop2%": lambda im: _crop(im, 0.02),
    "crop2%_top": lambda im: im[max(1, round(0.02 * im.shape[0])) :],
    "mirror+jpeg60+resize0.6": lambda im: _resize(_jpeg(np.ascontiguousarray(im[:, ::-1]), 60), 0.6),
}


def _stats(d) -> dict:
    d = np.asarray(d, dtype=float)
    return {"n": int(d.size), "min": int(d.min()), "p1": round(float(np.percentile(d, 1)), 1),
            "p5": round(float(np.percentile(d, 5)), 1), "median": round(float(np.median(d)), 1),
            "p99": round(float(np.percentile(d, 99)), 1), "max": int(d.max()),
            "at_most_threshold": int((d <= NEAR_DUPLICATE_MAX_BITS).sum())}


def _images(root: Path, splits: tuple[str, ...]) -> list[Path]:
    stems = [s.strip() for sp in splits for s in (root / f"{sp}.txt").read_text().splitlines() if s.strip()]
    return [next((root / "images").glob(f"{s}.*")) for s in stems]


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--stride", type=int, default=2, help="near-duplicate variants of every N-th CamVid frame")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    camvid = args.shared / "datasets" / "camvid"
    paths = sorted(_images(camvid, ("train", "val")), key=lambda p: p.name)
    images = [read_image(p) for p in paths]
    keys = [perceptual_key(im) for im in images]

    near = {}
    for name, fn in VARIANTS.items():
        near[name] = _stats([int(hamming([keys[i]], perceptual_key(np.ascontiguousarray(fn(images[i]))))[0])
                             for i in range(0, len(images), args.stride)])
    nearest, consecutive, pairs = [], [], []
    for i, k in enumerate(keys):
        d = hamming(keys, k)
        d[i] = PHASH_BITS + 1
        j = int(d.argmin())
        nearest.append(int(d[j]))
        if d[j] <= NEAR_DUPLICATE_MAX_BITS:
            pairs.append([paths[i].stem, paths[j].stem, int(d[j])])
        if i + 1 < len(keys) and paths[i].name.split("_")[0] == paths[i + 1].name.split("_")[0]:
            consecutive.append(int(hamming([keys[i + 1]], k)[0]))
    samples = {}
    for p in sorted((args.shared / "datasets" / "camvid_samples" / "images").glob("*.png")):
        samples[p.stem] = int(hamming(keys, perceptual_key(read_image(p))).min())
    isbi = args.shared / "datasets" / "isbi2012_membrane"
    ik = {p.stem: perceptual_key(read_image(p)) for p in sorted((isbi / "images").glob("*.png"))}
    seen = [ik[s] for s in sorted(ik) if int(s) < 25]
    isbi_test = {s: int(hamming(seen, k).min()) for s, k in ik.items() if int(s) >= 25}
    isbi_all = [int(np.sort(hamming(list(ik.values()), k))[1]) for k in ik.values()]

    record = {
        "what": "Hamming distances between perceptual keys (segstudio.engine.heldout.perceptual_key), issue 30",
        "script": "scripts/measure_near_duplicates.py",
        "commit": _commit(),
        "key_bits": PHASH_BITS,
        "threshold_bits": NEAR_DUPLICATE_MAX_BITS,
        "near_duplicates_camvid": near,
        "camvid_nearest_other_frame": _stats(nearest),
        "camvid_consecutive_frames": _stats(consecutive),
        "camvid_frames_within_threshold_of_another": pairs,
        "camvid_samples_to_nearest_trainval": samples,
        "isbi_test_to_nearest_trainval": isbi_test,
        "isbi_nearest_other_slice": _stats(isbi_all),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_bytes(args.out, (json.dumps(record, indent=1) + "\n").encode())
    return record


if __name__ == "__main__":
    r = main()
    print(json.dumps({k: v for k, v in r.items() if k != "camvid_frames_within_threshold_of_another"}, indent=1))
    print("frames within the threshold of another:", r["camvid_frames_within_threshold_of_another"])
