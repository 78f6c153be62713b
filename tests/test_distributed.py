"""Scale-out training under torchrun: 2 CPU processes with gloo on loopback against 1 process.

Each test starts ``python -m torch.distributed.run --standalone --nproc_per_node 2 -m segstudio train ...``
on a tiny real dataset (ISBI 2012 membrane images downscaled to 64×64) and checks what a user of a
cluster relies on: the same weights and exactly the same validation metrics as one process with the same
global batch, a clear non-zero exit (no hang) when a rank fails or is killed, and resume of the killed
run's checkpoint with a different number of processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import ISBI, REPO
from helpers import TINY_UNET
from segstudio.data import SegmentationDataset, eval_transforms
from segstudio.engine import TrainConfig, Trainer, load_checkpoint, train_on_folder
from segstudio.engine.cluster import manifest_for_folder, torchrun_command
from segstudio.engine.distributed import SINGLE
from segstudio.io import find_samples

RUN_TIMEOUT_S = 240  # a generous bound: a hang fails the test instead of blocking CI


def make_isbi_folder(root: Path, n_train: int = 8, n_val: int = 5, size: int = 64, bad_mask: str | None = None) -> Path:
    """A dataset folder of ISBI 2012 pairs downscaled to ``size``² (bilinear image, nearest mask; no ignore pixels).

    With ``bad_mask`` that training sample's mask is replaced by class id 7 (invalid for 2 classes).
    """
    if not (ISBI / "classes.json").is_file():
        pytest.fail(f"ISBI 2012 not found at {ISBI}; tests need ../shared beside the repo (or SEGSTUDIO_SHARED)")
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shutil.copy(ISBI / "classes.json", root / "classes.json")
    for split, n in (("train", n_train), ("val", n_val)):
        stems = (ISBI / f"{split}.txt").read_text().split()[:n]
        for stem in stems:
            with Image.open(ISBI / "images" / f"{stem}.png") as im:
                im.convert("RGB").resize((size, size), Image.BILINEAR).save(root / "images" / f"{stem}.png")
            with Image.open(ISBI / "masks" / f"{stem}.png") as im:
                im.resize((size, size), Image.NEAREST).save(root / "masks" / f"{stem}.png")
        (root / f"{split}.txt").write_text("\n".join(stems) + "\n")
    if bad_mask is not None:
        Image.fromarray(np.full((size, size), 7, np.uint8)).save(root / "masks" / f"{bad_mask}.png")
    return root


# Settings under which 1 and 2 processes are mathematically the same computation: per-sample augmentation
# seeds (so random scale/crop/flips/jitter do not depend on the rank), frozen BatchNorm, crops inside the image
# (no ignore padding, so each rank's mean loss is over equally many pixels), the same global batch.
CONFIG = dict(
    epochs=3,
    batch_size=4,
    lr=1e-2,
    crop_size=(48, 48),
    scale_range=(1.0, 1.25),
    hflip=True,
    vflip=True,
    color_jitter=0.1,
    freeze_bn=True,
    seed=3,
    device="cpu",
)


def cli_args(data: Path, out: Path, cfg: dict = CONFIG, extra: tuple = ()) -> list[str]:
    args = ["train", "--data", str(data), "-o", str(out), "--model", "unet", "--device", cfg["device"]]
    args += [f"--model-arg={k}={v}" for k, v in TINY_UNET.items()]
    args += ["--epochs", str(cfg["epochs"]), "--batch-size", str(cfg["batch_size"]), "--lr", str(cfg["lr"])]
    args += ["--crop-size", "{},{}".format(*cfg["crop_size"]), "--scale-range", "{},{}".format(*cfg["scale_range"])]
    args += ["--jitter", str(cfg["color_jitter"]), "--seed", str(cfg["seed"])]
    args += ["--vflip"] * cfg["vflip"] + ["--no-hflip"] * (not cfg["hflip"]) + ["--freeze-bn"] * cfg["freeze_bn"]
    return args + list(extra)


LAUNCHER = f"{sys.executable} -m torch.distributed.run"  # = torchrun, with this interpreter


def launch(argv: list[str]) -> subprocess.Popen:
    """Run a torchrun command line with gloo on loopback (``--standalone``: c10d rendezvous on a free port)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), TORCH_HOME=os.environ.get("TORCH_HOME", ""))
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def torchrun(args: list[str], nproc: int = 2) -> subprocess.Popen:
    """``torchrun --standalone --nproc_per_node nproc -m segstudio <args>``."""
    return launch([*LAUNCHER.split(), "--standalone", f"--nproc_per_node={nproc}", "-m", "segstudio", *args])


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish within {RUN_TIMEOUT_S}s (hang):\n{err[-3000:]}")
    return proc.returncode, out, err


def single_process_validate(run_dir: Path, data: Path) -> dict:
    """Validation metrics of a run's ``last`` weights computed by one process over the whole val split."""
    loaded = load_checkpoint(run_dir / "last.safetensors")
    samples, classes = find_samples(data, "val")
    val_set = SegmentationDataset(samples, classes.num_classes, eval_transforms())
    trainer = Trainer(loaded.model, loaded.card, val_set, val_set, TrainConfig(device="cpu"), run_dir / "x", dist_ctx=SINGLE)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the ranks ran with one thread: same kernels, bit-identical logits
    try:
        return trainer.validate()
    finally:
        torch.set_num_threads(threads)


def test_two_gloo_processes_match_one_process(tmp_path):
    """The command and manifest the app writes for a cluster, run with 2 CPU processes, against 1 process."""
    data = make_isbi_folder(tmp_path / "isbi")
    manifest = manifest_for_folder(data, tmp_path / "cluster" / "manifest.json")
    argv = torchrun_command(
        manifest, tmp_path / "two", TrainConfig(**CONFIG), model="unet", model_kwargs=dict(TINY_UNET),
        nproc_per_node=2, launcher=LAUNCHER,
    )
    assert "--standalone" in argv and "--nproc-per-node=2" in argv
    proc = launch(argv)
    one = train_on_folder(data, tmp_path / "one", "unet", config=TrainConfig(**CONFIG), model_kwargs=dict(TINY_UNET))
    rc, out, err = finish(proc)
    assert rc == 0, err[-3000:]
    assert out.count("saved ") == 1, out  # rank 0 alone reports

    # Same global batches and gradients: equal weights after 6 AdamW steps (float summation order aside).
    w1, w2 = load_file(str(one.parent / "last.safetensors")), load_file(str(tmp_path / "two" / "last.safetensors"))
    assert set(w1) == set(w2) and not any(k.startswith("module.") for k in w2)
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-5

    h1 = json.loads((tmp_path / "one" / "history.json").read_text())
    h2 = json.loads((tmp_path / "two" / "history.json").read_text())
    assert [h["epoch"] for h in h2] == [1, 2, 3]
    # The logged loss is the all-reduced mean over ranks = the one-process loss of the same global batch.
    np.testing.assert_allclose([h["train_loss"] for h in h2], [h["train_loss"] for h in h1], rtol=1e-5)
    assert h1[0]["train_loss"] != h1[-1]["train_loss"]  # it did train

    card2 = json.loads((tmp_path / "two" / "last.json").read_text())
    assert card2["training"]["distributed"] == {"world_size": 2, "backend": "gloo", "rank_batch": 2}
    # 5 val images split 3 + 2 over the ranks (no padded duplicates): the all-reduced confusion matrix gives
    # exactly the metrics one process computes for the same weights, and every val pixel once.
    m2 = card2["metrics"]
    assert m2 == single_process_validate(tmp_path / "two", data)
    assert m2["pixels"] == 5 * 64 * 64
    m1 = json.loads((tmp_path / "one" / "last.json").read_text())["metrics"]
    assert m1["support"] == m2["support"]
    assert abs(m1["miou"] - m2["miou"]) < 1e-3
    assert 0.3 < m2["pixel_accuracy"] <= 1.0


def _worker_pids(parent: int) -> dict[int, int]:
    """``{RANK: pid}`` of the processes torchrun started under ``parent`` (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            env = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        ranks = [int(e.split(b"=", 1)[1]) for e in env if e.startswith(b"RANK=")]
        if ranks:
            found[ranks[0]] = int(stat.parent.name)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker pids through Linux /proc")
def test_killed_rank_ends_the_job_and_the_run_resumes_with_one_process(tmp_path):
    data = make_isbi_folder(tmp_path / "isbi", n_val=1)
    run = tmp_path / "run"
    cfg = dict(CONFIG, epochs=1000)
    proc = torchrun(cli_args(data, run, cfg, ("--dist-timeout", "60")))
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (run / "last_state.pt").is_file():  # wait until an epoch has been checkpointed
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("torchrun ended or stalled before the first checkpoint:\n" + proc.communicate()[1][-3000:])
        time.sleep(0.2)
    pids = _worker_pids(proc.pid)
    assert set(pids) == {0, 1}, pids
    os.kill(pids[1], signal.SIGKILL)  # as the OOM killer would
    rc, out, err = finish(proc)
    assert rc != 0
    assert "SIGKILL" in err or "exitcode  : -9" in err, err[-3000:]

    # The last checkpoint is intact and resumes with another world size (1 process, same global batch).
    state = torch.load(run / "last_state.pt", weights_only=True)
    assert state["epoch"] >= 1 and state["step"] == 2 * state["epoch"]
    resumed = TrainConfig(**dict(cfg, epochs=state["epoch"] + 1))
    train_on_folder(data, run, "unet", config=resumed, model_kwargs=dict(TINY_UNET), resume=True)
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, state["epoch"] + 2))
    assert torch.load(run / "last_state.pt", weights_only=True)["step"] == state["step"] + 2


def test_a_rank_that_raises_ends_the_job_with_its_error(tmp_path):
    stems = (ISBI / "train.txt").read_text().split()
    data = make_isbi_folder(tmp_path / "isbi", n_val=1, bad_mask=stems[5])
    rc, out, err = finish(torchrun(cli_args(data, tmp_path / "run")))
    assert rc != 0
    assert "segstudio train: error on rank" in err
    assert f"masks/{stems[5]}.png" in err and "0..1" in err  # which file, and what is valid
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_global_batch_must_split_evenly_and_sync_bn_needs_cuda(tmp_path):
    """Checked before any training, with the error the CLI prints."""
    from segstudio.engine.distributed import DistContext

    data = make_isbi_folder(tmp_path / "isbi", n_train=2, n_val=0)
    samples, classes = find_samples(data, "train")
    ds = SegmentationDataset(samples, classes.num_classes)
    model = torch.nn.Conv2d(3, 2, 1)
    card = {"classes": classes.to_json()}
    with pytest.raises(ValueError, match="batch size 5 is the global batch .* 2 processes"):
        Trainer(model, card, ds, config=TrainConfig(batch_size=5, device="cpu"), dist_ctx=DistContext(0, 2))
    with pytest.raises(ValueError, match="sync-bn needs CUDA"):
        Trainer(model, card, ds, config=TrainConfig(sync_bn=True, device="cpu"))
    with pytest.raises(ValueError, match="2 training image.* for 4 processes"):
        Trainer(model, card, ds, config=TrainConfig(batch_size=4, device="cpu"), dist_ctx=DistContext(0, 4))


# --------------------------------------------------------------------------------------------
# cluster hand-off: command, manifest, import


def test_torchrun_command_round_trips_through_the_train_cli(monkeypatch, tmp_path):
    """Every TrainConfig option in the written command parses back to the same config."""
    import segstudio.engine
    from segstudio.cli import main

    config = TrainConfig(
        epochs=7, batch_size=12, lr=3e-4, weight_decay=0.01, crop_size=(128, 96), scale_range=(0.75, 1.5),
        loss="ce+0.5*dice", class_weights="median", freeze_bn=True, freeze_encoder=True, sync_bn=True, num_workers=3,
        device="cuda", seed=11, val_every=2, max_steps=90, hflip=False, vflip=True, rotate=10.0, translate=0.1,
        elastic=4.0, color_jitter=0.0, dist_timeout_s=120.0,
    )
    argv = torchrun_command(
        "/data/lab/manifest.json", "/runs/x", config, model="deeplabv3plus",
        model_kwargs={"encoder": "mobilenet_v2", "output_stride": 8, "aspp_dropout": 0.1}, nproc_per_node=4, nnodes=3,
        rdzv_endpoint="node0.example",
    )
    assert argv[:6] == ["torchrun", "--nnodes=3", "--nproc-per-node=4", "--rdzv-backend=c10d",
                        "--rdzv-endpoint=node0.example:29400", "--rdzv-id=segstudio"]
    seen = {}
    monkeypatch.setattr(segstudio.engine, "train_on_folder", lambda *a, **kw: seen.update(args=a, **kw) or "x")
    assert main(argv[argv.index("segstudio") + 1:]) == 0
    assert seen["config"] == config
    assert seen["args"] == ("/data/lab/manifest.json", "/runs/x") and seen["model_name"] == "deeplabv3plus"
    assert seen["model_kwargs"] == {"encoder": "mobilenet_v2", "output_stride": 8, "aspp_dropout": 0.1}

    with pytest.raises(ValueError, match="global batch 12 does not divide over 8 processes"):
        torchrun_command("m.json", "out", config, init="default", nproc_per_node=8)
    with pytest.raises(ValueError, match="rendezvous endpoint"):
        torchrun_command("m.json", "out", config, init="default", nproc_per_node=2, nnodes=2)
    with pytest.raises(ValueError, match="exactly one of model"):
        torchrun_command("m.json", "out", config)


def test_manifest_lists_the_labelled_images_and_travels_with_the_folder(camvid, tmp_path):
    from helpers import camvid_stems, make_app_folder
    from segstudio.engine.finetune import holdout_split

    folder = make_app_folder(tmp_path / "app", camvid, camvid_stems(camvid, "train", 6))
    manifest = manifest_for_folder(folder, folder / "labels" / "cluster" / "manifest.json", holdout_fraction=0.2)
    samples, classes = find_samples(folder)
    train, val = holdout_split(samples, 0.2)
    assert find_samples(manifest, "train") == (train, classes) and find_samples(manifest, "val")[0] == val
    assert len(val) >= 1 and len(train) + len(val) == 6
    text = manifest.read_text()
    assert str(tmp_path) not in text  # relative paths: the folder can move (e.g. rsync to the cluster)
    moved = shutil.copytree(folder, tmp_path / "elsewhere" / "app")
    m_train, m_classes = find_samples(moved / "labels" / "cluster" / "manifest.json")
    assert [s.image for s in m_train] == [moved / s.image.name for s in train] and m_classes == classes

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON dataset manifest"):
        find_samples(bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a SegStudio dataset manifest"):
        find_samples(bad)
    (moved / train[0].image.name).unlink()
    with pytest.raises(FileNotFoundError, match=f"lists .*{train[0].image.name}, which does not exist"):
        find_samples(moved / "labels" / "cluster" / "manifest.json")
    with pytest.raises(FileNotFoundError, match="no 'test' split"):
        find_samples(manifest, "test")


def _tiny_run(run: Path, classes) -> Path:
    from segstudio.engine import save_checkpoint
    from segstudio.engine.checkpoint import new_card
    from segstudio.models import get_model

    torch.manual_seed(0)
    model = get_model("unet", classes.num_classes, **TINY_UNET)
    path = save_checkpoint(run, model, new_card("unet", classes, dict(TINY_UNET), name="cluster run"))
    (run / "history.json").write_text('[{"epoch": 1}]')
    return path


def test_import_checkpoint_refuses_other_classes_and_broken_files(camvid, tmp_path):
    from helpers import camvid_stems, make_app_folder
    from segstudio.core import ClassSpec
    from segstudio.engine import CheckpointError, list_versions
    from segstudio.engine.cluster import import_checkpoint

    folder = make_app_folder(tmp_path / "app", camvid, camvid_stems(camvid, "train", 1))
    good = _tiny_run(tmp_path / "run", find_samples(folder)[1])
    other = _tiny_run(tmp_path / "other", ClassSpec(("a", "b")))
    with pytest.raises(ValueError, match="predicts a, b but .* is labelled with Sky"):
        import_checkpoint(other, folder)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"junk")
    shutil.copy(good.with_suffix(".json"), tmp_path / "broken" / "model.json")
    with pytest.raises(CheckpointError):
        import_checkpoint(tmp_path / "broken", folder)
    assert list_versions(folder) == []  # nothing written by the refused imports
    new = import_checkpoint(tmp_path / "run", folder)
    assert list_versions(folder) == [new.parent] and new.parent.name == "v001"
    assert new.read_bytes() == good.read_bytes() and (new.parent / "history.json").is_file()
    card = json.loads(new.with_suffix(".json").read_text())
    assert card["name"] == "app/v001" and card["imported_from"] == str(good.resolve())


def test_cluster_dialog_writes_command_and_manifest_and_import_switches_model(qtbot, camvid, tmp_path):
    from helpers import camvid_stems, make_app_folder
    from segstudio.engine import list_versions
    from segstudio.gui.main_window import MainWindow
    from segstudio.io.datasets import read_manifest

    folder = make_app_folder(tmp_path / "app", camvid, camvid_stems(camvid, "train", 5))
    win = MainWindow(load_checkpoint(None))
    qtbot.addWidget(win)
    win.open_folder(folder)
    qtbot.waitUntil(lambda: win.job is None, timeout=120_000)
    dialog = win.run_on_cluster()
    qtbot.addWidget(dialog)
    manifest = folder / "labels" / "cluster" / "manifest.json"
    assert dialog.manifest_path == manifest and dialog.manifest_edit.text() == str(manifest)
    train, _ = read_manifest(manifest, "train")
    assert len(train) + len(read_manifest(manifest, "val")[0]) == 5

    dialog.remote.setText("/scratch/lab/app")
    dialog.nproc.setValue(2)
    dialog.nnodes.setValue(2)
    dialog.endpoint.setText("node0.example:29500")
    text = dialog.command_text()
    for part in ("torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d --rdzv-endpoint=node0.example:29500",
                 "-m segstudio train --data /scratch/lab/app/labels/cluster/manifest.json",
                 "-o /scratch/lab/app/labels/cluster/run --init default", "--batch-size 8"):
        assert part in text, (part, text)
    # The one-click config is the recipe: the cluster run chooses crop, loss, lr, steps itself (only the global
    # batch, which must divide over the processes, is spelled out).
    assert "--max-steps" not in text and "--lr " not in text and "--loss" not in text and "--no-recipe" not in text
    dialog.batch.setValue(6)  # 6 images per step cannot split over 4 processes
    assert dialog.command_text() == "" and "does not divide over 4 processes" in dialog.error.text()
    dialog.batch.setValue(8)
    assert "--batch-size 8" in dialog.command_text() and dialog.error.text() == ""
    dialog.copy_command.click()
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text() == dialog.command_text()

    run = _tiny_run(tmp_path / "cluster_run", win.classes)
    assert win.import_trained_checkpoint(run)
    qtbot.waitUntil(lambda: win.job is None and win.model.path.parent.name == "v001", timeout=60_000)
    assert list_versions(folder) == [folder / "labels" / "models" / "v001"]
    assert win.model_panel.model_combo.currentText() == "app/v001"
    assert win.model.card["imported_from"] == str(run.resolve())


def test_a_time_budget_under_two_processes_ends_every_rank_together(tmp_path):
    """With --budget each rank measures its own step times and clock; the plan, the validation epochs and the
    stop are agreed over the ranks (min / max all-reduce), so no rank trains alone or waits forever for a peer."""
    data = make_isbi_folder(tmp_path / "isbi")
    args = cli_args(data, tmp_path / "two", extra=("--budget", "0.25"))
    args[args.index("--epochs") + 1] = "100000"  # a cap far away: the 15-s budget ends the run
    rc, out, err = finish(torchrun(args))
    assert rc == 0, err[-3000:]
    assert out.count("saved ") == 1, out  # rank 0 alone reports
    card = json.loads((tmp_path / "two" / "model.json").read_text())
    schedule = card["training"]["schedule"]
    # No step cap within reach: the budget ends the run on every rank (issue 30, item 10), within one step, the
    # final validation and the checkpoint write (and the process-group start-up of two ranks: 10 s stated reserve).
    assert schedule["budget_s"] == 15.0 and schedule["stopped"] == "budget", schedule
    assert schedule["steps_done"] >= 3 and schedule["time_s"] <= 15.0 + 2 * schedule["step_s"] + (schedule.get("val_s") or 0) + 10.0, schedule
    assert card["training"]["distributed"]["world_size"] == 2
