"""Issue 19 in the real window (pytest-qt, offscreen): the tool bar, the status bar read-out, brush steps,
zoom about the cursor, fill-unlabelled / clear as one undo step, the restored layout, the peek key, class keys
beyond 9 and the review queue's keys. Each test is short; the bundled CamVid model predicts the samples."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from segstudio.core import IGNORE_INDEX
from segstudio.engine import load_checkpoint
from segstudio.gui.canvas_controls import step_radius
from segstudio.gui.toolbar import TOOL_ACTIONS
from segstudio.gui.window_layout import window_settings
from segstudio.io import label_path_for, read_index_png
from qt_helpers import show_window

N = 3  # sample images per folder (keeps the predictions short)


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(None)


@pytest.fixture()
def folder(tmp_path, samples_dir):
    for p in sorted(samples_dir.glob("*.png"))[:N]:
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def make_window(qtbot, model, folder=None):
    win = show_window(qtbot, model)
    if folder is not None:
        win.open_folder(folder)
        qtbot.waitUntil(lambda: win.job is None and win.current_doc() is not None and win.current_doc().source != "none", timeout=120_000)
    return win


def mouse(canvas, kind, x, y, buttons=Qt.MouseButton.NoButton, button=Qt.MouseButton.NoButton, mods=Qt.KeyboardModifier.NoModifier):
    pos = QPointF(canvas.mapFromScene(QPointF(x, y)))
    QApplication.sendEvent(canvas.viewport(), QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, mods))


def test_tool_bar_actions_follow_tools_and_widgets(qtbot, model):
    win = make_window(qtbot, model)
    tb, cv = win.tool_bar, win.canvas
    for tool, name, key in TOOL_ACTIONS:
        act = win.tool_actions[tool]
        assert act in tb.actions() and not act.icon().isNull() and f"({key})" in act.toolTip()
    qtbot.waitUntil(win.isActiveWindow)
    win.tool_actions["eraser"].trigger()
    assert cv.tool == "eraser" and win.tool_actions["eraser"].isChecked()
    qtbot.keyClick(win, Qt.Key.Key_P)
    assert cv.tool == "polygon" and win.tool_actions["polygon"].isChecked() and not win.tool_actions["eraser"].isChecked()
    win.brush_spin.setValue(30)
    assert cv.brush_radius == 30
    cv.set_brush_radius(12)
    assert win.brush_spin.value() == 12
    win.opacity_slider.setValue(80)
    assert cv.overlay.opacity() == pytest.approx(0.8)
    win.act_show_overlay.trigger()
    assert not cv.overlay.isVisible() and not win.class_panel.show_overlay.isChecked()
    win.scale_box.setCurrentText("0.5")
    assert win.state.inference_scale == 0.5 and win.predictor.scale == 0.5
    assert not win.predictor.tta and not win.act_tta.isChecked()
    win.act_tta.trigger()
    assert win.state.inference_tta and win.predictor.tta and win.predictor.scale == 0.5
    win.act_tta.trigger()
    assert not win.state.inference_tta and not win.predictor.tta
    win.act_outline.trigger()
    assert win.act_outline.isChecked() and "outline mode on" in win.status_text.text()


def test_brush_steps_are_proportional_and_ctrl_drag_resizes(qtbot, model, folder):
    assert [step_radius(8, True), step_radius(40, True), step_radius(50, False), step_radius(1, False)] == [10, 50, 40, 1]
    win = make_window(qtbot, model, folder)
    cv = win.canvas
    cv.set_brush_radius(40)
    qtbot.keyClick(win, Qt.Key.Key_BracketRight)
    assert cv.brush_radius == 50
    qtbot.keyClick(win, Qt.Key.Key_BracketLeft)
    assert cv.brush_radius == 40
    before = win.current_doc().labels.copy()
    ctrl = Qt.KeyboardModifier.ControlModifier
    mouse(cv, QMouseEvent.Type.MouseButtonPress, 100, 100, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton, ctrl)
    mouse(cv, QMouseEvent.Type.MouseMove, 160, 100, Qt.MouseButton.LeftButton, mods=ctrl)
    mouse(cv, QMouseEvent.Type.MouseButtonRelease, 160, 100, button=Qt.MouseButton.LeftButton, mods=ctrl)
    assert cv.brush_radius > 40 and win.brush_spin.value() == cv.brush_radius
    np.testing.assert_array_equal(win.current_doc().labels, before)  # resizing never paints


def test_status_bar_zoom_about_cursor_and_one_to_one(qtbot, model, folder):
    win = make_window(qtbot, model, folder)
    cv, doc = win.canvas, win.current_doc()
    mouse(cv, QMouseEvent.Type.MouseMove, 200.5, 150.5)
    text = win.cursor_status.text()
    # the pixel under the cursor: the event lands on a whole view pixel, which maps back near (200.5, 150.5)
    at = cv.mapToScene(cv.mapFromScene(QPointF(200.5, 150.5)))
    x, y = int(at.x()), int(at.y())
    assert abs(x - 200) <= 1 and abs(y - 150) <= 1
    name = doc.classes.names[int(doc.labels[y, x])]
    assert f"x {x}, y {y}" in text and name in text and "%" in text and "predicted" in text
    win.controls.zoom_at(6.0)  # the image overflows the view: the scroll range allows keeping any point
    z0 = win.controls.zoom
    for _ in range(3):  # zoom in around image point (200, 150)
        vp = QPointF(cv.mapFromScene(QPointF(200, 150)))
        ev = QWheelEvent(vp, QPointF(cv.mapToGlobal(vp.toPoint())), QPoint(), QPoint(0, 120), Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(cv.viewport(), ev)
        after = cv.mapToScene(vp.toPoint())
        assert abs(after.x() - 200) <= 1.5 and abs(after.y() - 150) <= 1.5  # the point stays under the cursor
    assert win.controls.zoom == pytest.approx(z0 * 1.25**3)
    qtbot.keyClick(win, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert win.controls.zoom == pytest.approx(1.0)
    assert "100 %" in win.cursor_status.text()


def test_fill_unlabelled_and_clear_are_one_undo_step_each(qtbot, model, folder):
    win = make_window(qtbot, model, folder)
    doc, cv = win.current_doc(), win.canvas
    doc.labels[:40, :60] = IGNORE_INDEX  # a hole nobody labelled
    cv.refresh_labels()
    start = doc.labels.copy()
    qtbot.keyClick(win, Qt.Key.Key_4)  # the 4th class (Road, id 3)
    qtbot.keyClick(win, Qt.Key.Key_F, Qt.KeyboardModifier.ShiftModifier)
    assert (doc.labels[:40, :60] == 3).all() and len(doc.history) == 1
    np.testing.assert_array_equal(doc.labels[40:], start[40:])
    qtbot.keyClick(win, Qt.Key.Key_Delete, Qt.KeyboardModifier.ShiftModifier)
    assert (doc.labels == IGNORE_INDEX).all() and len(doc.history) == 2
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (doc.labels[:40, :60] == 3).all() and (doc.labels[40:] == start[40:]).all()
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(doc.labels, start)


def test_layout_restored_on_next_start_from_private_settings(qtbot, model, _private_qsettings):
    assert str(_private_qsettings) in window_settings().fileName()  # never the user's settings
    win = make_window(qtbot, model)
    win.resize(700, 560)
    win.findChild(type(win.files.parent()), "Images").hide()
    w, h = win.width(), win.height()
    win.close()
    win2 = make_window(qtbot, model)
    assert (win2.width(), win2.height()) == (w, h)
    assert not win2.findChild(type(win2.files.parent()), "Images").isVisible()
    assert win2.findChild(type(win2.files.parent()), "Classes").isVisible()


def test_peek_key_and_class_keys_beyond_nine(qtbot, model, folder):
    win = make_window(qtbot, model, folder)
    cv = win.canvas
    cv.setFocus()
    qtbot.keyPress(cv, Qt.Key.Key_V)
    assert not cv.overlay.isVisible() and win.controls.peeking
    qtbot.keyRelease(cv, Qt.Key.Key_V)
    assert cv.overlay.isVisible() and not win.controls.peeking
    qtbot.keyClick(win, Qt.Key.Key_0)
    assert win.state.current_class == 9
    qtbot.keyClick(win, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    assert win.state.current_class == 10


def test_review_queue_keys(qtbot, model, folder):
    win = make_window(qtbot, model, folder)
    rq = win.review
    assert rq.start()
    qtbot.waitUntil(lambda: win.job is None and rq.active, timeout=120_000)
    q = list(rq.queue)
    assert sorted(q) == sorted(win.paths) and [rq.scores[p] for p in q] == sorted(rq.scores.values(), reverse=True)
    assert win.current_doc().path == q[0]
    cv = win.canvas
    cv.setFocus()
    shown = win.current_doc().labels.copy()
    qtbot.keyClick(cv, Qt.Key.Key_Return)  # accept
    np.testing.assert_array_equal(read_index_png(label_path_for(q[0])), shown)
    assert win.project_ctl.project.images[q[0].name].status == "reviewed"
    assert win.current_doc().path == q[1]
    qtbot.keyClick(cv, Qt.Key.Key_Space)  # skip: nothing saved
    assert win.current_doc().path == q[2] and not label_path_for(q[1]).exists()
    qtbot.keyClick(cv, Qt.Key.Key_Backspace)  # back
    assert win.current_doc().path == q[1]
    win.set_tool("brush")
    mouse(cv, QMouseEvent.Type.MouseButtonPress, 50, 50, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    mouse(cv, QMouseEvent.Type.MouseMove, 90, 60, Qt.MouseButton.LeftButton)
    mouse(cv, QMouseEvent.Type.MouseButtonRelease, 90, 60, button=Qt.MouseButton.LeftButton)
    assert win.project_ctl.project.images[q[1].name].status == "corrected"  # an edit marks it corrected
    qtbot.keyClick(cv, Qt.Key.Key_Return)
    assert label_path_for(q[1]).is_file() and win.project_ctl.project.images[q[1].name].status == "corrected"
    assert win.current_doc().path == q[2]
    totals = win.project_ctl.view.totals.text()  # counts in the Project view
    assert "1 reviewed" in totals and "1 corrected" in totals


def test_review_never_overwrites_a_persons_pixels(qtbot, model, folder):
    win = make_window(qtbot, model, folder)
    cv, first = win.canvas, win.current_doc()
    qtbot.keyClick(win, Qt.Key.Key_9)  # Car
    mouse(cv, QMouseEvent.Type.MouseButtonPress, 30, 300, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    mouse(cv, QMouseEvent.Type.MouseMove, 120, 300, Qt.MouseButton.LeftButton)
    mouse(cv, QMouseEvent.Type.MouseButtonRelease, 120, 300, button=Qt.MouseButton.LeftButton)
    assert first.labels[300, 80] == 8
    assert win.review.start()
    qtbot.waitUntil(lambda: win.job is None and win.review.active, timeout=120_000)
    assert first.path not in win.review.queue and len(win.review.queue) == N - 1  # its person's pixels are saved
    saved = read_index_png(label_path_for(first.path))
    assert saved[300, 80] == 8 and first.labels[300, 80] == 8
    assert (saved == IGNORE_INDEX).mean() > 0.9  # only the stroke: the unreviewed prediction is not training data


def test_keys_work_right_after_show_without_a_click(qtbot, tmp_path, monkeypatch):
    """`segstudio FOLDER` shows the window, then opens the folder; the first key pressed must work before any
    click into the window. Tool and class keys are window shortcuts, which fire only in the active window: on
    X without a window manager nothing activated it, so they were lost. The window asks to be activated on
    its first show and the canvas takes the focus; keys go through the platform path (QWindow), as real ones."""
    from PIL import Image
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QMainWindow

    from segstudio.core import ClassSpec
    from segstudio.gui.main_window import MainWindow
    from segstudio.io import save_classes

    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(tmp_path / f"i{i}.png")
    save_classes(tmp_path / "classes.json", ClassSpec(("sky", "road", "car", "person")))
    asked = []
    monkeypatch.setattr(MainWindow, "activateWindow", lambda self: asked.append(self) or QMainWindow.activateWindow(self))
    win = MainWindow(None)  # as segstudio.gui.app.run: show, then open the folder
    qtbot.addWidget(win)
    win.show()
    assert asked == [win], "the window asks to be activated when it is first shown"
    qtbot.waitExposed(win)
    qtbot.waitUntil(win.isActiveWindow)
    assert QApplication.focusWidget() is win.canvas
    assert win.open_folder(tmp_path)
    assert QApplication.focusWidget() is win.canvas
    QTest.keyClick(win.windowHandle(), Qt.Key.Key_C)
    assert win.canvas.tool == "click" and win.tool_actions["click"].isChecked()
    QTest.keyClick(win.windowHandle(), Qt.Key.Key_3)
    assert win.state.current_class == 2 and win.canvas.current_class == 2
    win.hide()
    win.show()
    assert asked == [win], "only the first show asks (no focus stealing later)"
    qtbot.waitUntil(lambda: not win.canvas.busy, timeout=120_000)  # the click tool's encode of i0.png
