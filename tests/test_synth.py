"""Synthetic-shapes generator: layout, reproducibility, ignore band, and that a tiny model learns it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from segstudio.cli import main
from segstudio.core.labels import IGNORE_INDEX
from segstudio.data.synth import SYNTH_APPEARANCE, SYNTH_CLASSES, generate_synth_dataset, split_counts, synth_sample
from segstudio.io import find_samples, load_classes, read_image, read_index_png


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dataset_layout_and_reproducibility(tmp_path):
    info = generate_synth_dataset(tmp_path / "a", n=10, size=(40, 56), seed=3)
    assert info["splits"] == split_counts(10) == {"train": 6, "val": 2, "test": 2}
    assert load_classes(tmp_path / "a" / "classes.json") == SYNTH_CLASSES
    for split, k in info["splits"].items():
        samples, classes = find_samples(tmp_path / "a", split)
        assert len(samples) == k and classes == SYNTH_CLASSES
        for s in samples:
            assert read_image(s.image).shape == (40, 56, 3)
            mask = read_index_png(s.mask)
            assert mask.shape == (40, 56)
            assert set(np.unique(mask).tolist()) <= set(range(SYNTH_CLASSES.num_classes)) | {IGNORE_INDEX}
    generate_synth_dataset(tmp_path / "b", n=10, size=(40, 56), seed=3)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    generate_synth_dataset(tmp_path / "c", n=10, size=(40, 56), seed=4)
    assert _digest(tmp_path / "a")["masks/synth_0000.png"] != _digest(tmp_path / "c")["masks/synth_0000.png"]


def test_samples_do_not_depend_on_n_and_refuse_to_overwrite(tmp_path):
    generate_synth_dataset(tmp_path / "d", n=3, size=32, seed=1)
    image, mask = synth_sample(1, 2, (32, 32))
    np.testing.assert_array_equal(read_index_png(tmp_path / "d" / "masks" / "synth_0002.png"), mask)
    np.testing.assert_array_equal(read_image(tmp_path / "d" / "images" / "synth_0002.png"), image)
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate_synth_dataset(tmp_path / "d", n=3, size=32, seed=1)
    generate_synth_dataset(tmp_path / "d", n=3, size=32, seed=1, overwrite=True)


def test_shapes_look_like_their_class_and_have_an_ignore_band():
    totals = np.zeros(SYNTH_CLASSES.num_classes)
    for i in range(30):
        image, mask = synth_sample(0, i, (64, 64), ignore_border=1)
        _, plain = synth_sample(0, i, (64, 64), ignore_border=0)
        band = mask == IGNORE_INDEX
        # the ignore band is exactly the shape pixels that touch another label (inner 1-px outline)
        assert (plain[band] != 0).all() and not (plain == IGNORE_INDEX).any()
        np.testing.assert_array_equal(mask[~band], plain[~band])
        totals += np.bincount(plain.ravel(), minlength=SYNTH_CLASSES.num_classes)
        for c, colour in SYNTH_APPEARANCE.items():
            inside = mask == c
            if inside.sum() > 20:
                mean = image[inside].astype(float).mean(0)
                assert np.abs(mean - colour).max() < 45, (i, c, mean)
    assert (totals[1:] > 0.02 * totals.sum()).all(), "every shape class is common enough to learn"


def test_bad_arguments():
    with pytest.raises(ValueError, match="16x16"):
        synth_sample(0, 0, (8, 64))
    with pytest.raises(ValueError, match="n must be"):
        generate_synth_dataset("/nonexistent/never", n=0)


def test_cli_synth(tmp_path, capsys):
    assert main(["synth", "--n", "4", "--size", "32", "-o", str(tmp_path / "s"), "--seed", "7"]) == 0
    assert "wrote 4 images" in capsys.readouterr().out
    assert len(list((tmp_path / "s" / "images").iterdir())) == 4
    assert main(["synth", "--n", "4", "-o", str(tmp_path / "s")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_a_tiny_model_learns_it(tmp_path):
    """simple_cnn (3 layers, width 16) for 40 steps on 64x64 images, through the real training path."""
    from segstudio.engine import Predictor, TrainConfig, evaluate, load_checkpoint, train_on_folder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generate_synth_dataset(tmp_path / "ds", n=40, size=64, seed=0)
        cfg = TrainConfig(epochs=100, batch_size=4, lr=2e-2, crop_size=(64, 64), scale_range=(1.0, 1.0),
                          device="cpu", max_steps=40, val_every=1000, color_jitter=0.0, seed=0)
        ckpt = train_on_folder(tmp_path / "ds", tmp_path / "run", model_name="simple_cnn", config=cfg,
                               model_kwargs={"depth": 3, "width": 16})
        res = evaluate(Predictor(load_checkpoint(ckpt), device="cpu"), tmp_path / "ds", "val")
    finally:
        torch.set_num_threads(threads)
    # chance: predicting background everywhere gives mIoU = IoU(background) / 5 < 0.2
    assert res["miou"] > 0.5, res["iou"]
    present = [c for c, v in res["iou"].items() if v is not None and c != "background"]
    assert sum(res["iou"][c] > 0.3 for c in present) >= len(present) - 1, res["iou"]
