"""P5: sliding-window predict on 2048², 4096², 8192² vs whole-image predict (where memory allows).

Target: peak memory bounded by the tile size (not the image area, beyond the image and label map
themselves) and time linear in area. Each case runs in a fresh subprocess so its peak resident memory
(``ru_maxrss``) is its own; "peak extra" is that peak minus the resident memory just before predicting
(model loaded, uint8 image in memory). The image is a real CamVid frame tiled (mirrored) to the size.

Tiled: ``Predictor(loaded, "cpu", tile_size=1024, tile_overlap=0.25).predict_tiled(image)`` (label map out).
Whole: ``Predictor(..., max_pixels=None).predict(image)``, run for sizes up to ``WHOLE_MAX`` only (whole-image
inference at 8192² needs tens of GB for the activations).

Env: ``SEGSTUDIO_BENCH_SIZES`` (``2048,4096,8192``; quick ``512,1024,2048``), ``SEGSTUDIO_BENCH_WHOLE_MAX``
(4096; quick 2048), ``SEGSTUDIO_BENCH_TILE`` (1024; quick 512).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples"


RECORD_MODELS = ("camvid_deeplabv3plus_mobilenetv2",)
"""Bundled models whose weights these figures depend on (``python -m bench sliding_window --record`` names them)."""

def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _image(size: int) -> np.ndarray:
    from segstudio.io import read_image

    im = read_image(sorted(SAMPLE.glob("*.png"))[0])
    reps = (-(-size // im.shape[0]), -(-size // im.shape[1]), 1)
    tile = np.concatenate([im, im[::-1]], axis=0)
    tile = np.concatenate([tile, tile[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.tile(tile, (reps[0] // 2 + 1, reps[1] // 2 + 1, 1))[:size, :size])


def child(size: int, mode: str, tile: int) -> dict:
    import torch

    from segstudio.engine import Predictor, load_checkpoint

    p = Predictor(load_checkpoint(None), "cpu", tile_size=tile, max_pixels=None)
    image = _image(size)
    warm = np.ascontiguousarray(image[:256, :256])
    p.predict(warm)  # one-off allocations outside the measurement
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    labels = p.predict_tiled(image) if mode == "tiled" else p.predict(image)
    sec = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "mode": mode,
        "seconds": round(sec, 2),
        "s_per_megapixel": round(sec / (size * size / 1e6), 3),
        "rss_before_mb": round(rss0, 1),
        "peak_extra_mb": round(max(0.0, peak - rss0), 1),
        "label_map_mb": round(labels.nbytes / 2**20, 1),
        "threads": torch.get_num_threads(),
    }


def _spawn(size: int, mode: str, tile: int) -> dict:
    cmd = [sys.executable, "-m", "bench.sliding_window", "--child", str(size), mode, str(tile)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        return {"size": size, "mode": mode, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args) -> dict:
    q = args.quick
    sizes = [int(s) for s in os.environ.get("SEGSTUDIO_BENCH_SIZES", "512,1024,2048" if q else "2048,4096,8192").split(",")]
    whole_max = int(os.environ.get("SEGSTUDIO_BENCH_WHOLE_MAX", 2048 if q else 4096))
    tile = int(os.environ.get("SEGSTUDIO_BENCH_TILE", 512 if q else 1024))
    rows = []
    for size in sizes:
        for mode in ("tiled", "whole"):
            if mode == "whole" and size > whole_max:
                continue
            r = _spawn(size, mode, tile)
            rows.append(r)
            print(json.dumps(r), flush=True)
    tiled = [r for r in rows if r["mode"] == "tiled" and "error" not in r]
    res = {"tile": tile, "overlap": 0.25, "cases": rows}
    if len(tiled) >= 2:
        a, b = tiled[0], tiled[-1]
        res["time_ratio_largest_vs_smallest"] = round(b["seconds"] / a["seconds"], 2)
        res["area_ratio_largest_vs_smallest"] = round((b["size"] / a["size"]) ** 2, 2)
        res["peak_extra_ratio_largest_vs_smallest"] = round(b["peak_extra_mb"] / max(a["peak_extra_mb"], 1), 2)
    for r in rows:
        if "error" in r:
            print(f"{r['size']}² {r['mode']}: failed ({r['error']})")
        else:
            print(f"{r['size']}² {r['mode']:<5}: {r['seconds']:8.1f} s  ({r['s_per_megapixel']:.2f} s/MP)  "
                  f"peak extra {r['peak_extra_mb']:7.0f} MB")
    return res


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))))
    else:
        sys.exit("run through the runner: python -m bench sliding_window")
