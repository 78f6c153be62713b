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
