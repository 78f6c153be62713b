"""scripts/camvid_recipe.py: the ablation rows change one lever of today's recipe, and ``pack`` keeps masks exact."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import load_script

REPO = Path(__file__).resolve().parents[1]


def _script():
    return load_script("camvid_recipe")


def test_train_default_camvid_sh_ships_the_recipe_of_the_shipped_row_on_train_plus_val():
    rec = _script()
    shipped = rec.recipe(rec.SHIPPED)
    sh = (REPO / "scripts" / "train_default_camvid.sh").read_text()
    var = dict(re.findall(r"(\w+)=(\S+)", sh.split("\nEPOCHS=", 1)[1].splitlines()[0].join(["EPOCHS=", ""])))
    assert shipped["--epochs"] == var["EPOCHS"] and shipped["--batch-size"] == var["BATCH"]
    assert shipped["--lr"] == var["LR"] and shipped["--crop-size"] == var["CROP"] == "360,480"
    assert shipped["--scale-range"] == var["SCALE"] and shipped["--seed"] == var["SEED"]
    assert var["TRAIN_SPLIT"] == "train+val" and '--train-split "$TRAIN_SPLIT"' in sh
    for flag in ("--model", "--encoder", "--output-stride"):
        assert f"{flag} {shipped[flag]}" in sh, flag
    assert "--class-weights" not in sh  # the shipped row keeps plain cross-entropy, as the row was measured


def test_every_lever_row_changes_exactly_one_flag_and_combined_takes_them_all():
    rec = _script()
    for row in rec.LEVERS:
        flags = rec.recipe(row)
        changed = {k for k in set(flags) | set(rec.BASE) if flags.get(k) != rec.BASE.get(k)}
        assert len(changed) == 1, (row, changed)
    every = rec.recipe("combined")
    for row in rec.LEVERS:
        for k, v in rec.ROWS[row].items():
            assert every[k] == v
    two = rec.recipe("combined", ["full_res", "median"])
    assert two["--crop-size"] == "360,480" and two["--class-weights"] == "median" and two["--epochs"] == "24"
    with pytest.raises(KeyError, match="unknown lever"):
        rec.recipe("combined", ["fullres"])
    with pytest.raises(KeyError, match="known: base"):
        rec.recipe("nope")


def test_train_command_validates_on_val_unless_val_trains():
    rec = _script()
    cmd = rec.train_command("long", device="cuda", workers=8)
    assert cmd[cmd.index("--epochs") + 1] == "72" and cmd[cmd.index("--val-every") + 1] == "12"
    assert cmd[cmd.index("--device") + 1] == "cuda" and "--train-split" not in cmd
    ship = rec.train_command("combined", train_split="train+val")
    assert ship[ship.index("--train-split") + 1] == "train+val"


def test_pack_writes_jpeg_images_and_exact_masks_and_refuses_a_full_folder(tmp_path):
    rec = _script()
    data = tmp_path / "camvid"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i, split in enumerate(["train", "train", "val"]):
        yy, xx = np.mgrid[0:36, 0:48]  # smooth, photo-like content (JPEG's case), not noise
        img = np.stack([xx * 5, yy * 7, (xx + yy) * 3 + 40 * i], -1).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(data / "images" / f"f{i}.png"), img)
        cv2.imwrite(str(data / "masks" / f"f{i}.png"), rng.integers(0, 11, (36, 48), dtype=np.uint8))
    (data / "train.txt").write_text("f0\nf1\n")
    (data / "val.txt").write_text("f2\n")
    (data / "classes.json").write_text('{"names": ["a"]}')
    out = tmp_path / "packed"
    assert rec.pack(out, data) > 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["f0.jpg", "f1.jpg", "f2.jpg"]
    for i in range(3):
        assert (out / "masks" / f"f{i}.png").read_bytes() == (data / "masks" / f"f{i}.png").read_bytes()
        a = cv2.imread(str(data / "images" / f"f{i}.png")).astype(int)
        b = cv2.imread(str(out / "images" / f"f{i}.jpg")).astype(int)
        assert a.shape == b.shape and np.abs(a - b).mean() < 4
    assert (out / "val.txt").read_text() == "f2\n"
    with pytest.raises(FileExistsError, match="not empty"):
        rec.pack(out, data)
    (data / "masks" / "f1.png").unlink()
    with pytest.raises(FileNotFoundError, match="f1"):
        rec.pack(tmp_path / "again", data)


def test_torch_home_gets_the_imagenet_weights_or_refuses(tmp_path):
    rec = _script()
    shared = tmp_path / "shared"
    shared.mkdir()
    with pytest.raises(FileNotFoundError, match="ImageNet MobileNetV2"):
        rec.torch_home({"TORCH_HOME": str(tmp_path / "th")}, shared)
    (shared / rec.WEIGHTS).write_bytes(b"weights")
    home = rec.torch_home({"TORCH_HOME": str(tmp_path / "th")}, shared)
    assert home == tmp_path / "th" and (home / "hub" / "checkpoints" / rec.WEIGHTS).read_bytes() == b"weights"
    (shared / rec.WEIGHTS).unlink()  # already in place: the shared copy is not needed any more
    assert rec.torch_home({"TORCH_HOME": str(home)}, shared) == home


def test_table_reads_the_runs_and_gives_each_lever_against_base(tmp_path, monkeypatch):
    import json

    rec = _script()
    monkeypatch.setattr(rec, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(rec, "RESULTS", tmp_path / "r.json")
    monkeypatch.setattr(rec, "RESULTS_MD", tmp_path / "r.md")
    for row, miou, pole in (("base", 0.633, 0.03), ("median", 0.651, 0.25)):
        out = tmp_path / "runs" / row
        out.mkdir(parents=True)
        (out / "val_metrics.json").write_text(json.dumps({"miou": miou, "iou": {"Sky": 0.9, "Pole": pole, "Car": 0.7}}))
        (out / "train_seconds.json").write_text(json.dumps({"seconds": 900, "device": "auto"}))
        (out / "model.json").write_text(json.dumps({"training": {"device": "cpu", "config": {"epochs": 24}}}))
        (out / "history.json").write_text(json.dumps([
            {"epoch": 1, "train_loss": 1.0, "seconds": 30.0, "step": 45},
            {"epoch": 2, "train_loss": 0.8, "seconds": 42.0, "step": 90, "val_miou": miou - 0.01}]))
    text = rec.table()
    median = next(ln for ln in text.splitlines() if ln.startswith("| median "))
    assert "`--class-weights median`" in median and "| 65.1 | +1.8 |" in median and "Pole 25.0" in median
    assert "15.0 (cpu, 0.8)" in median  # the device the run used, not "auto"; 72 s over 90 steps
    assert "| 64.1 (2) |" in median  # the validated epochs' curve
    stored = json.loads((tmp_path / "r.json").read_text())
    assert set(stored) == {"base", "median"} and stored["base"]["flags"] == {"epochs": 24}
    assert (tmp_path / "r.md").read_text().endswith(text + "\n")
