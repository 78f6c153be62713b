"""The command line, called in-process: segstudio.cli.main([...]) -> exit code."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import TINY_UNET, camvid_stems, make_dataset_folder
from segstudio.cli import main
from segstudio.core import blend_overlay
from segstudio.engine import Predictor, evaluate, load_checkpoint, save_checkpoint
from segstudio.engine.checkpoint import new_card
from segstudio.io import load_classes, read_image
from segstudio.models import get_model


@pytest.fixture(scope="module")
def checkpoint(camvid, tmp_path_factory):
    import torch

    torch.manual_seed(11)
    model = get_model("unet", 11, **TINY_UNET).eval()
    classes = load_classes(camvid / "classes.json")
    return save_checkpoint(tmp_path_factory.mktemp("ckpt"), model, new_card("unet", classes, dict(TINY_UNET)))


@pytest.fixture(scope="module")
def small_dataset(camvid, tmp_path_factory):
    return make_dataset_folder(
        tmp_path_factory.mktemp("data") / "ds",
        camvid,
        {"train": camvid_stems(camvid, "train", 2), "val": camvid_stems(camvid, "val", 2)},
    )


def test_predict_writes_label_maps_and_overlays(camvid, checkpoint, tmp_path, capsys):
    stems = camvid_stems(camvid, "val", 2)
    images = [camvid / "images" / f"{s}.png" for s in stems]
    out = tmp_path / "pred"
    rc = main(["predict", *map(str, images), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"])
    assert rc == 0
    assert "wrote 2 label maps" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{s}.png" for s in stems] + [f"{s}_overlay.png" for s in stems])

    predictor = Predictor(load_checkpoint(checkpoint), device="cpu")
    for path in images:
        image = read_image(path)
        with Image.open(out / f"{path.stem}.png") as im:
            assert im.mode == "L"
            labels = np.asarray(im)
        assert labels.shape == image.shape[:2] == (360, 480)
        assert labels.dtype == np.uint8 and labels.max() < 11
        np.testing.assert_array_equal(labels, predictor.predict(image))
        with Image.open(out / f"{path.stem}_overlay.png") as im:
            assert im.mode == "RGB"
            overlay = np.asarray(im)
        np.testing.assert_array_equal(overlay, blend_overlay(image, labels, predictor.classes, 0.5))


def test_predict_sweeps_stale_save_temps_in_its_output_folder(camvid, checkpoint, tmp_path):
    """A temp file an earlier killed run left in ``-o`` is removed; a user's look-alike file is kept."""
    from segstudio.io.atomic import STALE_TEMP_AGE_S, is_temp_name, temp_prefix

    stem = camvid_stems(camvid, "val", 1)[0]
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f"{temp_prefix(stem + '.png')}ab12cd34.tmp"
    assert is_temp_name(stale.name)
    stale.write_bytes(b"half a png")
    old = stale.stat().st_mtime - 2 * STALE_TEMP_AGE_S
    os.utime(stale, (old, old))
    mine = out / ".notes.tmp"
    mine.write_text("keep me")
    rc = main(["predict", str(camvid / "images" / f"{stem}.png"), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"])
    assert rc == 0
    assert not stale.exists() and mine.read_text() == "keep me"
    assert (out / f"{stem}.png").is_file()


def test_predict_folder_skips_unreadable_images(camvid, checkpoint, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    stem = camvid_stems(camvid, "val", 1)[0]
    shutil.copy(camvid / "images" / f"{stem}.png", folder / f"{stem}.png")
    (folder / "broken.png").write_bytes(b"")
    out = tmp_path / "out"
    rc = main(["predict", str(folder), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu", "--opacity", "1"])
    assert rc == 1
    assert "1 unreadable" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.png", f"{stem}_overlay.png"]


def test_evaluate_writes_metrics_json(small_dataset, checkpoint, tmp_path, capsys):
    metrics = tmp_path / "m" / "metrics.json"
    rc = main(["evaluate", "--data", str(small_dataset), "--checkpoint", str(checkpoint), "--device", "cpu", "-o", str(metrics)])
    assert rc == 0
    assert "mIoU" in capsys.readouterr().out
    got = json.loads(metrics.read_text())
    ref = evaluate(Predictor(load_checkpoint(checkpoint), device="cpu"), small_dataset, "val")
    assert got["miou"] == pytest.approx(ref["miou"])
    assert got["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"])
    assert got["confusion_matrix"] == ref["confusion_matrix"]
    assert got["images"] == 2 and got["split"] == "val"
    assert set(got["iou"]) == set(load_classes(small_dataset / "classes.json").names)


def test_evaluate_with_crf_scores_the_refined_labels(small_dataset, checkpoint, tmp_path, capsys):
    """``evaluate --crf-params``: the metrics are those of CRF-refined predictions (DeepLab v1's protocol)."""
    from segstudio.io.datasets import find_samples
    from segstudio.io.images import read_image
    from segstudio.io.labels import read_index_png
    from segstudio.metrics import ConfusionMatrix
    from segstudio.postprocess import refine
    from segstudio.postprocess.pipeline import parse_crf_params

    metrics = tmp_path / "crf.json"
    rc = main(["evaluate", "--data", str(small_dataset), "--checkpoint", str(checkpoint), "--device", "cpu",
               "--crf-params", "iterations=3", "-o", str(metrics)])
    assert rc == 0
    got = json.loads(metrics.read_text())
    assert got["crf"]["iterations"] == 3
    predictor = Predictor(load_checkpoint(checkpoint), device="cpu")
    samples, classes = find_samples(small_dataset, "val")
    cm, plain = ConfusionMatrix(classes.num_classes), ConfusionMatrix(classes.num_classes)
    crf = parse_crf_params("iterations=3")
    for s in samples:
        image, mask = read_image(s.image), read_index_png(s.mask)
        cm.update(mask, refine(image, predictor.predict_proba(image), crf, num_classes=classes.num_classes))
        plain.update(mask, predictor.predict(image))
    assert got["confusion_matrix"] == cm.mat.tolist()
    assert cm.mat.tolist() != plain.mat.tolist(), "the CRF changed some pixels"


def test_evaluate_without_labelled_pixels(small_dataset, checkpoint, tmp_path, capsys):
    """A split whose masks are all 'ignore' has no metrics: nulls in the JSON, not a crash."""
    ds = tmp_path / "ds"
    shutil.copytree(small_dataset, ds)
    for m in (ds / "masks").iterdir():
        with Image.open(m) as im:
            size = im.size
        Image.new("L", size, 255).save(m)
    metrics = tmp_path / "metrics.json"
    rc = main(["evaluate", "--data", str(ds), "--checkpoint", str(checkpoint), "--device", "cpu", "-o", str(metrics)])
    assert rc == 0
    got = json.loads(metrics.read_text())
    assert got["pixels"] == 0 and got["miou"] is None and got["pixel_accuracy"] is None
    assert "mIoU -" in capsys.readouterr().out


def test_train_writes_checkpoint(small_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(small_dataset), "--model", "unet", "--max-steps", "2", "--epochs", "3"]
    args += ["--batch-size", "1", "--crop-size", "64,64", "--device", "cpu", "-o", str(out)]
    assert main(args) == 0
    assert f"saved {out / 'model.safetensors'}" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and (out / "model.json").is_file()
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"] == "unet" and card["parent"] is None
    assert card["training"]["steps_done"] == 2
    assert card["training"]["config"]["crop_size"] == [64, 64] and card["training"]["config"]["batch_size"] == 1
    td = card["training_data"]
    assert (td["path"], td["images"], td["val_images"]) == (str(small_dataset.resolve()), 2, 2)
    assert len(td["image_sha1"]) == 2 and len(td["val_image_sha1"]) == 2  # content keys for the held-out rule
    assert "recipe" not in card["training"] or card["training"]["recipe"] is None  # --model: no recipe
    assert 0.0 <= card["metrics"]["val"]["miou"] <= 1.0  # validated on the val split
    loaded = load_checkpoint(out)
    assert loaded.classes.num_classes == 11


def test_train_init_uses_the_recipe_and_explicit_flags_win(small_dataset, tmp_path):
    """``--init`` without schedule flags: the recipe; each flag given overrides its choice (issue 16)."""
    out = tmp_path / "ft"
    args = ["train", "--data", str(small_dataset), "--init", "default", "--max-steps", "2", "--crop-size", "64,64"]
    args += ["--device", "cpu", "-o", str(out)]
    assert main(args) == 0
    card = json.loads((out / "model.json").read_text())
    tr = card["training"]
    assert tr["recipe"]["overridden"] == {"crop_size": [64, 64]} and "crop_size" not in tr["recipe"]["choices"]
    assert tr["config"]["crop_size"] == [64, 64] and tr["config"]["loss"] == "ce+dice"  # chosen by the recipe
    assert tr["config"]["budget_s"] is None and tr["steps_done"] == 2  # explicit steps: no time limit
    assert tr["lr_groups"] == {"all": tr["config"]["lr"]}  # same classes as the default model: no new head
    for key in ("created", "training_command", "data_note", "cpu_latency_ms_360x480"):
        assert card.get(key) != load_checkpoint(None).card[key]
    assert "name" not in card


def test_train_budget_flag_plans_the_schedule(small_dataset, tmp_path):
    out = tmp_path / "ft"
    args = ["train", "--data", str(small_dataset), "--init", "default", "--budget", "0.1", "--crop-size", "64,64"]
    args += ["--device", "cpu", "-o", str(out)]
    assert main(args) == 0
    tr = json.loads((out / "model.json").read_text())["training"]
    sched = tr["schedule"]
    assert tr["config"]["budget_s"] == pytest.approx(6.0) and sched["budget_s"] == pytest.approx(6.0)
    # A budget and no step cap: the budget ends the run (no early stop in the one-click recipe), within one step,
    # the final validation and the checkpoint write of the budget (issue 30, item 10).
    assert sched["stopped"] == "budget" and sched["steps_done"] >= 1, sched
    extra = (sched.get("val_s") or 0.0) + (sched.get("save_s") or 0.0)
    # A loaded machine may not reach the steps the schedule times: then a step is the run's mean step (no wall-clock
    # constant: the budget must end the run within two steps, whatever a step costs on this machine).
    step_s = sched["step_s"] or (sched["time_s"] - extra) / sched["steps_done"]
    assert sched["time_s"] <= sched["budget_s"] + 2 * step_s + extra + 1.0, sched


def test_train_unet_with_an_imagenet_encoder(small_dataset, tmp_path):
    """``--model unet --encoder mobilenet_v2``: the encoder variant, ImageNet-initialised (conftest seeds the
    weights), recorded in the card and rebuilt from it."""
    from segstudio.models.unet import EncoderUNet

    out = tmp_path / "run"
    args = ["train", "--data", str(small_dataset), "--model", "unet", "--encoder", "mobilenet_v2", "--max-steps", "1"]
    args += ["--batch-size", "2", "--crop-size", "64,64", "--device", "cpu", "-o", str(out), "--val-every", "99"]
    assert main(args) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["model_kwargs"] == {"encoder": "mobilenet_v2"} and card["encoder_pretrained"] is True
    loaded = load_checkpoint(out)
    assert isinstance(loaded.model, EncoderUNet) and loaded.model.encoder.out_channels[-1] == 320


def test_train_model_args_and_augmentation_reach_the_card(small_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(small_dataset), "--model", "unet", "--max-steps", "1", "--batch-size", "1"]
    args += ["--crop-size", "48,48", "--device", "cpu", "-o", str(out), "--val-every", "99"]
    args += ["--model-arg", "base_channels=4", "--model-arg", "depth=2", "--vflip", "--rotate", "15", "--elastic", "8"]
    assert main(args) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["model_kwargs"] == {"base_channels": 4, "depth": 2}
    config = card["training"]["config"]
    assert (config["vflip"], config["rotate"], config["elastic"], config["hflip"]) == (True, 15.0, 8.0, True)
    model = load_checkpoint(out).model
    assert model.classifier.in_channels == 4 and len(model.up) == 2


def test_train_rejects_malformed_model_arg(small_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(small_dataset), "--model", "unet", "-o", str(tmp_path / "r"), "--model-arg", "nokey"])
    assert exc.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "{tmp}/no_such_dir", "-o", "{tmp}/o", "--checkpoint", "{ckpt}"], "no such file or folder"),
        (["predict", "{img}", "-o", "{tmp}/o", "--checkpoint", "{tmp}/missing.safetensors"], "no such checkpoint"),
        (["predict", "{img}", "-o", "{tmp}/o", "--model", "no_such_bundled_model"], "no bundled model 'no_such_bundled_model'"),
        (["evaluate", "--data", "{tmp}/no_such_dir", "--checkpoint", "{ckpt}", "-o", "{tmp}/m.json"], "not a dataset"),
        (["evaluate", "--data", "{data}", "--split", "test", "--checkpoint", "{ckpt}", "-o", "{tmp}/m.json"], "test.txt"),
        (["train", "--data", "{tmp}/no_such_dir", "--model", "unet", "-o", "{tmp}/r"], "not a dataset"),
        (["train", "--data", "{data}", "--model", "no_such_net", "-o", "{tmp}/r"], "unknown model 'no_such_net'"),
        (["train", "--data", "{data}", "-o", "{tmp}/r"], "give a model name"),
    ],
)
def test_bad_inputs_exit_2_with_message(argv, message, camvid, checkpoint, small_dataset, tmp_path, capsys):
    img = camvid / "images" / f"{camvid_stems(camvid, 'val', 1)[0]}.png"
    fill = {"tmp": str(tmp_path), "ckpt": str(checkpoint), "img": str(img), "data": str(small_dataset)}
    rc = main([a.format(**fill) for a in argv] + ["--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"segstudio {argv[0]}: error:" in err and message in err
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "r" / "model.safetensors").exists()


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["train", "--model", "unet"])  # --data and -o are required
    assert ei.value.code == 2
    assert "--data" in capsys.readouterr().err


def test_segstudio_folder_opens_the_gui_on_that_folder(tmp_path, monkeypatch):
    """``segstudio FOLDER`` is ``segstudio gui FOLDER``; commands and options keep their meaning."""
    import segstudio.cli as cli

    seen = []
    monkeypatch.setattr(cli, "cmd_gui", lambda a: seen.append((a.command, a.folder, a.checkpoint)) or 0)
    assert cli.main([str(tmp_path)]) == 0
    assert cli.main(["-v", str(tmp_path), "--checkpoint", "c.safetensors"]) == 0
    assert cli.main([]) == 0
    assert seen == [("gui", str(tmp_path), None), ("gui", str(tmp_path), "c.safetensors"), ("gui", None, None)]
    assert cli.main(["models"]) == 0 and len(seen) == 3  # a command name is still that command


# --------------------------------------------------------------------------------------------
# one schema for the training options (TrainConfig field metadata -> parser, config, cluster flags)

# A non-default value for every TrainConfig field; the round-trip test fails when a new field is not listed.
_CHANGED = {
    "epochs": 7, "batch_size": 12, "lr": 3e-4, "weight_decay": 0.01, "crop_size": (128, 96),
    "scale_range": (0.75, 1.5), "loss": "ce+0.5*dice", "class_weights": "median", "freeze_bn": True,
    "freeze_encoder": True, "holdout_fraction": 0.3, "num_workers": 3, "device": "cuda", "seed": 11, "val_every": 2,
    "train_split": "train+val", "max_steps": 90, "sync_bn": True, "dist_timeout_s": 120.0, "hflip": False, "vflip": True, "rotate": 10.0,
    "translate": 0.1, "elastic": 4.0, "color_jitter": 0.0, "recipe": True, "budget_s": 90.0, "lr_head": 0.01,
    "warmup_fraction": 0.05, "probe_fraction": 0.2, "adapt_bn": False, "class_weight_max": 5.0, "val_interval_s": 12.5, "patience": 4,
    "keep": "last", "amp": "off",
}


def _round_trip(config, init: bool):
    from segstudio.cli import build_parser
    from segstudio.cli import train_config_from_args
    from segstudio.engine.options import config_to_args

    start = ["--init", "default"] if init else ["--model", "unet"]
    args = build_parser().parse_args(["train", "--data", "d", "-o", "o", *start, *config_to_args(config)])
    return train_config_from_args(args)


def test_cli_fine_tune_config_is_the_one_click_config():
    """``segstudio train --init`` and the GUI's one-click fine-tune build the same TrainConfig (issue 30, item 14):
    without flags exactly ``finetune_config()``, and each flag is the same override in both."""
    from segstudio.cli import build_parser, train_config_from_args
    from segstudio.engine import finetune_config

    def cli(*flags):
        return train_config_from_args(build_parser().parse_args(["train", "--data", "d", "-o", "o", "--init", "default", *flags]))

    assert cli() == finetune_config()
    assert cli("--budget", "1.5") == finetune_config(budget_s=90.0)
    assert cli("--crop-size", "64,96", "--lr", "0.01") == finetune_config(crop_size=(64, 96), lr=0.01)
    assert cli("--holdout-fraction", "0.25") == finetune_config(holdout_fraction=0.25)
    plain = train_config_from_args(build_parser().parse_args(["train", "--data", "d", "-o", "o", "--model", "unet"]))
    assert not plain.recipe and plain.holdout_fraction == 0.0


def test_every_train_config_field_round_trips_through_its_flag():
    """config -> flags -> parse -> config is the identity, one field at a time and all at once."""
    import dataclasses

    from segstudio.engine import TrainConfig
    from segstudio.engine.options import cli_fields

    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert sorted(names) == sorted(_CHANGED)
    assert len({opt.flag for _, opt, _ in cli_fields()}) == len(names)  # one distinct flag per field
    base = TrainConfig()
    for name in names:
        config = dataclasses.replace(base, **{name: _CHANGED[name]})
        assert getattr(config, name) != getattr(base, name)
        assert _round_trip(config, init=False) == config, name
    everything = TrainConfig(**_CHANGED)
    assert _round_trip(everything, init=False) == everything
    assert _round_trip(everything, init=True) == everything
    # tri-state booleans: an explicit False survives (the recipe must not override it)
    off = dataclasses.replace(base, recipe=True, holdout_fraction=0.2, freeze_bn=False, adapt_bn=False)
    assert _round_trip(off, init=True) == off


def test_unset_train_flags_stay_none_for_the_recipe():
    """No flag: every recipe field is None (the recipe fills it with --init); recipe follows --init."""
    from segstudio.cli import build_parser
    from segstudio.engine.options import config_from_args
    from segstudio.engine.trainer import RECIPE_FIELDS

    args = build_parser().parse_args(["train", "--data", "d", "-o", "o", "--init", "default"])
    cfg = config_from_args(args, recipe=True, holdout_fraction=0.0)
    assert all(getattr(cfg, f) is None for f in RECIPE_FIELDS)
    assert cfg.weight_decay == 1e-4 and cfg.hflip is True and cfg.color_jitter == 0.2 and cfg.num_workers is None
    args = build_parser().parse_args(["train", "--data", "d", "-o", "o", "--init", "default", "--no-recipe"])
    assert args.recipe is False


def test_a_train_config_field_without_a_flag_is_refused():
    import dataclasses

    from segstudio.engine.options import cli_fields

    Bad = dataclasses.make_dataclass("Bad", [("x", int, dataclasses.field(default=1))])
    with pytest.raises(TypeError, match="Bad.x has no command-line option|x has no command-line option"):
        cli_fields(Bad)


_NO_TORCH_SCRIPT = r"""
import contextlib, io, json, sys
from segstudio.cli import build_parser, main
from segstudio.engine.options import config_from_args

HEAVY = {"torch", "torchvision", "PySide6", "cv2"}
out = {}
def show(argv):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
    out[" ".join(argv)] = buf.getvalue()

for argv in (["--help"], ["train", "--help"], ["predict", "--help"], ["evaluate", "--help"]):
    show(argv)
args = build_parser().parse_args(["train", "--data", "d", "-o", "o", "--epochs", "3", "--crop-size", "64,48",
                                  "--class-weights", "median"])
cfg = config_from_args(args, recipe=False)
out["config"] = [cfg.epochs, list(cfg.crop_size), cfg.class_weights]
out["loaded"] = sorted({m.split(".")[0] for m in sys.modules} & HEAVY)
show(["convert", "--help"])  # lists the label formats: their registry (io: OpenCV, no torch) is imported now
out["to"] = build_parser().parse_args(["convert", "a", "b", "--to", "voc"]).to
out["loaded_convert"] = sorted({m.split(".")[0] for m in sys.modules} & HEAVY)
print(json.dumps(out))
"""


def test_help_and_argument_parsing_import_no_torch():
    """``segstudio --help``, ``segstudio train --help`` (its flags generated from the TrainConfig fields) and
    parsing a command's arguments load neither torch nor Qt nor OpenCV (a fresh interpreter checks sys.modules):
    the engine is imported when a command runs, so the help comes at once. ``convert --help`` lists the label
    formats, so it imports their registry (``segstudio.io``: OpenCV, no torch)."""
    import subprocess
    import sys
    from pathlib import Path

    from segstudio.engine.options import cli_fields
    from segstudio.io.formats import FORMATS
    from segstudio.losses import CLASS_WEIGHT_METHODS

    res = subprocess.run([sys.executable, "-c", _NO_TORCH_SCRIPT], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["loaded"] == [], f"building the parser / --help imported {out['loaded']}"
    assert out["loaded_convert"] == ["cv2"]
    assert "train" in out["--help"] and "convert" in out["--help"] and "gui" in out["--help"]
    flags = [opt.flag for _, opt, _ in cli_fields()]
    assert len(flags) >= 30 and all(flag in out["train --help"] for flag in flags)
    assert "{" + ",".join(CLASS_WEIGHT_METHODS) + "}" in out["train --help"]
    assert ", ".join(FORMATS) in " ".join(out["convert --help"].split())  # the registry's names, listed on demand
    assert "--crf-params" in out["predict --help"] and "--limit" in out["evaluate --help"]
    assert out["config"] == [3, [64, 48], "median"] and out["to"] == "voc"


def test_torch_free_train_config_matches_the_engine():
    """TrainConfig lives in a torch-free module (fast ``--help``); the names the engine and the losses define
    are the same objects / values."""
    from segstudio.engine import TrainConfig, train_config, trainer
    from segstudio.engine.distributed import DEFAULT_TIMEOUT_S
    from segstudio.losses import CLASS_WEIGHT_METHODS

    assert trainer.TrainConfig is TrainConfig is train_config.TrainConfig
    assert trainer.RECIPE_FIELDS is train_config.RECIPE_FIELDS
    assert train_config.CLASS_WEIGHT_METHODS == CLASS_WEIGHT_METHODS
    assert TrainConfig().dist_timeout_s == DEFAULT_TIMEOUT_S == train_config.DEFAULT_TIMEOUT_S
