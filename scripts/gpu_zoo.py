"""The zoo's from-scratch rows (SegNet-Basic, SegNet, simple CNN, U-Net) trained for one common epoch budget on a
CamVid folder and scored on its val split — the GPU check's part of ``scripts/zoo.py`` (issue 33).

Each row runs ``scripts/zoo.py``'s exact training command (:func:`zoo.command`: same crops, batch, lr, seed and
per-row flags such as SegNet-Basic's median-frequency weights) with ``--data`` set to ``--data`` here, ``--device``
and ``--epochs``; then ``segstudio evaluate --split val``. Writes ``{"epochs", "device", "rows": {row: {"miou",
"train_s", "eval_s", "rc"}}, "segnet_basic_minus_simple_cnn"}`` to ``--json``.

Usage: ``python scripts/gpu_zoo.py --data gpu_subset/datasets/camvid --epochs 20 --device cuda --json out.json``
(``--time-limit S``: rows not started within S seconds of the start are skipped and marked so).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROWS = ("segnet_basic", "simple_cnn", "unet", "segnet")
"""Cheapest first, so that a run stopped by its time limit still has the SegNet-Basic vs simple CNN comparison."""


def _zoo():
    spec = importlib.util.spec_from_file_location("segstudio_zoo_script", REPO / "scripts" / "zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def train_command(row: str, data: str, epochs: int, device: str, out: Path, max_steps: int | None = None) -> list[str]:
    """``scripts/zoo.py``'s training command for ``row`` with the data folder, device, epochs and output replaced."""
    zoo = _zoo()
    cmd = zoo.command(row, epochs, zoo.RUNS, epochs)
    cmd[cmd.index("--data") + 1] = data
    cmd[cmd.index("-o") + 1] = str(out)
    cmd[0] = sys.executable
    cmd += ["--device", device]
    if max_steps is not None:
        cmd += ["--max-steps", str(max_steps)]
    return cmd


def _limited_val(data: Path, n: int, dst: Path) -> Path:
    """A copy of dataset folder ``data`` (links to its images and masks) whose ``val.txt`` keeps its first ``n`` lines."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for name in ("images", "masks", "classes.json", "train.txt"):
        (dst / name).symlink_to((data / name).resolve())
    (dst / "val.txt").write_text("".join(s + "\n" for s in (data / "val.txt").read_text().split()[:n]))
    return dst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--device", default="cuda")
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--out", default=str(REPO / "runs" / "gpu_zoo"))
    p.add_argument("--json", required=True)
    p.add_argument("--max-steps", type=int, default=None, help="cap steps per row (a dry run)")
    p.add_argument("--time-limit", type=float, default=None)
    p.add_argument("--val-limit", type=int, default=None, help="score only the first N val images (a dry run)")
    args = p.parse_args(argv)
    if args.val_limit is not None:
        args.data = str(_limited_val(Path(args.data), args.val_limit, Path(args.out) / "_data"))
    t_start = time.perf_counter()
    rows: dict[str, dict] = {}
    for row in args.rows.split(","):
        if args.time_limit is not None and time.perf_counter() - t_start > args.time_limit:
            rows[row] = {"skipped": "time limit"}
            continue
        out = Path(args.out) / row
        shutil.rmtree(out, ignore_errors=True)
        cmd = train_command(row, args.data, args.epochs, args.device, out, args.max_steps)
        print(" ".join(cmd), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=REPO)
        rec = {"rc": rc, "train_s": round(time.perf_counter() - t0, 1), "command": " ".join(cmd[1:])}
        if rc == 0:
            t1 = time.perf_counter()
            metrics = out / "val_metrics.json"
            ev = [sys.executable, "-m", "segstudio", "evaluate", "--data", args.data, "--split", "val", "--device",
                  args.device, "--checkpoint", str(out / "model.safetensors"), "-o", str(metrics)]
            rec["eval_rc"] = subprocess.call(ev, cwd=REPO, stdout=subprocess.DEVNULL)
            rec["eval_s"] = round(time.perf_counter() - t1, 1)
            if rec["eval_rc"] == 0:
                rec["miou"] = round(100 * json.loads(metrics.read_text())["miou"], 2)
        rows[row] = rec
        print(f"{row}: {rec}", flush=True)
        res = {"epochs": args.epochs, "device": args.device, "data": args.data, "rows": rows}
        a, b = rows.get("segnet_basic", {}).get("miou"), rows.get("simple_cnn", {}).get("miou")
        if a is not None and b is not None:
            res["segnet_basic_minus_simple_cnn"] = round(a - b, 2)
            res["target"] = "segnet_basic >= simple_cnn + 5 mIoU"
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0 if all(r.get("rc", 0) == 0 for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
