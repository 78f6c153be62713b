"""The labelling loop in the real window (pytest-qt, offscreen): open, predict, paint, undo, redo,
save, reopen, fine-tune."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from segstudio.core import IGNORE_INDEX
from segstudio.engine import finetune_config, list_versions, load_checkpoint
from segstudio.engine.checkpoint import default_checkpoint
from segstudio.gui.main_window import MainWindow
from segstudio.io import label_path_for, read_index_png
from qt_helpers import show_window, wait_idle

CAR = 8


@pytest.fixture()
def folder(tmp_path, samples_dir):
    for p in sorted(samples_dir.glob("*.png")):
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


@pytest.fixture(scope="module")
def default_model_path():
    path = default_checkpoint()
    assert path.is_file(), f"the embedded default model {path} is missing"
    return path


def make_window(qtbot, model_path):
    return show_window(qtbot, load_checkpoint(model_path))




def drag(canvas, points):
    """Press at the first point, move through the others, release: real mouse events on the viewport."""
    vp = canvas.viewport()

    def ev(kind, x, y, buttons):
        pos = QPointF(canvas.mapFromScene(QPointF(x, y)))
        return QMouseEvent(kind, pos, canvas.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.NoModifier)

    x, y = points[0]
    QApplication.sendEvent(vp, ev(QMouseEvent.Type.MouseButtonPress, x, y, Qt.MouseButton.LeftButton))
    for x, y in points[1:]:
        QApplication.sendEvent(vp, ev(QMouseEvent.Type.MouseMove, x, y, Qt.MouseButton.LeftButton))
    QApplication.sendEvent(vp, ev(QMouseEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton))


def test_open_predict_paint_undo_redo_save_reopen(qtbot, folder, default_model_path):
    win = make_window(qtbot, default_model_path)
    assert not win.predictor.prepared, "building the predictor on the GUI thread defers its BN folding"
    threads = []
    orig, orig_many = win.predictor.predict, win.predictor.predict_many

    def spy(image):
        threads.append(threading.current_thread())
        return orig(image)

    def spy_many(*a, **k):  # the engine's folder pipeline (predict_images) the window uses
        for res in orig_many(*a, **k):
            threads.append(threading.current_thread())
            yield res

    win.predictor.predict, win.predictor.predict_many = spy, spy_many
    win.open_folder(folder)
    assert win.files.count() == 6  # the six bundled CamVid samples
    wait_idle(qtbot, win)
    doc = win.current_doc()
    assert doc.source == "predicted"
    assert threads and all(t is not threading.main_thread() for t in threads), "predict must run on a worker thread"
    assert win.predictor.prepared, "the lazy predictor got ready on the worker (BN folding off the GUI thread)"
    assert doc.labels.max() < 11 and (doc.labels != IGNORE_INDEX).all()

    # Pick "Car" with its number key, paint a stroke with real mouse events.
    qtbot.keyClick(win, Qt.Key.Key_9)
    assert win.canvas.current_class == CAR
    before = doc.labels.copy()
    drag(win.canvas, [(60, 60), (120, 80), (200, 90)])
    painted = doc.labels != before
    assert painted.sum() > 500
    assert (doc.labels[painted] == CAR).all()
    assert doc.labels[80, 120] == CAR  # drag points are (x, y); label maps index [y, x]
    assert doc.dirty and len(doc.history) == 1, "one stroke = one undo step"
    p = doc.history._undo[0]
    assert p.before.size < 0.2 * doc.labels.size, "undo stores the touched patch, not the whole map"
    after = doc.labels.copy()

    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(doc.labels, before)
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(doc.labels, after)

    # Bracket keys change the brush size; the eraser paints ignore.
    r = win.canvas.brush_radius
    qtbot.keyClick(win, Qt.Key.Key_BracketRight)
    assert win.canvas.brush_radius > r
    qtbot.keyClick(win, Qt.Key.Key_E)
    drag(win.canvas, [(300, 300), (310, 300)])
    assert doc.labels[300, 305] == IGNORE_INDEX

    qtbot.keyClick(win, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    saved = label_path_for(doc.path)
    assert saved.is_file() and (saved.parent / "classes.json").is_file()
    np.testing.assert_array_equal(read_index_png(saved), doc.labels)
    assert not doc.dirty
    win.close()

    # Reopen: the saved labels are shown, not a new prediction.
    win2 = make_window(qtbot, default_model_path)
    win2.open_folder(folder)
    wait_idle(qtbot, win2)
    doc2 = win2.current_doc()
    assert doc2.source == "saved"
    np.testing.assert_array_equal(doc2.labels, read_index_png(saved))
    assert win2.files.item(0).text().startswith("✓")
    # Next image with the keyboard gets a prediction.
    qtbot.keyClick(win2.canvas, Qt.Key.Key_Right)  # the canvas has the focus while labelling
    assert win2.index == 1
    wait_idle(qtbot, win2)
    assert win2.current_doc().source == "predicted"
    win2.close()


def test_one_click_finetune_makes_new_version_and_changes_predictions(qtbot, folder, default_model_path):
    win = make_window(qtbot, default_model_path)
    win.finetune_config = finetune_config(max_steps=6, batch_size=2, crop_size=(128, 160), lr=2e-3)
    win.open_folder(folder)
    wait_idle(qtbot, win)
    # Label two images almost entirely as "Car" (flood fill + brush), then save.
    win.pick_class(CAR)
    for i in (0, 1):
        win.files.setCurrentRow(i)
        wait_idle(qtbot, win)
        doc = win.current_doc()
        doc.stroke([(y, 0) for y in range(0, 360, 40)] + [(y, 479) for y in range(0, 360, 40)], 300, CAR)
        assert (doc.labels == CAR).mean() > 0.95
        win.save_current()
    # Look at an unlabelled image and remember the old prediction.
    win.files.setCurrentRow(3)
    wait_idle(qtbot, win)
    old = win.current_doc().labels.copy()
    old_car = (old == CAR).mean()

    assert win.finetune()
    assert win.job is not None and win.progress.isVisible() and win.cancel_button.isVisible()
    qtbot.waitUntil(lambda: win.job is None and win.model.path.parent.name == "v001", timeout=300_000)
    # The current image is then re-predicted with the new weights (another worker job).
    qtbot.waitUntil(lambda: win.job is None and win.current_doc().source == "predicted", timeout=120_000)
    versions = list_versions(folder)
    assert [v.name for v in versions] == ["v001"]
    card = load_checkpoint(versions[0]).card
    assert card["parent"] == str(default_model_path)
    assert card["training_data"]["images"] == 2
    assert win.model_panel.model_combo.currentText().endswith("v001")
    new = win.current_doc().labels
    assert win.current_doc().source == "predicted"
    assert (new != old).any(), "the current image must be re-predicted with the new weights"
    assert (new == CAR).mean() > old_car, "fine-tuning on 'Car' labels must move predictions toward Car"
    win.close()


def test_finetune_cancel_keeps_no_partial_version(qtbot, folder, default_model_path):
    win = make_window(qtbot, default_model_path)
    win.finetune_config = finetune_config(max_steps=500, batch_size=2, crop_size=(128, 160))
    win.open_folder(folder)
    wait_idle(qtbot, win)
    win.current_doc().stroke([(100, 100)], 20, CAR)
    win.save_current()
    assert win.finetune()
    qtbot.waitUntil(lambda: "step" in win.status_text.text(), timeout=120_000)
    win.cancel_button.click()
    wait_idle(qtbot, win)
    assert "cancelled" in win.status_text.text()
    assert win.model.path == default_model_path, "a cancelled fine-tune does not replace the model in use"
    for v in list_versions(folder):  # whatever was kept is a complete, loadable checkpoint
        load_checkpoint(v)
    win.close()


def test_image_reached_while_worker_busy_gets_predicted(qtbot, folder, default_model_path):
    win = make_window(qtbot, default_model_path)
    win.open_folder(folder)  # starts predicting image 0 in the worker
    assert win.job is not None
    win.files.setCurrentRow(2)  # the user moves on before it finishes
    qtbot.waitUntil(lambda: win.job is None and win.current_doc().source == "predicted", timeout=120_000)
    assert win.index == 2
    assert win.docs[win.paths[0]].source == "predicted"
    win.close()


def test_cyclic_gc_runs_only_on_the_gui_thread(qtbot):
    """A worker thread must never run the cyclic GC: it could destroy Qt objects off the GUI thread (deadlock)."""
    import gc

    from PySide6.QtWidgets import QApplication

    from segstudio.gui import qtutil

    win = MainWindow(None)
    qtbot.addWidget(win)
    assert not gc.isenabled(), "automatic collection (which may fire in any thread) is off"
    assert qtutil._GC is not None and qtutil._GC.timer.isActive()
    assert qtutil._GC.timer.thread() is QApplication.instance().thread(), "collections run on the GUI thread"
    assert gc.get_freeze_count() > 10_000, "objects alive at start-up are frozen: full collections stay short"
