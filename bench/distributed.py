"""1 process vs 2 torchrun processes (gloo, CPU): training step throughput with the same global batch.

DeepLab v3+ / MobileNetV2 (ImageNet encoder) on full-size CamVid train images, random 256×256 crops,
global batch 4 (2 per rank with 2 processes), BatchNorm frozen. Each configuration trains 2 epochs on
the same image subset; the second epoch (images decoded and cached, model warm) is timed from the
run's ``history.json``. Configurations: 1 process × 2 threads (the baseline: all cores in one
process), 1 process × 1 thread, 2 processes × 1 thread (``torchrun --nproc_per_node 2``).

``python -m bench distributed [--quick]``; needs ../shared/datasets/camvid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAMVID = Path(os.environ.get("SEGSTUDIO_SHARED", REPO.parent / "shared")) / "datasets" / "camvid"


def _subset(root: Path, n: int) -> Path:
    """Dataset folder with the first ``n`` CamVid train images (symlinked, full size)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shutil.copy(CAMVID / "classes.json", root / "classes.json")
    stems = (CAMVID / "train.txt").read_text().split()[:n]
    for s in stems:
        (root / "images" / f"{s}.png").symlink_to(CAMVID / "images" / f"{s}.png")
        (root / "masks" / f"{s}.png").symlink_to(CAMVID / "masks" / f"{s}.png")
    (root / "train.txt").write_text("\n".join(stems) + "\n")
    return root


def _train(data: Path, out: Path, nproc: int, threads: int, crop: int, batch: int) -> dict:
    args = ["train", "--data", str(data), "-o", str(out), "--model", "deeplabv3plus", "--encoder", "mobilenet_v2"]
    args += ["--epochs", "2", "--batch-size", str(batch), "--crop-size", str(crop), "--freeze-bn", "--device", "cpu"]
    if nproc == 1:
        cmd = [sys.executable, "-m", "segstudio", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        cmd += ["-m", "segstudio", *args]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    hist = json.loads((out / "history.json").read_text())
    return {"epoch2_seconds": hist[1]["seconds"], "wall_seconds": wall}


def run(args) -> dict:
    quick = getattr(args, "quick", False)
    n, crop, batch = (8, 128, 4) if quick else (24, 256, 4)
    steps = n // batch
    results = {}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"{n} CamVid images, crop {crop}, global batch {batch}: {steps} steps/epoch; "
          f"{os.cpu_count()} CPU cores, load average {load}")
    with tempfile.TemporaryDirectory() as tmp:
        data = _subset(Path(tmp) / "data", n)
        for name, nproc, threads in (("1proc_2threads", 1, 2), ("1proc_1thread", 1, 1), ("2proc_1thread", 2, 1)):
            r = _train(data, Path(tmp) / name, nproc, threads, crop, batch)
            r["steps_per_s"] = steps / r["epoch2_seconds"]
            r["images_per_s"] = steps * batch / r["epoch2_seconds"]
            results[name] = r
            print(f"{name:>15}: {r['steps_per_s']:.3f} steps/s, {r['images_per_s']:.2f} images/s "
                  f"(epoch 2: {r['epoch2_seconds']:.1f}s; whole run incl. start-up {r['wall_seconds']:.1f}s)", flush=True)
    base = results["1proc_2threads"]["steps_per_s"]
    results["speedup_2proc_vs_1proc_2threads"] = results["2proc_1thread"]["steps_per_s"] / base
    results["load_average_before"] = load
    print(f"2 processes / 1 process (2 threads): ×{results['speedup_2proc_vs_1proc_2threads']:.2f}")
    return results
