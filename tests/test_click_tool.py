"""The click-to-segment tool on a real Canvas with a real Document and the shipped click model (pytest-qt,
offscreen): left / right clicks → the model's mask → Enter → one undo step painting the current class; and a
click on a real CamVid car gives a mask close to the car's label."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QAction, QKeySequence, QMouseEvent
from PySide6.QtWidgets import QApplication

from segstudio.core import IGNORE_INDEX, ClassSpec, Document
from segstudio.engine.click.protocol import evaluate_object, iou, next_click, object_masks
from segstudio.gui.canvas import Canvas
from segstudio.gui.tools import TOOL_CLICK, ClickTool
from segstudio.io.images import read_image
from segstudio.io.labels import read_index_png

#: CamVid val frame with a mid-sized car (9051 px, the 9th largest car component of val).
CAR_FRAME = "0016E5_07965"
#: Floors with margin under what the shipped model measures on this car (CPU, 2026-12-06): its first click gives a
#: small mask inside the car (580 px of 9051, all on the car: IoU 0.064), the next protocol clicks 0.718 and 0.872.
#: The model this one replaced (2026-12-04, 20 CPU minutes on CamVid + ISBI + DRIVE) gave 0.785 / 0.930 / 0.935 on
#: this car but needs more clicks on CamVid val cars overall (NoC@85 5.33 against 3.07, docs/benchmarks.md "Click
#: model on every proxy"): the first click on this car is the case the new model is worse at, and the test says so.
CAR_PRECISION_FLOOR_1_CLICK = 0.95
CAR_IOU_FLOOR_3_CLICKS = 0.82


def _canvas(qtbot, doc: Document, zoom: float) -> Canvas:
    cv = Canvas()
    cv.resize(1000, 760)
    cv.show()
    qtbot.waitExposed(cv)
    cv.set_document(doc)
    cv._auto_fit = False
    cv.resetTransform()
    cv.scale(zoom, zoom)
    h, w = doc.shape
    cv.centerOn(w / 2, h / 2)
    cv.edits = []
    cv.edited.connect(lambda: cv.edits.append(len(cv.doc.history)))
    return cv


def _close(qtbot, cv: Canvas) -> None:
    qtbot.waitUntil(lambda: not cv.busy, timeout=60_000)
    cv.close()
    cv.deleteLater()


def _mouse(cv, x, y, button):
    pos = QPointF(cv.mapFromScene(QPointF(x + 0.5, y + 0.5)))
    for kind, buttons in ((QMouseEvent.Type.MouseButtonPress, button), (QMouseEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton)):
        QApplication.sendEvent(cv.viewport(), QMouseEvent(kind, pos, cv.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier))


def _wait_answer(qtbot, tool: ClickTool) -> None:
    qtbot.waitUntil(lambda: tool.mask is not None and not tool.busy, timeout=60_000)


@pytest.fixture()
def car(camvid):
    image = read_image(camvid / "images" / f"{CAR_FRAME}.png")
    labels = read_index_png(camvid / "masks" / f"{CAR_FRAME}.png")
    classes = ClassSpec.from_json(__import__("json").loads((camvid / "classes.json").read_text()))
    car_id = classes.names.index("Car")
    (cid, gt), *_ = object_masks(labels, [car_id])
    return image, classes, car_id, gt, labels == IGNORE_INDEX


def test_clicks_then_enter_paint_the_current_class_as_one_undo_step(qtbot, car):
    image, classes, car_id, gt, _ = car
    doc = Document("frame.png", image, classes)
    cv = _canvas(qtbot, doc, 1.0)
    try:
        cv.current_class = car_id
        # the window's Enter shortcut (Close polygon) must not swallow Enter while clicks are pending
        closed = []
        act = QAction("Close polygon", cv)
        act.setShortcuts([QKeySequence("Return"), QKeySequence("Enter")])
        act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        act.triggered.connect(lambda: closed.append(1))
        cv.addAction(act)
        cv.set_tool(TOOL_CLICK)
        tool = cv.active_tool
        assert isinstance(tool, ClickTool)
        c1 = next_click(gt, np.zeros_like(gt))
        _mouse(cv, c1.x, c1.y, Qt.MouseButton.LeftButton)
        _wait_answer(qtbot, tool)
        assert [c.positive for c in tool.clicks] == [True]
        far = np.argwhere(~gt)[0]  # a background pixel: right click = negative click, no panning
        _mouse(cv, int(far[1]), int(far[0]), Qt.MouseButton.RightButton)
        assert [c.positive for c in tool.clicks] == [True, False]
        _wait_answer(qtbot, tool)
        session = tool.session()
        assert session.encoder_runs == 1  # the image was encoded once for both clicks
        mask = tool.mask.copy()
        assert mask.any() and len(doc.history) == 0 and (doc.labels == IGNORE_INDEX).all()  # nothing painted yet
        cv.setFocus()
        qtbot.keyClick(cv, Qt.Key.Key_Return)
        assert closed == []
        assert len(doc.history) == 1 and cv.edits == [1]
        np.testing.assert_array_equal(doc.labels == car_id, mask)
        assert (doc.labels[~mask] == IGNORE_INDEX).all()
        assert tool.clicks == [] and tool.mask is None
        cv.undo()
        assert (doc.labels == IGNORE_INDEX).all() and len(doc.history) == 0
    finally:
        _close(qtbot, cv)


def test_first_click_on_an_existing_region_corrects_it(qtbot, car):
    image, classes, car_id, gt, _ = car
    labels = np.full(gt.shape, IGNORE_INDEX, np.uint8)
    ys, xs = np.nonzero(gt)
    blob = np.zeros_like(gt)
    blob[ys.min() - 10 : ys.max() + 10, xs.min() - 10 : xs.max() + 10] = True  # a too-big "prediction" box
    labels[blob] = car_id
    doc = Document("frame.png", image, classes, labels=labels)
    cv = _canvas(qtbot, doc, 1.0)
    try:
        cv.current_class = car_id
        cv.set_tool(TOOL_CLICK)
        tool = cv.active_tool
        c = next_click(gt, np.zeros_like(gt))
        assert tool.add_click(c.y, c.x, True)
        assert tool.mask is not None and (tool.mask == blob).all()  # the existing region is the start mask
        _wait_answer(qtbot, tool)
        tool.commit()
        assert len(doc.history) == 1
        dropped = blob & ~(doc.labels == car_id)
        assert (doc.labels[dropped] == IGNORE_INDEX).all()  # what the clicks removed is unlabelled now
        qtbot.keyClick(cv, Qt.Key.Key_Backspace)  # no clicks pending: Backspace is not the tool's
    finally:
        _close(qtbot, cv)


def test_a_click_on_a_real_camvid_car_gives_its_mask(qtbot, car):
    image, classes, car_id, gt, ignore = car
    doc = Document("frame.png", image, classes)
    cv = _canvas(qtbot, doc, 1.0)
    try:
        cv.current_class = car_id
        cv.set_tool(TOOL_CLICK)
        tool = cv.active_tool
        c1 = next_click(gt, np.zeros_like(gt), ignore)
        _mouse(cv, c1.x, c1.y, Qt.MouseButton.LeftButton)
        _wait_answer(qtbot, tool)
        first = tool.mask & ~ignore
        assert first.sum() > 0 and (first & gt).sum() / first.sum() >= CAR_PRECISION_FLOOR_1_CLICK, (first.sum(), (first & gt).sum())
        assert iou(tool.mask, gt, ignore) > 0
        # the NoC protocol's next clicks, through the tool's own session
        session = tool.session()
        ious = evaluate_object(lambda cl, prev: session.predict(cl, prev), gt, max_clicks=3, ignore=ignore)
        assert max(ious) >= CAR_IOU_FLOOR_3_CLICKS, ious
        assert session.encoder_runs == 1
    finally:
        _close(qtbot, cv)


def test_every_tool_ignores_a_stray_key(qtbot):
    """A key no tool uses reaches Tool.key of each tool without error (the superpixel tool's cache-key
    helper used to shadow Tool.key and raised AttributeError on any key press)."""
    from segstudio.gui.tools import TOOLS

    rng = np.random.default_rng(0)
    doc = Document("noise.png", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), ClassSpec(("a", "b")))
    cv = _canvas(qtbot, doc, 4.0)
    try:
        for name in TOOLS:
            cv.set_tool(name)
            assert cv.active_tool.key(int(Qt.Key.Key_A)) is False
            qtbot.keyClick(cv, Qt.Key.Key_A)
        assert (doc.labels == IGNORE_INDEX).all()
    finally:
        _close(qtbot, cv)
