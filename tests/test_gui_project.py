"""The project in the real window (pytest-qt, offscreen): segstudio.json statuses/effort/provenance, reopen where
you left off, the class editor with relabelling on disk, class mapping + fine-tune replacing the head, model
versions and the A/B view with per-image mIoU."""

from __future__ import annotations

import json
import re
import shutil
import threading

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QMessageBox

from segstudio.core import IGNORE_INDEX, ClassSpec
from segstudio.core.provenance import PROV_HUMAN, PROV_MODEL
from segstudio.engine import finetune_config, list_versions, load_checkpoint, save_checkpoint
from segstudio.engine.checkpoint import default_checkpoint
from segstudio.gui import versions_dock
from segstudio.gui.class_editor import ClassEditorDialog
from segstudio.io import label_path_for, load_classes, read_index_png, save_classes
from segstudio.io.project import PROJECT_FILENAME, ActivityClock, Project
from segstudio.io.provenance_files import provenance_path_for
from qt_helpers import show_window, wait_idle

from test_gui import drag  # real mouse events on the canvas viewport

CAR, ROAD, SKY = 8, 3, 0


@pytest.fixture()
def folder(tmp_path, samples_dir):
    for p in sorted(samples_dir.glob("*.png"))[:3]:
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def make_window(qtbot):
    return show_window(qtbot, load_checkpoint(None))




def make_version(folder, name="v001", car_bias=0.0):
    """A model version folder from the default model (classifier bias of Car shifted by ``car_bias``)."""
    loaded = load_checkpoint(None)
    with torch.no_grad():
        loaded.model.classifier.bias[CAR] += car_bias
    card = dict(loaded.card, parent=str(default_checkpoint()), name=f"{folder.name}/{name}", training_data={"images": 2})
    card["metrics"] = {"val": {"miou": 0.5}}
    return save_checkpoint(folder / "labels" / "models" / name, loaded.model, card)


def test_status_effort_provenance_and_reopen_where_left_off(qtbot, folder, monkeypatch):
    make_version(folder)
    win = make_window(qtbot)
    ctl = win.project_ctl
    win.open_folder(folder)
    wait_idle(qtbot, win)
    assert win.model.path.parent.name == "v001", "a new project starts with the newest version"
    proj = ctl.project
    names = [p.name for p in win.paths]
    assert proj.images[names[0]].status == "predicted"
    doc = win.current_doc()
    assert (doc.provenance.map[doc.labels != IGNORE_INDEX] == PROV_MODEL).all()

    # Paint with real mouse events: status "corrected", one stroke, active seconds from a fake clock.
    t = [0.0]
    ctl.clock = ActivityClock(idle_s=30, now=lambda: t[0])
    ctl.clock.start()
    t[0] += 4.0
    qtbot.keyClick(win.canvas, Qt.Key.Key_9)  # activity on the canvas (Car)
    win.pick_class(CAR)
    t[0] += 100.0  # idle: capped at 30 s
    drag(win.canvas, [(60, 60), (120, 80), (200, 90)])
    assert proj.images[names[0]].status == "corrected" and proj.images[names[0]].strokes == 1
    assert proj.images[names[0]].seconds == pytest.approx(34.0)
    assert ctl.view.table.item(0, 1).text() == "corrected" and ctl.view.table.item(0, 3).text() == "1"
    human = doc.provenance.map == PROV_HUMAN
    assert human.sum() > 500 and (doc.labels[human] == CAR).all()

    # Switch the model to the bundled default through the versions dock; then image 2, mark it reviewed.
    default_name = win.model_panel.model_combo.itemText(0)
    top = ctl.versions.tree.topLevelItem(0)
    assert top.text(0) == default_name and top.child(0).text(0) == "v001", "lineage: v001 under its parent"
    ctl.versions.tree.setCurrentItem(top)
    qtbot.mouseClick(ctl.versions.use, Qt.MouseButton.LeftButton)
    assert win.model.path == default_checkpoint()
    win.files.setCurrentRow(2)  # autosaves image 0 (labels + provenance + segstudio.json)
    wait_idle(qtbot, win)
    saved_prov = read_index_png(provenance_path_for(folder / names[0]))
    np.testing.assert_array_equal(saved_prov == PROV_HUMAN, human)
    qtbot.keyClick(win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert label_path_for(folder / names[2]).is_file() and proj.images[names[2]].status == "reviewed"
    rec0 = proj.images[names[0]]
    assert rec0.provenance["human"] == int(human.sum()) and rec0.saved
    win.close()

    on_disk = json.loads((folder / PROJECT_FILENAME).read_text())
    assert on_disk["last_image"] == names[2] and on_disk["current_version"] == default_name
    assert {n: r["status"] for n, r in on_disk["images"].items()} == {names[0]: "corrected", names[1]: "unlabelled", names[2]: "reviewed"}

    # Reopen: same image, same model version (not the newest), statuses, provenance of the saved labels.
    win2 = make_window(qtbot)
    win2.open_folder(folder)
    wait_idle(qtbot, win2)
    assert win2.index == 2 and win2.current_doc().path.name == names[2]
    assert win2.model.path == default_checkpoint() and win2.project_ctl.project.current_version == default_name
    assert win2.project_ctl.project.images[names[0]].status == "corrected"
    assert win2.project_ctl.project.images[names[0]].seconds >= 34.0
    assert win2.project_ctl.view.table.item(2, 1).text() == "reviewed"
    win2.files.setCurrentRow(0)
    doc0 = win2.current_doc()
    assert doc0.source == "saved"
    np.testing.assert_array_equal(doc0.provenance.map == PROV_HUMAN, human)
    totals = re.sub("<[^>]+>", "", win2.project_ctl.view.totals.text())
    assert "1 corrected" in totals and "1 reviewed" in totals and "1 strokes" in totals
    win2.close()


def test_corrupt_project_file_is_kept_aside(qtbot, folder, monkeypatch):
    (folder / PROJECT_FILENAME).write_text('{"schema_version": 1, "images": {"x.png": {"status": "done"}}}')
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    win = make_window(qtbot)
    win.open_folder(folder)
    assert warnings and "status" in warnings[0] and "bad1" in warnings[0]
    assert (folder / f"{PROJECT_FILENAME}.bad1").read_text().endswith('"done"}}}')
    wait_idle(qtbot, win)
    win.close()
    assert Project.load(folder).images  # a fresh, valid project was written


def test_class_editor_reorder_delete_relabels_disk_and_memory(qtbot, folder, monkeypatch):
    win = make_window(qtbot)
    ctl = win.project_ctl
    win.open_folder(folder)
    wait_idle(qtbot, win)
    names = [p.name for p in win.paths]
    win.save_current()  # labels of image 0 (a prediction) on disk
    old = read_index_png(label_path_for(folder / names[0])).copy()
    assert {SKY, ROAD, CAR} <= set(np.unique(old).tolist())

    dlg = ClassEditorDialog(win.classes, win)
    qtbot.addWidget(dlg)
    dlg.move(CAR, -CAR)  # Car to the top
    dlg.delete(dlg.classes().names.index("Sky"))
    dlg.rename(dlg.classes().names.index("Road"), "Street")
    dlg.set_color(0, (1, 2, 3))
    dlg.add_class("Bike lane")
    new = dlg.classes()
    assert new.names[0] == "Car" and "Sky" not in new.names and new.names[-1] == "Bike lane" and new.colors[0] == (1, 2, 3)
    assert dlg.needs_relabel() and "Sky" in dlg.describe_changes()
    assert "will be relabelled" in dlg.changes.text() and "Car 8→0" in dlg.changes.text()
    dlg.rename(1, "Car")  # duplicate name: refused in the dialog
    assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled() and "repeated" in dlg.error.text()
    dlg.rename(1, new.names[1])
    assert dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()

    # Answering No changes nothing.
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert not ctl.apply_classes(new, dlg.mapping(), True, dlg.describe_changes())
    np.testing.assert_array_equal(read_index_png(label_path_for(folder / names[0])), old)

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert ctl.apply_classes(new, dlg.mapping(), True, dlg.describe_changes())
    got = read_index_png(label_path_for(folder / names[0]))
    street = new.names.index("Street")
    assert (got[old == CAR] == 0).all() and (got[old == ROAD] == street).all() and (got[old == SKY] == IGNORE_INDEX).all()
    # Issue 17: the renamed class (Road -> Street) no longer keeps Road's colour; the others keep theirs.
    # Issue 31: the editor already showed that colour (what it shows is what OK applies).
    road_colour = dlg.original.colors[ROAD]
    assert win.classes.names == new.names and win.classes.colors[street] != road_colour
    assert win.classes.colors == new.colors
    new = win.classes
    assert load_classes(folder / "labels" / "classes.json") == new
    doc = win.current_doc()
    np.testing.assert_array_equal(doc.labels, got)
    assert win.class_panel.legend.count() == new.num_classes
    assert "Street" in win.class_panel.legend.item(street).text()

    # The model's classes now differ: a notice, and predictions mapped by name and renames (Car -> 0, Sky -> unlabelled).
    assert ctl.versions.notice.isVisible() and "each class it knows keeps what it learnt" in ctl.versions.notice.text()
    assert "Sky" in ctl.versions.notice.text() and "Bike lane" in ctl.versions.notice.text()
    win.files.setCurrentRow(1)
    qtbot.waitUntil(lambda: win.job is None and win.current_doc().source == "predicted", timeout=120_000)
    pred = win.current_doc().labels
    raw = win.predictor.predict(win.current_doc().image)
    np.testing.assert_array_equal(pred == 0, raw == CAR)
    # Issue 31: Road was renamed to Street, and a rename keeps the id's lineage: the model's Road is Street now;
    # only the deleted Sky is unlabelled.
    np.testing.assert_array_equal(pred == street, raw == ROAD)
    np.testing.assert_array_equal(pred == IGNORE_INDEX, raw == SKY)

    # Export / import classes.json through the dialog: import maps labels by name.
    dlg2 = ClassEditorDialog(win.classes, win)
    qtbot.addWidget(dlg2)
    dlg2.export_classes(folder / "exported.json")
    assert load_classes(folder / "exported.json") == new
    save_classes(folder / "other.json", ClassSpec(("Street", "Car")))
    dlg2.import_classes(folder / "other.json")
    assert dlg2.classes().names == ("Street", "Car")
    lut = dlg2.mapping()
    assert lut[street] == 0 and lut[0] == 1 and lut[new.names.index("Tree")] == IGNORE_INDEX

    # From the menu: Edit > Edit classes… (the modal dialog is driven by a stand-in for exec): a rename only
    # rewrites classes.json, not the label maps.
    def fake_exec(self):
        self.rename(0, "Auto")
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ClassEditorDialog, "exec", fake_exec)
    label_bytes = label_path_for(folder / names[0]).read_bytes()
    ctl.act_classes.trigger()
    assert win.classes.names[0] == "Auto" and load_classes(folder / "labels" / "classes.json").names[0] == "Auto"
    assert label_path_for(folder / names[0]).read_bytes() == label_bytes
    win.close()


def test_class_mismatch_notice_then_finetune_replaces_head(qtbot, folder, monkeypatch):
    save_classes(folder / "other.json", ClassSpec(("Road", "Car", "Puddle")))
    win = make_window(qtbot)
    ctl = win.project_ctl
    win.finetune_config = finetune_config(max_steps=2, batch_size=1, crop_size=(64, 64))
    win.open_folder(folder)
    wait_idle(qtbot, win)
    assert not ctl.versions.notice.isVisible()
    assert ctl.import_classes_file(folder / "other.json", confirm=False)
    assert "Puddle" in ctl.versions.notice.text() and "each class it knows keeps what it learnt" in ctl.versions.notice.text()
    assert ctl.versions.notice.isVisible()
    doc = win.current_doc()
    assert set(np.unique(doc.labels).tolist()) <= {0, 1, IGNORE_INDEX}
    doc.stroke([(50, 50)], 20, 2)  # a Puddle
    win.save_current()
    assert win.finetune()
    qtbot.waitUntil(lambda: win.job is None and win.model.path.parent.name == "v001", timeout=300_000)
    card = load_checkpoint(list_versions(folder)[0]).card
    assert [c["name"] for c in card["classes"]] == ["Road", "Car", "Puddle"]
    assert win.model.model.classifier.weight.shape[0] == 3, "the new version has a 3-class head"
    assert not ctl.versions.notice.isVisible() and ctl.project.current_version == "v001"
    top = ctl.versions.tree.topLevelItem(0)
    assert top.text(0) == win.model_panel.model_combo.itemText(0) and top.child(0).text(0) == "v001", "lineage tree"
    win.close()


def test_ab_compare_in_worker_with_split_slider(qtbot, folder):
    make_version(folder, car_bias=4.0)  # v001 predicts Car far more often
    win = make_window(qtbot)
    ctl = win.project_ctl
    win.open_folder(folder)
    wait_idle(qtbot, win)
    default_name = win.model_panel.model_combo.itemText(0)
    threads = []
    orig = versions_dock.compare_label_maps

    def spy(a, b, k):
        threads.append(threading.current_thread())
        return orig(a, b, k)

    versions_dock.compare_label_maps = spy
    assert ctl.versions.combo_a.currentText() == default_name and ctl.versions.combo_b.currentText() == "v001"
    try:
        qtbot.mouseClick(ctl.versions.compare, Qt.MouseButton.LeftButton)
        assert ctl.ab_job is not None
        qtbot.waitUntil(lambda: ctl.ab_job is None and ctl.ab_dialog is not None, timeout=120_000)
    finally:
        versions_dock.compare_label_maps = orig
    assert threads and threads[0] is not threading.main_thread(), "A/B runs off the GUI thread"
    res = ctl.ab_dialog.result
    assert ((res["b"] == CAR).mean()) > ((res["a"] == CAR).mean())
    expected = orig(res["a"], res["b"], 11)["miou"]
    assert res["miou"] == pytest.approx(expected) and 0.2 < res["miou"] < 1.0
    # IoU of Car by hand: |A∧B| / |A∨B|.
    a, b = res["a"] == CAR, res["b"] == CAR
    assert res["iou"][CAR] == pytest.approx((a & b).sum() / (a | b).sum())
    assert f"mIoU {100 * res['miou']:.1f}%" in ctl.ab_dialog.summary.text()
    d = ctl.ab_dialog
    d.slider.setValue(250)
    assert d.view.split == pytest.approx(0.25)
    d.toggle_ab()
    assert d.view.split == 1.0
    d.toggle_ab()
    assert d.view.split == 0.0
    win.close()


def test_compare_label_maps_identical_and_disjoint():
    a = np.array([[0, 0, 1, IGNORE_INDEX]], np.uint8)
    assert versions_dock.compare_label_maps(a, a, 3)["miou"] == 1.0
    b = np.array([[1, 1, 0, 0]], np.uint8)
    r = versions_dock.compare_label_maps(a, b, 3)
    assert r["miou"] == 0.0 and r["differ"] == 1.0 and r["pixels"] == 3
    with pytest.raises(ValueError):
        versions_dock.compare_label_maps(a, b[:, :2], 3)


def test_set_aside_for_validation_toggles_the_list_and_follows_the_image(qtbot, folder):
    """Edit ▸ Set aside for validation (issue 29): the current image goes into labels/validation.txt (never trained
    on) and back out; the action's check mark follows the image shown."""
    from segstudio.io.validation import read_validation_list

    win = make_window(qtbot)
    win.open_folder(folder)
    wait_idle(qtbot, win)
    ctl = win.project_ctl
    names = [p.name for p in win.paths]
    assert not ctl.act_validation.isChecked() and read_validation_list(folder) == set()
    ctl.act_validation.trigger()
    assert read_validation_list(folder) == {names[0]} and ctl.act_validation.isChecked()
    win.files.setCurrentRow(1)
    wait_idle(qtbot, win)
    assert not ctl.act_validation.isChecked()  # the next image trains
    win.files.setCurrentRow(0)
    wait_idle(qtbot, win)
    assert ctl.act_validation.isChecked()
    ctl.act_validation.trigger()
    assert read_validation_list(folder) == set() and not (folder / "labels" / "validation.txt").exists()
