"""The prepared GPU check's helpers (issue 33): the data subset and the zoo rows' commands (the check itself runs on a
GPU machine; ``scripts/gpu_check.sh --dry-run`` runs its plumbing on the CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from helpers import load_script

REPO = Path(__file__).resolve().parents[1]


def _fake_shared(root: Path) -> Path:
    for name, n in (("camvid", 5), ("drive", 4)):
        ds = root / "datasets" / name
        (ds / "images").mkdir(parents=True)
        (ds / "masks").mkdir()
        (ds / "classes.json").write_text(json.dumps([{"id": 0, "name": "a", "color": [0, 0, 0]}]))
        stems = [f"{name}{i}" for i in range(n)]
        for s in stems:
            Image.fromarray(np.full((8, 10, 3), 7, np.uint8)).save(ds / "images" / f"{s}.png")
            Image.fromarray(np.zeros((8, 10), np.uint8)).save(ds / "masks" / f"{s}.png")
        (ds / "train.txt").write_text("\n".join(stems[:3]) + "\n")
        (ds / "val.txt").write_text("\n".join(stems[3:]) + "\n")
    return root


def test_make_gpu_subset_mirrors_the_layout_and_respects_the_limit(tmp_path):
    shared = _fake_shared(tmp_path / "shared")
    out = tmp_path / "subset"
    mod = load_script("make_gpu_subset")
    assert mod.main(["--shared", str(shared), "--out", str(out), "--camvid-train", "2", "--proxy-train", "1",
                     "--proxy-val", "1"]) == 0
    cam = out / "datasets" / "camvid"
    assert (cam / "train.txt").read_text().split() == ["camvid0", "camvid1"]
    assert sorted(p.name for p in (cam / "images").iterdir()) == ["camvid0.jpg", "camvid1.jpg", "camvid3.jpg", "camvid4.jpg"]
    assert (out / "datasets" / "drive" / "train.txt").read_text().split() == ["drive0"]
    assert (out / "datasets" / "drive" / "images" / "drive0.png").read_bytes() == (shared / "datasets" / "drive" / "images" / "drive0.png").read_bytes()
    assert json.loads((out / "SUBSET.json").read_text())["total_bytes"] > 0
    assert mod.main(["--shared", str(shared), "--out", str(out), "--max-mb", "0.00001"]) == 1


def test_gpu_zoo_runs_the_zoo_command_on_the_given_data_and_device(tmp_path):
    mod = load_script("gpu_zoo")
    cmd = mod.train_command("segnet_basic", "sub/camvid", 30, "cuda", tmp_path / "o")
    assert cmd[0] == sys.executable and cmd[cmd.index("--data") + 1] == "sub/camvid"
    assert cmd[cmd.index("--epochs") + 1] == "30" and cmd[-2:] == ["--device", "cuda"]
    assert "--class-weights" in cmd and cmd[cmd.index("-o") + 1] == str(tmp_path / "o")  # SegNet-Basic's own flag kept
    assert set(mod.ROWS) == {"segnet_basic", "segnet", "simple_cnn", "unet"}


def test_gpu_check_refuses_without_a_subset(tmp_path):
    res = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "SEGSTUDIO_GPU_SUBSET": str(tmp_path / "none")})
    assert res.returncode == 2 and "make_gpu_subset.py" in res.stderr
