"""Issue 31: what the person confirms is what gets recorded; class edits reach the model; the window stays on
screen; the docks tell the truth.

One regression test per numbered item, driving the real window (pytest-qt, offscreen) with the tiny
``simple_cnn`` checkpoints of :mod:`test_state` (each predicts one class everywhere) on 32×40 images.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from segstudio.core import IGNORE_INDEX, ClassSpec
from segstudio.core.provenance import PROV_HUMAN, PROV_MODEL
from segstudio.io import label_path_for, read_index_png
from test_gui import drag
from test_state import EM, SKY, STREET, _checkpoint, _images, dialogs, idle, make_window, models  # noqa: F401 (fixtures)


def _status(win, path):
    return win.project_ctl.project.images[path.name].status


def _click(canvas, x, y):
    drag(canvas, [(x, y)])


# -- 1. brush-to-confirm ----------------------------------------------------------------------------------------
def test_stroke_inside_a_same_class_prediction_confirms_it_counts_and_saves(qtbot, tmp_path, models, dialogs):
    """Sky brush entirely inside the predicted sky, then Right: before, the image stayed *predicted* with 0 strokes
    and no file was written (provenance was stamped only on changed pixels)."""
    folder = _images(tmp_path / "a", 3, 0)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    doc = win.current_doc()
    assert doc.source == "predicted" and (doc.labels == SKY).all()
    win.pick_class(SKY)
    win.set_tool("brush")
    win.canvas.set_brush_radius(3)
    drag(win.canvas, [(6, 8), (18, 10), (30, 12)])  # (x, y) image points, all inside the predicted sky
    assert (doc.labels == SKY).all(), "no value changed"
    human = doc.provenance.map == PROV_HUMAN
    assert human.sum() > 60 and human[10, 18], "every pixel under the stroke is the person's now"
    assert doc.dirty and doc.edits == 1
    win.canvas.undo()
    assert (doc.provenance.map == PROV_MODEL).all(), "undo restores the provenance too"
    win.canvas.redo()
    assert ((doc.provenance.map == PROV_HUMAN) == human).all()
    win.step(1)  # Right: autosave keeps the person's pixels
    idle(qtbot, win)
    lp = label_path_for(doc.path)
    assert lp.is_file(), "the confirmed pixels are saved"
    saved = read_index_png(lp)
    assert (saved[human] == SKY).all() and (saved[~human] == IGNORE_INDEX).all()
    rec = win.project_ctl.project.images[doc.path.name]
    assert rec.status == "corrected" and rec.strokes == 1

    # flood fill with the predicted class confirms the whole region
    doc2 = win.current_doc()
    assert doc2.source == "predicted"
    win.set_tool("fill")
    _click(win.canvas, 20, 16)
    assert (doc2.provenance.map == PROV_HUMAN).all() and (doc2.labels == SKY).all()
    win.step(1)
    idle(qtbot, win)
    assert (read_index_png(label_path_for(doc2.path)) == SKY).all()
    assert _status(win, doc2.path) == "corrected"


def test_eraser_over_unlabelled_pixels_records_nothing(qtbot, tmp_path, models, dialogs):
    """The eraser confirms only what it changed: erasing where nothing is labelled is no stroke and no file."""
    folder = _images(tmp_path / "a", 2, 0)
    win = make_window(qtbot)
    win.open_folder(folder)
    doc = win.current_doc()
    assert doc.source == "none"
    win.set_tool("eraser")
    drag(win.canvas, [(6, 8), (30, 12)])
    assert not doc.dirty and doc.edits == 0
    win.step(1)
    assert not label_path_for(doc.path).is_file()


# -- 3. Ctrl+S accepts ----------------------------------------------------------------------------------------------
def test_ctrl_s_on_an_unedited_prediction_marks_it_reviewed(qtbot, tmp_path, models, dialogs):
    """Before: Ctrl+S saved the prediction but the image stayed *predicted* and the review count stayed 0."""
    folder = _images(tmp_path / "a", 3, 0)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    doc = win.current_doc()
    assert doc.source == "predicted" and doc.edits == 0
    assert QKeySequence("Ctrl+S") in win.act_save.shortcuts()
    win.act_save.trigger()  # what the Ctrl+S shortcut fires
    assert (read_index_png(label_path_for(doc.path)) == SKY).all()
    assert _status(win, doc.path) == "reviewed"
    reviewed = sum(r.status == "reviewed" for r in win.project_ctl.project.images.values())
    assert reviewed == 1
    # an edited image accepted with Ctrl+S is *corrected*
    win.step(1)
    idle(qtbot, win)
    win.pick_class(CAR := 3)
    win.set_tool("brush")
    drag(win.canvas, [(5, 5), (15, 5)])
    win.act_save.trigger()
    assert _status(win, win.current_doc().path) == "corrected"


# -- 2. class edits carry through the model's class mapping -------------------------------------------------------
FIELD = ClassSpec(("soil", "crop", "weed"), ((120, 90, 60), (60, 180, 75), (230, 25, 75)))
WEED = 2


@pytest.fixture(scope="module")
def weed_model(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("field"), "field-weed", FIELD, WEED)


def _edit_classes(win, monkeypatch, edit):
    """Edit ▸ Edit classes… with the real dialog: ``edit(dialog)`` does what the person does in it, then OK."""
    from PySide6.QtWidgets import QDialog

    from segstudio.gui import project_view

    def exec_(dlg):
        edit(dlg)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(project_view.ClassEditorDialog, "exec", exec_)
    win.project_ctl.act_classes.trigger()


def test_rename_keeps_the_models_predictions_add_maps_to_nothing_delete_tells(qtbot, tmp_path, weed_model, dialogs, monkeypatch):
    """Model soil/crop/weed; rename weed → weeds and add a class. Before: the weed predictions became unlabelled
    holes (saved as 255 by Ctrl+S), and Metrics failed ("the model predicts 3 classes but the project has 4")."""
    from test_state import answer

    folder = _images(tmp_path / "field", 3, 1)
    win = make_window(qtbot, weed_model)
    answer(win, ask_yes_no=True)
    win.open_folder(folder)
    idle(qtbot, win)
    doc = win.current_doc()
    assert (doc.labels == WEED).all()

    def rename_and_add(dlg):
        dlg.rename(WEED, "weeds")
        dlg.add_class("stone")

    _edit_classes(win, monkeypatch, rename_and_add)
    idle(qtbot, win)
    assert win.classes.names == ("soil", "crop", "weeds", "stone")
    assert (doc.labels == WEED).all(), "the renamed class keeps the model's predictions"
    assert (doc.provenance.map == PROV_MODEL).all(), "still predictions, not labels"
    assert not win.state.stale.get(doc.path)
    win.step(1)  # a new image is predicted through the mapping
    idle(qtbot, win)
    doc2 = win.current_doc()
    assert doc2.source == "predicted" and (doc2.labels == WEED).all(), "weed predictions show as weeds, no holes"
    win.act_save.trigger()
    assert (read_index_png(label_path_for(doc2.path)) == WEED).all(), "Ctrl+S saves them as weeds, not 255"
    assert not win.canvas.notice.isVisible() and not win.notice_label.isVisible()
    # Metrics after rename + add: computed, not failed
    win.loop.compute_metrics()
    qtbot.waitUntil(lambda: "metrics" not in win.state.jobs, timeout=60_000)
    r = win.loop.metrics.result
    assert r is not None and r.classes == ["soil", "crop", "weeds", "stone"]
    assert r.matrix("all").iou[WEED] == pytest.approx(1.0)

    # the lineage survives a restart (kept in the project file)
    win.close()
    win2 = make_window(qtbot, weed_model)
    answer(win2, ask_yes_no=True)
    win2.open_folder(folder)
    idle(qtbot, win2)
    win2.step(2)
    idle(qtbot, win2)
    assert win2.current_doc().source == "predicted" and (win2.current_doc().labels == WEED).all()

    # delete "weeds": its predictions become unlabelled, with a notice on the canvas and in the status bar
    doc3 = win2.current_doc()
    _edit_classes(win2, monkeypatch, lambda dlg: dlg.delete(WEED))
    idle(qtbot, win2)
    assert win2.classes.names == ("soil", "crop", "stone")
    assert (doc3.labels == IGNORE_INDEX).all()
    assert win2.canvas.notice.isVisible() and "weed" in win2.canvas.notice.text()
    assert win2.notice_label.isVisible() and "weed" in win2.notice_label.toolTip()


# -- 5. the Metrics tab -----------------------------------------------------------------------------------------------
def _tick_labels(plot, axis):
    levels = plot.getAxis(axis)._tickLevels or []
    return [t[1] for level in levels for t in level]


def test_ctrl_m_raises_metrics_switch_resets_axes_and_no_held_out_is_said(qtbot, tmp_path, dialogs):
    """Before: Ctrl+M computed behind the Training tab; after a folder switch the matrix kept the previous folder's
    class axes; with no held-out image the dock showed only "training mIoU" figures, as if they were an estimate."""
    import json

    from segstudio.engine.heldout import file_sha1
    from segstudio.io import save_classes
    from test_state import answer

    folder = _images(tmp_path / "a", 2, 0)
    weights = _checkpoint(tmp_path / "m", "street-sky-trained", STREET, SKY)
    card_path = weights.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["training_data"] = {"image_sha1": [file_sha1(p) for p in sorted(folder.glob("*.png"))]}  # it trained on both
    card_path.write_text(json.dumps(card))
    win = make_window(qtbot, weights)
    win.open_folder(folder)
    idle(qtbot, win)
    win.act_save.trigger()
    loop = win.loop
    loop.docks["Training"].show()
    loop.docks["Training"].raise_()  # e.g. after a fine-tune
    qtbot.waitUntil(lambda: not loop.docks["Training"].visibleRegion().isEmpty())
    assert QKeySequence("Ctrl+M") in loop.act_metrics.shortcuts()
    loop.act_metrics.trigger()
    qtbot.waitUntil(lambda: "metrics" not in win.state.jobs and loop.metrics.result is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not loop.docks["Metrics"].visibleRegion().isEmpty())
    assert loop.docks["Training"].visibleRegion().isEmpty(), "the Metrics tab is in front"
    m = loop.metrics
    assert m.result.count("held-out") == 0 and m.result.count("training") == 1
    assert "No held-out image" in m.summary.text()
    assert any("Sky" in t for t in _tick_labels(m.cm_plot, "left"))
    m.scope.setCurrentText("held-out")
    assert m.cm_image.image is None and "no held-out" in m.cm_plot.plotItem.titleLabel.text, "no empty matrix under a title"
    assert m.class_table.rowCount() == 0

    other = _images(tmp_path / "em", 2, 3)
    save_classes(other / "classes.json", EM)
    answer(win, choose_model=None)
    assert win.open_folder(other)
    assert m.result is None and m.cm_image.image is None
    assert not any("Sky" in t for t in _tick_labels(m.cm_plot, "left") + _tick_labels(m.cm_plot, "bottom"))
    assert "Sky" not in m.summary.text()


# -- 4. the window stays on screen ----------------------------------------------------------------------------------
def _on_screen(win):
    avail = win.screen().availableGeometry()
    f = win.frameGeometry()
    return avail.contains(f), (f.getRect(), avail.getRect())


def test_window_never_grows_past_the_screen_and_a_restored_geometry_is_clamped(qtbot, tmp_path, models, dialogs):
    """Before: 20 classes pushed the window's minimum height past the screen (the class legend asked for every
    row), folder switches kept that size, and a saved geometry taller than the screen was restored as it was."""
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QMainWindow

    from segstudio.gui.window_layout import LAYOUT_VERSION, window_settings
    from test_state import answer

    a, b = _images(tmp_path / "a", 2, 0), _images(tmp_path / "b", 2, 1)
    win = make_window(qtbot, models["sky"])
    answer(win, choose_model=None)
    assert _on_screen(win)[0]
    win.open_folder(a)
    idle(qtbot, win)
    heights = [win.frameGeometry().height()]
    names = tuple(f"a long class name, number {i}" for i in range(20))
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[:4] = np.arange(4)
    assert win.project_ctl.apply_classes(ClassSpec(names), lut, False, "20 classes", confirm=False)
    qtbot.wait(50)
    assert _on_screen(win)[0], _on_screen(win)[1]
    for folder in (b, a):
        win.open_folder(folder)
        idle(qtbot, win)
        qtbot.wait(50)
        assert _on_screen(win)[0], _on_screen(win)[1]
        heights.append(win.frameGeometry().height())
    avail = win.screen().availableGeometry()
    assert max(heights) <= avail.height()
    state = win.saveState(LAYOUT_VERSION)
    win.close()

    # a geometry saved taller than the screen (another monitor): restored within it
    tall = QMainWindow()
    qtbot.addWidget(tall)
    tall.setGeometry(QRect(avail.x() + 40, avail.y() + 30, avail.width() - 100, avail.height() + 400))
    s = window_settings()
    s.setValue("window/geometry", tall.saveGeometry())
    s.setValue("window/state", state)
    s.sync()
    win2 = make_window(qtbot, models["sky"])
    qtbot.wait(50)
    assert _on_screen(win2)[0], _on_screen(win2)[1]


# -- 6. the Training dock ------------------------------------------------------------------------------------------
def _canvas_share(win):
    c, w = win.canvas.size(), win.size()
    return (c.width() * c.height()) / (w.width() * w.height())


def test_training_dock_shows_the_budget_until_planned_and_collapses_when_done(qtbot, tmp_path, models, dialogs):
    """Before: the dock read "step 1/2000000" (the step cap of a budget run before its plan) and kept half the
    window after the fine-tune ended."""
    from segstudio.engine import finetune_config

    folder = _images(tmp_path / "a", 3, 6)
    win = make_window(qtbot, models["sky"])
    win.finetune_config = finetune_config(budget_s=4.0, batch_size=2, crop_size=(24, 24), holdout_fraction=0.0)
    win.open_folder(folder)
    idle(qtbot, win)
    for row in (0, 1):
        win.files.setCurrentRow(row)
        idle(qtbot, win)
        win.save_current()
    share_before = _canvas_share(win)
    panel, dock = win.loop.training_panel, win.loop.docks["Training"]
    titles = []
    orig = panel.on_event

    def spy(event, info):
        orig(event, info)
        if event == "step":
            titles.append((int(info["total_steps"]), panel.title.text(), panel.progress.maximum()))

    panel.on_event = spy
    bar = []  # the status bar's progress (done, total) of the same run
    win.state.jobProgress.connect(lambda d, t, _text: bar.append((d, t)))
    assert win.finetune()
    qtbot.waitUntil(lambda: dock.isVisible() and panel.state == "running", timeout=30_000)
    idle(qtbot, win, timeout=120_000)
    assert panel.state == "done" and titles
    first_total, first_title, first_max = titles[0]
    assert first_total >= 10**5, "a budget run starts at its step cap (the premise of the issue)"
    assert f"/{first_total}" not in first_title and "budget" in first_title and first_max <= 5
    planned = [t for t in titles if t[0] != first_total]
    assert all(f"/{t[0]}" in t[1] for t in planned), "once planned, step n/N"
    # The status bar's progress bar too: seconds of the budget first (never the step cap), then steps of the plan.
    assert bar and max(t for _, t in bar) < 10**5 and bar[0][1] == 4, bar[:3]
    qtbot.waitUntil(lambda: not dock.isVisible())
    qtbot.waitUntil(lambda: _canvas_share(win) >= share_before - 0.01, timeout=3000)  # the canvas has its space back
    assert not win.loop.docks["Metrics"].isVisible()


# -- 7. smaller items --------------------------------------------------------------------------------------------------
def test_class_editor_preview_colour_is_the_applied_colour_buttons_stay_delete_works(qtbot, tmp_path, weed_model, dialogs, monkeypatch):
    from PySide6.QtCore import QPoint

    from segstudio.gui.class_editor import _COLOR, ClassEditorDialog
    from test_state import answer

    dlg = ClassEditorDialog(FIELD)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    pos = {b: b.mapTo(dlg, QPoint(0, 0)) for b in (dlg.btn_delete, dlg.btn_add, dlg.buttons)}
    for i in range(6):
        dlg.add_class(f"a class with a rather long name {i}")
    dlg.rename(0, "dirt")
    assert len(dlg.describe_changes()) > 150
    qtbot.wait(20)
    assert all(b.mapTo(dlg, QPoint(0, 0)) == p for b, p in pos.items()), "the buttons stay where they were"
    n = dlg.list.count()
    dlg.list.setCurrentRow(n - 1)
    qtbot.mouseClick(dlg.btn_delete, Qt.MouseButton.LeftButton)
    assert dlg.list.count() == n - 1
    dlg.list.setCurrentRow(n - 2)
    dlg.list.setFocus()
    qtbot.keyClick(dlg.list, Qt.Key.Key_Delete)
    assert dlg.list.count() == n - 2, "the Delete key deletes the selected class"
    dlg.close()

    # the colour the editor shows after a rename is the colour applied on OK
    folder = _images(tmp_path / "f", 1, 2)
    win = make_window(qtbot, weed_model)
    answer(win, ask_yes_no=True)
    win.open_folder(folder)
    idle(qtbot, win)
    shown = {}

    def rename(d):
        d.rename(0, "dirt")
        shown["colour"] = tuple(d.list.item(0).data(_COLOR))

    _edit_classes(win, monkeypatch, rename)
    assert win.classes.names[0] == "dirt" and shown["colour"] == tuple(win.classes.colors[0])
    assert shown["colour"] != FIELD.colors[0], "a renamed class still gets a contrasting colour"


def test_long_status_message_is_elided_and_stays_left_of_the_xy_field(qtbot, tmp_path, models, dialogs):
    win = make_window(qtbot, models["sky"])
    win.open_folder(_images(tmp_path / "a", 1, 0))
    idle(qtbot, win)
    width = win.width()
    text = "a very long status message that says a lot " * 12
    win.message(text)
    qtbot.wait(20)
    assert win.status_text.text() == text and win.status_text.toolTip() == text
    assert win.status_text.shown_text().endswith("…")
    st = win.status_text.geometry()
    assert st.right() < win.cursor_status.geometry().left(), "no overlap with the x/y field"
    assert win.width() == width


def test_opening_a_folder_clears_the_old_image_before_the_model_question(qtbot, tmp_path, models, dialogs):
    from test_state import answer

    a, b = _images(tmp_path / "a", 1, 0), _images(tmp_path / "b", 1, 1)
    from segstudio.io import save_classes

    save_classes(b / "classes.json", ClassSpec(("rock", "sand")))  # no model knows these: the app asks
    win = make_window(qtbot, models["sky"])
    win.open_folder(a)
    idle(qtbot, win)
    assert win.canvas.doc is not None
    seen = []
    answer(win, choose_model=lambda *args: seen.append((win.canvas.doc, win.canvas.image_item.pixmap().isNull())) or None)
    win.open_folder(b)
    assert seen and seen[0][0] is None and seen[0][1], "nothing of the old folder on the canvas during the question"


def test_click_mask_keeps_only_parts_connected_to_a_positive_click():
    from segstudio.engine.click.protocol import Click
    from segstudio.gui.tools import connected_to_clicks

    mask = np.zeros((30, 40), bool)
    mask[5:15, 5:15] = True  # the object
    mask[25:27, 35:38] = True  # a speck far away
    mask[2:4, 30:33] = True  # another speck, under a negative click
    out = connected_to_clicks(mask, [Click(8, 8, True), Click(3, 31, False)])
    assert out[5:15, 5:15].all() and out.sum() == 100
    both = connected_to_clicks(mask, [Click(8, 8, True), Click(26, 36, True)])
    assert both.sum() == 106


def test_review_queue_first_message_is_not_overwritten_by_the_click_tool(qtbot, tmp_path, models, dialogs):
    folder = _images(tmp_path / "a", 3, 0)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    win.set_tool("click")  # and straight to the review queue: the encoding ends after the queue's first line
    click = win.canvas.tools["click"]
    assert win.review.start()
    qtbot.waitUntil(lambda: win.review.active, timeout=60_000)
    qtbot.waitUntil(lambda: click.session(win.canvas.doc) is not None and not win.canvas.jobs.busy, timeout=60_000)
    qtbot.wait(100)
    assert win.status_text.text().startswith("review 1/"), win.status_text.text()
