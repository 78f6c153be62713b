"""Model ▸ New model… (pytest-qt, offscreen): the dialog's choices, a real training run of a new architecture
on a tiny folder through the window's one training path, and the bundled models in the model picker."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QDialogButtonBox

from segstudio.core import IGNORE_INDEX
from segstudio.data.synth import SYNTH_CLASSES, synth_sample
from segstudio.engine import finetune_config, list_versions, load_checkpoint
from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, default_checkpoint
from segstudio.gui.new_model_dialog import (
    NewModelDialog,
    bundled_label,
    bundled_models,
    count_parameters,
    imagenet_weights_on_disk,
)
from segstudio.io import save_labels
from segstudio.models import get_model, get_spec, list_models
from qt_helpers import show_window, wait_idle

ISBI = DEFAULT_MODEL_DIR / "isbi2012_unet.safetensors"


def make_window(qtbot, model=None):
    return show_window(qtbot, model, active=False)




@pytest.fixture()
def synth_folder(tmp_path):
    """Four 64×64 synthetic images, three of them with saved labels (SYNTH_CLASSES)."""
    for i in range(4):
        image, labels = synth_sample(7, i, size=(64, 64))
        path = tmp_path / f"s{i}.png"
        Image.fromarray(image).save(path)
        if i < 3:
            save_labels(path, labels, SYNTH_CLASSES)
    return tmp_path


def test_dialog_lists_every_architecture_with_its_paper(qtbot):
    dlg = NewModelDialog(SYNTH_CLASSES, finetune_config(), images=3)
    qtbot.addWidget(dlg)
    names = [dlg.arch_combo.itemData(i) for i in range(dlg.arch_combo.count())]
    assert names == list_models()
    for i, name in enumerate(names):
        dlg.arch_combo.setCurrentIndex(i)
        assert dlg.paper.text() == get_spec(name).paper
        assert name in dlg.arch_combo.itemText(i)
    summary = dlg.summary["classes"].text()
    assert summary.startswith(f"{SYNTH_CLASSES.num_classes}:") and all(n in summary for n in SYNTH_CLASSES.names)
    assert "recipe" in dlg.summary["budget"].text() and "budget" in dlg.summary["budget"].text()
    fixed = NewModelDialog._budget_text(finetune_config(max_steps=7, lr=1e-3))
    assert "7 steps" in fixed and "lr 0.001" in fixed and "batch auto" in fixed  # the rest left to the recipe


def test_encoder_combo_only_for_encoder_based_architectures(qtbot):
    dlg = NewModelDialog(SYNTH_CLASSES, finetune_config(), images=3)
    qtbot.addWidget(dlg)
    for name in list_models():
        dlg.arch_combo.setCurrentIndex(dlg.arch_combo.findData(name))
        spec = get_spec(name)
        assert dlg.encoder_combo.isEnabled() == bool(spec.encoders), name
        if spec.encoders and spec.default_encoder is None:  # optional encoder (U-Net): "none" first, picked
            items = [dlg.encoder_combo.itemData(i) for i in range(dlg.encoder_combo.count())]
            assert items == [None, *spec.encoders], name
            assert dlg.encoder() is None and dlg.model_kwargs() == {}
            assert not dlg.pretrained.isEnabled()
            dlg.encoder_combo.setCurrentIndex(dlg.encoder_combo.findData("mobilenet_v2"))
            assert dlg.model_kwargs() == {"encoder": "mobilenet_v2", "pretrained": True}
        elif spec.encoders:
            assert [dlg.encoder_combo.itemData(i) for i in range(dlg.encoder_combo.count())] == list(spec.encoders)
            assert dlg.encoder() == spec.default_encoder
            assert set(dlg.model_kwargs()) == {"encoder", "pretrained"}
        else:
            assert dlg.encoder() is None and dlg.model_kwargs() == {}
            assert not dlg.pretrained.isEnabled() and "no ImageNet encoder" in dlg.summary["init"].text()


def test_weights_note_mobilenet_on_disk_resnet_vgg_random_init(qtbot):
    # conftest seeds $TORCH_HOME with MobileNetV2's weights only (the offline state of this project)
    assert imagenet_weights_on_disk("mobilenet_v2")
    assert not imagenet_weights_on_disk("resnet18") and not imagenet_weights_on_disk("vgg16")
    dlg = NewModelDialog(SYNTH_CLASSES, finetune_config(), images=3)
    qtbot.addWidget(dlg)
    dlg.arch_combo.setCurrentIndex(dlg.arch_combo.findData("deeplabv3plus"))
    combo = dlg.encoder_combo
    text = {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}
    assert "ImageNet weights on disk" in text["mobilenet_v2"]
    for enc in ("resnet18", "vgg16"):
        assert "random init — no weights offline" in text[enc]

    combo.setCurrentIndex(combo.findData("mobilenet_v2"))
    assert dlg.pretrained.isEnabled() and dlg.pretrained.isChecked()
    assert dlg.model_kwargs() == {"encoder": "mobilenet_v2", "pretrained": True}
    assert "ImageNet weights" in dlg.summary["init"].text()
    dlg.pretrained.setChecked(False)
    assert dlg.model_kwargs() == {"encoder": "mobilenet_v2", "pretrained": False}
    for enc in ("resnet18", "vgg16"):
        combo.setCurrentIndex(combo.findData(enc))
        assert not dlg.pretrained.isEnabled() and not dlg.pretrained.isChecked()
        assert dlg.model_kwargs() == {"encoder": enc, "pretrained": False}
        assert "random init" in dlg.summary["init"].text() and "no" in dlg.summary["init"].text()


def test_parameter_count_on_a_worker_matches_the_built_model(qtbot):
    dlg = NewModelDialog(SYNTH_CLASSES, finetune_config(), images=3)
    qtbot.addWidget(dlg)
    dlg.arch_combo.setCurrentIndex(dlg.arch_combo.findData("lraspp"))
    dlg.encoder_combo.setCurrentIndex(dlg.encoder_combo.findData("resnet18"))
    k = SYNTH_CLASSES.num_classes
    real = sum(p.numel() for p in get_model("lraspp", k, encoder="resnet18", pretrained=False).parameters())
    assert count_parameters("lraspp", k, {"encoder": "resnet18"}) == real
    qtbot.waitUntil(lambda: dlg.param_count is not None, timeout=30_000)
    assert dlg.param_count == real
    assert f"{real:,}" in dlg.summary["params"].text()


def test_no_saved_labels_disables_ok(qtbot):
    dlg = NewModelDialog(SYNTH_CLASSES, finetune_config(), images=0)
    qtbot.addWidget(dlg)
    assert not dlg.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert "no saved labels" in dlg.summary["data"].text()


def test_new_model_trains_in_a_worker_and_becomes_the_current_model(qtbot, synth_folder):
    win = make_window(qtbot)  # no start model: a new model needs none
    win.finetune_config = finetune_config(max_steps=2, batch_size=2, crop_size=(64, 64))
    win.open_folder(synth_folder)
    wait_idle(qtbot, win)
    assert win.classes.names == SYNTH_CLASSES.names
    menu_texts = [a.text() for m in win.menuBar().actions() if m.menu() for a in m.menu().actions()]
    assert "New model…" in menu_texts

    threads = []
    import segstudio.gui.main_window as mw

    real_train = mw.train_on_folder

    def spy(*args, **kwargs):
        threads.append((threading.current_thread(), kwargs))
        return real_train(*args, **kwargs)

    mw.train_on_folder = spy
    try:
        dlg = win.new_model_ctl.show_dialog()
        assert dlg is not None and dlg.isVisible()
        assert "3 image(s)" in dlg.summary["data"].text()
        dlg.arch_combo.setCurrentIndex(dlg.arch_combo.findData("lraspp"))
        dlg.encoder_combo.setCurrentIndex(dlg.encoder_combo.findData("mobilenet_v2"))
        dlg.pretrained.setChecked(False)
        dlg.accept()  # OK: starts training
        assert win.job is not None and win.job.name == "fine-tune"
        assert win.progress.isVisible() and win.cancel_button.isVisible()
        job = win.job
        qtbot.waitUntil(lambda: win.job is None and win.model is not None, timeout=300_000)
    finally:
        mw.train_on_folder = real_train
    assert job.thread_name and job.thread_name.startswith("segstudio-fine-tune")
    (thread, kwargs), = threads
    assert thread is not threading.main_thread(), "training must run on a worker thread"
    assert kwargs["model_name"] == "lraspp" and kwargs["init"] is None
    assert kwargs["model_kwargs"] == {"encoder": "mobilenet_v2", "pretrained": False}
    assert kwargs["config"].max_steps == 2 and kwargs["config"].freeze_bn is False

    versions = list_versions(synth_folder)
    assert [v.name for v in versions] == ["v001"]
    assert (versions[0] / "model.safetensors").is_file()
    card = json.loads((versions[0] / "model.json").read_text())
    assert card["architecture"] == "lraspp" and card["model_kwargs"]["encoder"] == "mobilenet_v2"
    assert card["encoder_pretrained"] is False and card["parent"] is None and card["origin"] == "new model"
    assert card["name"] == f"{synth_folder.name}/v001"
    assert card["training_data"]["images"] == 3
    assert [c["name"] for c in card["classes"]] == list(SYNTH_CLASSES.names)
    assert win.model.path == versions[0] / "model.safetensors" and win.model.card["architecture"] == "lraspp"
    assert win.model_panel.model_combo.currentText() == f"{synth_folder.name}/v001"
    assert "v001" in win.status_text.text()
    # The unlabelled image is re-predicted with the new model when shown.
    win.files.setCurrentRow(3)
    qtbot.waitUntil(lambda: win.job is None and win.current_doc().source == "predicted", timeout=120_000)
    assert win.current_doc().labels.max() < SYNTH_CLASSES.num_classes
    wait_idle(qtbot, win)
    win.close()


def test_bundled_models_in_the_picker_and_picking_isbi_loads_it(qtbot, tmp_path, samples_dir):
    found = bundled_models()
    labels = {p.name: label for label, p, _ in found}
    assert labels == {
        "camvid_deeplabv3plus_mobilenetv2.safetensors": "bundled: CamVid DeepLab v3+ (MobileNetV2)",
        "isbi2012_unet.safetensors": "bundled: ISBI-2012 U-Net",
    }
    assert bundled_label({"architecture": "pspnet", "model_kwargs": {"encoder": "resnet50"}}, "voc_pspnet") == (
        "bundled: PASCAL VOC PSPNet (ResNet-50)"
    )

    # Started without a model: both bundled models are listed, lazily (weights paths).
    win = make_window(qtbot)
    combo = win.model_panel.model_combo
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items == ["bundled: CamVid DeepLab v3+ (MobileNetV2)", "bundled: ISBI-2012 U-Net"]
    assert all(entry == DEFAULT_MODEL_DIR / name for entry, name in zip(win._models, sorted(labels)))
    win.close()

    # Started with the default model: it keeps its entry (first), the other bundled model follows.
    win = make_window(qtbot, load_checkpoint(default_checkpoint()))
    combo = win.model_panel.model_combo
    assert combo.count() == 2 and combo.itemText(0) == win.model.display_name
    assert combo.itemText(1) == "bundled: ISBI-2012 U-Net" and win._models[1] == ISBI
    for p in sorted(samples_dir.glob("*.png"))[:2]:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    win.open_folder(tmp_path)
    wait_idle(qtbot, win)
    doc = win.current_doc()
    save_labels(doc.path, np.zeros(doc.shape, np.uint8), win.classes)  # the project's (CamVid) classes are saved
    camvid_names = win.classes.names

    # Pick the ISBI U-Net (2 classes: membrane/cell) in a project with CamVid's 11 classes: no crash.
    idx = combo.findText("bundled: ISBI-2012 U-Net")
    combo.setCurrentIndex(idx)
    win._on_model_picked(idx)
    assert win.model.card["architecture"] == "unet" and win.model.path == ISBI
    assert win.classes.names == camvid_names, "saved project classes stay"
    win.files.setCurrentRow(1)  # an unlabelled image: predicted (mapped by class name) or refused, never a crash
    wait_idle(qtbot, win)
    doc = win.current_doc()
    assert doc is not None and doc.source in ("predicted", "none")
    if doc.source == "predicted":  # no class name in common: every pixel maps to "unlabelled", none out of range
        assert ((doc.labels < win.classes.num_classes) | (doc.labels == IGNORE_INDEX)).all()
    win.close()
