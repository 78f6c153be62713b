"""The class-agnostic object bank for click training (issue 34, item 1) and resumable click training."""

from __future__ import annotations

import json
import random

import cv2
import numpy as np
import pytest

from segstudio.engine.click.objects import (
    UNION_CLASS,
    ObjectBank,
    image_objects,
    part_unions,
    union_part_ids,
)


def _write_dataset(root, n_train=3, n_val=2, names=("background", "door", "wheel"), size=64):
    """A tiny dataset folder: each image has a two-part 'car' (classes 1 and 2 touching) and a lone class-1 blob."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    stems = {"train": [f"tr{i}" for i in range(n_train)], "val": [f"va{i}" for i in range(n_val)]}
    for split, ss in stems.items():
        for i, s in enumerate(ss):
            lab = np.zeros((size, size), np.uint8)
            lab[10:30, 10:24] = 1
            lab[10:30, 24:34] = 2
            lab[44:56, 40 + i:54 + i] = 1
            if split == "val":
                lab[2:8, 2:8] = 255
            img = (rng.integers(0, 40, (size, size, 3)) + 60 * lab[..., None].clip(0, 3)).astype(np.uint8)
            cv2.imwrite(str(root / "images" / f"{s}.png"), img[:, :, ::-1])
            cv2.imwrite(str(root / "masks" / f"{s}.png"), lab)
        (root / f"{split}.txt").write_text("\n".join(ss) + "\n")
    (root / "classes.json").write_text(json.dumps([{"id": i, "name": n, "color": [i * 60] * 3} for i, n in enumerate(names)]))
    return root


def test_part_unions_joins_touching_classes_only():
    lab = np.zeros((40, 40), np.uint8)
    lab[5:15, 5:12] = 1
    lab[5:15, 12:20] = 2  # touches class 1: one union
    lab[25:35, 25:35] = 1  # alone: not a union
    unions = part_unions(lab, [1, 2])
    assert len(unions) == 1
    assert unions[0].sum() == 10 * 15 and unions[0].dtype == bool
    assert part_unions(lab, [1]) == []  # one part class: nothing to join
    assert part_unions(lab, [1, 2], min_fraction=0.2) == []  # 150 px < 20 % of 1600
    with pytest.raises(ValueError):
        part_unions(np.zeros((4, 4, 3), np.uint8), [1, 2])


def test_union_part_ids_needs_background_and_two_parts():
    assert union_part_ids(["background", "door", "wheel"]) == [1, 2]
    assert union_part_ids(["Background", "vessel"]) == []
    assert union_part_ids(["sky", "road", "car"]) == []


def test_image_objects_adds_unions_with_their_own_class_id():
    lab = np.zeros((40, 40), np.uint8)
    lab[5:15, 5:12] = 1
    lab[5:15, 12:20] = 2
    plain = image_objects(lab)
    both = image_objects(lab, [1, 2])
    assert len(both) == len(plain) + 1
    assert both[-1][0] == UNION_CLASS and both[-1][1].sum() == 150


def test_bank_reads_the_train_split_only_and_samples_crops(tmp_path):
    root = _write_dataset(tmp_path / "cars")
    bank = ObjectBank([root], rng=random.Random(1))
    assert bank.domains == ["cars"]
    assert sorted(p.stem for p in bank.files[0]) == ["tr0", "tr1", "tr2"]  # val images never read
    st = bank.stats()["cars"]
    assert st["images"] == 3 and st["part_unions"] == 3  # one car per image
    assert len(bank) == st["objects"]
    for cp in (0.0, 1.0):
        for _ in range(10):
            img, obj, ign = bank.sample(48, copy_paste=cp)
            assert img.shape == (48, 48, 3) and img.dtype == np.uint8
            assert obj.shape == ign.shape == (48, 48) and obj.dtype == ign.dtype == bool
            assert obj.sum() >= 20 and not (obj & ign).any()


def test_union_share_draws_whole_objects_as_often_as_asked(tmp_path):
    """Each image has 4 components (background, door, wheel, lone door blob) and 1 union: uniform drawing gives
    the union a fifth of the draws, ``union_share`` sets it."""
    root = _write_dataset(tmp_path / "cars")
    bank = ObjectBank([root], rng=random.Random(3))
    assert all(bank.objects[0][i].cls == UNION_CLASS for i in bank.unions[0])
    assert len(bank.unions[0]) + len(bank.singles[0]) == len(bank.objects[0])
    drawn = []
    bank.crop_sample = lambda d, rec, crop: drawn.append(rec.cls) or (np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), bool), np.zeros((8, 8), bool))
    for share, lo, hi in ((None, 0.14, 0.26), (0.5, 0.43, 0.57), (0.9, 0.84, 0.96)):
        drawn.clear()
        for _ in range(600):
            bank.sample(8, union_share=share)
        frac = np.mean([c == UNION_CLASS for c in drawn])
        assert lo <= frac <= hi, (share, frac)


def test_a_part_of_a_whole_object_is_never_cut_from_its_image_for_a_lone_first_click(tmp_path):
    """Door and wheel touch (parts of one car): ``whole_only`` pastes them onto another image instead; the lone
    door blob, the background and the car itself are still cut from their own image."""
    root = _write_dataset(tmp_path / "cars")
    bank = ObjectBank([root], rng=random.Random(5))
    recs = bank.objects[0]
    assert sum(o.in_union for o in recs) == 2 * 3  # door + wheel of each of the 3 cars
    assert all(o.cls in (1, 2) for o in recs if o.in_union)
    assert not any(recs[i].in_union for i in bank.unions[0])  # a union is whole
    assert bank.stats()["cars"]["parts_in_unions"] == 6
    how = []
    ok = (np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), bool), np.zeros((8, 8), bool))
    bank.crop_sample = lambda d, rec, crop: how.append(("cut", rec.in_union)) or ok
    bank.paste_sample = lambda d, rec, crop: how.append(("paste", rec.in_union)) or ok
    for _ in range(400):
        bank.sample(8, copy_paste=0.0, whole_only=True)
    assert ("cut", True) not in how and ("paste", True) in how and ("cut", False) in how
    assert ("paste", False) not in how  # copy_paste 0: whole objects are cut as before
    how.clear()
    for _ in range(400):
        bank.sample(8, copy_paste=0.0)
    assert ("cut", True) in how  # later clicks disambiguate: parts are cut from their image then


def test_bank_downscales_large_images_and_errors(tmp_path):
    root = _write_dataset(tmp_path / "big", size=128)
    bank = ObjectBank([root], max_side=64)
    assert max(bank.images[0][0].shape[:2]) == 64 and bank.labels[0][0].shape == (64, 64)
    assert ObjectBank.from_shared(tmp_path, domains=("big", "missing")).domains == ["big"]
    with pytest.raises(ValueError):
        ObjectBank.from_shared(tmp_path, domains=("missing",))
    empty = tmp_path / "empty"
    _write_dataset(empty)
    for p in (empty / "masks").glob("*.png"):
        cv2.imwrite(str(p), np.full((64, 64), 255, np.uint8))
    with pytest.raises(ValueError):
        ObjectBank([empty])


def test_click_training_on_the_bank_checkpoints_and_resumes(tmp_path):
    from segstudio.engine.click.train import ClickTrainConfig, train_click_model

    _write_dataset(tmp_path / "data" / "cars")
    out = tmp_path / "run"
    cfg = ClickTrainConfig(objects_from=str(tmp_path / "data"), domains=("cars",), crop=48, batch_size=2, max_steps=2,
                           minutes=5, out=str(out), save_every=1, copy_paste=0.5, train_encoder=True, width=32,
                           union_share=0.5, first_click_whole=True, max_iter_clicks=0)
    assert train_click_model(cfg)["steps"] == 2
    assert (out / "train_state.pt").is_file() and (out / "model.safetensors").is_file()
    card = json.loads((out / "model.json").read_text())
    assert card["training_data"]["objects"]["cars"]["images"] == 3 and card["training"]["copy_paste"] == 0.5
    assert card["training_data"]["first_click_whole"] is True and card["training_data"]["objects"]["cars"]["parts_in_unions"] == 6
    cfg.max_steps, cfg.resume = 3, True
    assert train_click_model(cfg)["steps"] == 3  # continued, not restarted


def test_install_only_copies_a_run_with_machine_and_command(tmp_path, monkeypatch):
    import importlib.util
    import subprocess
    from pathlib import Path

    from segstudio.engine.checkpoint import save_checkpoint
    from segstudio.models.clicknet import ClickNet

    spec = importlib.util.spec_from_file_location("train_click_model", Path(__file__).resolve().parents[1] / "scripts" / "train_click_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    run = tmp_path / "run"
    save_checkpoint(run, ClickNet(pretrained=False, width=32),
                    {"architecture": "clicknet", "name": "clicknet_mobilenetv2", "model_kwargs": {"width": 32}})
    monkeypatch.setattr(mod, "CLICK_MODEL_DIR", tmp_path / "installed")
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    assert mod.main(["--install-only", "--out", str(run), "--training-command", "python x"]) == 0
    card = json.loads((tmp_path / "installed" / "clicknet_mobilenetv2.json").read_text())
    assert card["training_command"] == "python x" and card["weights_dtype"] == "float16"
    assert card["machine"]["cpus"] >= 1 and "torch_threads" in card["machine"]
    assert calls and "bundled_card_keys.py" in str(calls[0][0])
