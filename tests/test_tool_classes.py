"""The tool classes of segstudio.gui.tools on a real Canvas with a real Document (pytest-qt, offscreen): each tool
is driven by real mouse events on the viewport (or its press / move / release directly) and checked on the
resulting label map, the undo history and the drawn overlay."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt, QThread
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from segstudio.core import IGNORE_INDEX, ClassSpec, Document
from segstudio.gui.canvas import TOOLS, Canvas
from segstudio.gui.tools import (
    BrushTool,
    ClickTool,
    EraserTool,
    FillTool,
    GrabCutTool,
    LassoTool,
    PolygonTool,
    SuperpixelTool,
)
from qt_helpers import show_window

H, W = 120, 160
DISC = (60, 105, 26)  # cy, cx, r of the dark object GrabCut must find
CLASSES = ClassSpec(("road", "car", "sky"), colors=((255, 0, 0), (0, 255, 0), (0, 0, 255)))


def make_image(seed: int = 0, noise: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Grey noisy background with a dark-blue disc; returns (uint8 (H, W, 3) image, bool (H, W) disc)."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), (170, 170, 160), np.float64)
    yy, xx = np.mgrid[:H, :W]
    cy, cx, r = DISC
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img[disc] = (30, 50, 110)
    img += rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), disc


@pytest.fixture()
def canvas(qtbot):
    """A shown Canvas at zoom 2 on a fresh Document (all pixels unlabelled); at zoom 2 every pixel centre falls
    on a whole viewport pixel, so a mouse event lands exactly on the pixel asked for."""
    img, disc = make_image()
    cv = Canvas()  # closed by this fixture, after its workers ended (not by qtbot, which would delete it first)
    cv.resize(400, 300)
    cv.show()
    qtbot.waitExposed(cv)
    cv.set_document(Document("synthetic.png", img, CLASSES))
    cv._auto_fit = False
    cv.resetTransform()
    cv.scale(2, 2)
    cv.centerOn(W / 2, H / 2)
    for x, y in [(0, 0), (17, 93), (W - 1, H - 1)]:
        assert cv.mapToScene(cv.mapFromScene(QPointF(x + 0.5, y + 0.5))) == QPointF(x + 0.5, y + 0.5)
    cv.disc = disc
    cv.edits = []
    cv.messages = []
    cv.edited.connect(lambda: cv.edits.append(len(cv.doc.history)))
    cv.status.connect(cv.messages.append)
    yield cv
    qtbot.waitUntil(lambda: not cv.busy, timeout=60_000)  # no worker left running into the next test
    cv.close()
    cv.deleteLater()


def mouse(canvas, kind, x, y, buttons=Qt.MouseButton.LeftButton, button=Qt.MouseButton.LeftButton):
    """Send a real mouse event at image pixel ``(x, y)`` (its centre) to the viewport."""
    pos = QPointF(canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
    QApplication.sendEvent(
        canvas.viewport(),
        QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier),
    )


def click(canvas, x, y):
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, x, y)
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton)


def drag(canvas, pts):
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, *pts[0])
    for p in pts[1:]:
        mouse(canvas, QMouseEvent.Type.MouseMove, *p)
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, *pts[-1], buttons=Qt.MouseButton.NoButton)


def capsule(y0, x0, y1, x1, r) -> np.ndarray:
    """Pixels within ``r`` of the segment (y0, x0)-(y1, x1)."""
    yy, xx = np.mgrid[:H, :W].astype(float)
    d = np.array([y1 - y0, x1 - x0], float)
    t = np.clip(((yy - y0) * d[0] + (xx - x0) * d[1]) / max(d @ d, 1e-9), 0, 1)
    return (yy - (y0 + t * d[0])) ** 2 + (xx - (x0 + t * d[1])) ** 2 <= r * r


def test_every_tool_name_has_its_class(canvas):
    kinds = {"brush": BrushTool, "eraser": EraserTool, "fill": FillTool, "polygon": PolygonTool,
             "lasso": LassoTool, "superpixel": SuperpixelTool, "grabcut": GrabCutTool, "click": ClickTool}
    assert tuple(canvas.tools) == TOOLS
    for name in TOOLS:
        canvas.set_tool(name)
        assert canvas.tool == name and type(canvas.active_tool) is kinds[name]
        assert canvas.cursor_item.isVisible() == (name in ("brush", "eraser", "superpixel"))
    canvas.tool = "eraser"  # plain assignment (MainWindow.set_class does it) switches the tool object too
    assert isinstance(canvas.active_tool, EraserTool)
    with pytest.raises(ValueError, match="unknown tool 'pen'"):
        canvas.set_tool("pen")


def test_brush_stroke_paints_current_class_as_one_undo_step(canvas):
    doc = canvas.doc
    canvas.current_class = 2
    canvas.set_brush_radius(4)
    drag(canvas, [(20, 30), (40, 30), (60, 30)])
    painted = doc.labels != IGNORE_INDEX
    assert (doc.labels[painted] == 2).all()
    np.testing.assert_array_equal(painted, capsule(30, 20, 30, 60, 4))
    assert len(doc.history) == 1 and canvas.edits == [1] and doc.dirty
    # A second stroke with another class is a second undo step and leaves the first one's pixels alone.
    canvas.current_class = 1
    drag(canvas, [(20, 80), (60, 80)])
    assert (doc.labels == 1).sum() > 300 and (doc.labels == 2).sum() == painted.sum()
    assert len(doc.history) == 2
    canvas.undo()
    assert not (doc.labels == 1).any() and (doc.labels == 2).sum() == painted.sum()
    canvas.undo()
    assert (doc.labels == IGNORE_INDEX).all()
    canvas.redo()
    np.testing.assert_array_equal(doc.labels != IGNORE_INDEX, painted)


def test_brush_press_move_release_called_directly(canvas):
    doc = canvas.doc
    brush = canvas.tools["brush"]
    canvas.current_class = 1
    canvas.set_brush_radius(3)
    brush.press(50.0, 50.0)
    assert brush.pending and (doc.labels[47:54, 47:54] == 1).any()
    assert brush.move(50.0, 90.0, True)  # live feedback: painted before release, not yet an undo step
    assert (doc.labels[50, 50:91] == 1).all() and len(doc.history) == 0
    canvas.undo()  # refused while painting
    assert (doc.labels[50, 50:91] == 1).all()
    assert brush.release(50.0, 90.0) and not brush.pending
    np.testing.assert_array_equal(doc.labels != IGNORE_INDEX, capsule(50, 50, 50, 90, 3))
    assert len(doc.history) == 1 and canvas.edits == [1]
    assert not brush.release(50.0, 90.0)  # a stray release does nothing


def test_eraser_unlabels_and_undo_restores(canvas):
    doc = canvas.doc
    doc.set_labels(np.ones((H, W), np.uint8), "saved")
    canvas.refresh_labels()
    canvas.current_class = 2
    canvas.set_tool("eraser")
    canvas.set_brush_radius(5)
    drag(canvas, [(30, 60), (100, 60)])
    erased = doc.labels == IGNORE_INDEX
    np.testing.assert_array_equal(erased, capsule(60, 30, 60, 100, 5))
    assert (doc.labels[~erased] == 1).all()
    assert len(doc.history) == 1
    canvas.undo()
    assert (doc.labels == 1).all()


def test_flood_fill_fills_exactly_the_clicked_region(canvas):
    doc = canvas.doc
    labels = np.zeros((H, W), np.uint8)
    labels[:, 70] = 1  # a wall: the fill must stop at it
    doc.set_labels(labels, "saved")
    canvas.refresh_labels()
    canvas.current_class = 2
    canvas.set_tool("fill")
    click(canvas, 20, 40)
    assert (doc.labels[:, :70] == 2).all() and (doc.labels[:, 70] == 1).all() and (doc.labels[:, 71:] == 0).all()
    assert len(doc.history) == 1 and canvas.edits == [1]
    click(canvas, 20, 40)  # filling a region with its own class changes nothing: no undo step
    assert len(doc.history) == 1
    canvas.tools["fill"].press(10.0, 100.0)  # the tool's press directly
    assert (doc.labels[:, 71:] == 2).all() and len(doc.history) == 2
    canvas.undo()
    canvas.undo()
    np.testing.assert_array_equal(doc.labels, labels)


def test_polygon_clicks_close_on_first_vertex_or_double_click(canvas, qtbot):
    doc = canvas.doc
    canvas.current_class = 1
    canvas.set_tool("polygon")
    for x, y in [(10, 10), (70, 10), (70, 50), (10, 50)]:
        click(canvas, x, y)
    assert len(canvas.shape_points) == 4 and (doc.labels == IGNORE_INDEX).all()
    assert not canvas.shape_item.path().isEmpty()
    click(canvas, 10, 10)  # on the first vertex: closes
    assert canvas.shape_points == [] and canvas.shape_item.path().isEmpty()
    rect = doc.labels == 1
    np.testing.assert_array_equal(np.argwhere(rect).min(0), [10, 10])  # pixel centres inside the polygon
    np.testing.assert_array_equal(np.argwhere(rect).max(0), [49, 69])
    assert rect.sum() == 60 * 40 and len(doc.history) == 1
    # Backspace (the tool's key) drops the last vertex; a double-click closes.
    canvas.current_class = 2
    for x, y in [(100, 60), (150, 60), (150, 110), (140, 20)]:
        click(canvas, x, y)
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert len(canvas.shape_points) == 3
    mouse(canvas, QMouseEvent.Type.MouseButtonDblClick, 100, 110)
    tri = doc.labels == 2
    assert tri[100, 140] and tri[65, 110] and not tri[100, 105] and not tri[30, 145]
    assert len(doc.history) == 2 and (doc.labels == 1).sum() == rect.sum()
    # Two vertices are not a polygon: closing only ends it, with a message.
    click(canvas, 5, 100)
    click(canvas, 40, 100)
    assert canvas.close_shape() is None and canvas.shape_points == [] and len(doc.history) == 2
    assert canvas.messages[-1] == "a polygon needs at least 3 points"


def test_lasso_fills_freehand_loop_on_release(canvas):
    doc = canvas.doc
    canvas.current_class = 2
    canvas.set_tool("lasso")
    t = np.linspace(0, 2 * np.pi, 50)
    drag(canvas, [(80 + 25 * np.cos(a), 60 + 25 * np.sin(a)) for a in t])
    lasso = doc.labels == 2
    assert abs(lasso.sum() - np.pi * 25**2) < 0.05 * np.pi * 25**2
    assert lasso[60, 80] and not lasso[60, 108] and (doc.labels[~lasso] == IGNORE_INDEX).all()
    assert len(doc.history) == 1 and canvas.shape_points == []
    # Moving without the button held draws nothing.
    mouse(canvas, QMouseEvent.Type.MouseMove, 10, 10, buttons=Qt.MouseButton.NoButton)
    assert canvas.shape_points == []
    canvas.undo()
    assert (doc.labels == IGNORE_INDEX).all()


def test_superpixel_brush_paints_whole_superpixels(canvas, qtbot):
    doc = canvas.doc
    canvas.current_class = 1
    canvas.set_brush_radius(2)
    with qtbot.waitSignal(canvas.superpixelsReady, timeout=60_000):
        canvas.set_tool("superpixel")
        assert canvas.busy  # SLIC runs in a worker
    sp = canvas.superpixels()
    assert sp is not None and sp.shape == (H, W) and canvas.sp_item.isVisible()
    drag(canvas, [(20, 20), (40, 22), (60, 24)])
    painted = doc.labels == 1
    touched = np.unique(sp.segments[painted])
    assert len(touched) >= 2
    np.testing.assert_array_equal(painted, np.isin(sp.segments, touched))  # whole superpixels, nothing else
    assert painted.sum() > 2 * capsule(22, 20, 24, 60, 2).sum()
    assert len(doc.history) == 1 and canvas.edits == [1]
    canvas.set_tool("brush")
    assert not canvas.sp_item.isVisible()
    canvas.undo()
    assert (doc.labels == IGNORE_INDEX).all()


def test_superpixel_stroke_before_superpixels_are_ready_paints_nothing(canvas, qtbot):
    doc = canvas.doc
    tool = canvas.tools["superpixel"]
    canvas.active_tool = tool  # on, without starting the computation (set_tool would)
    tool.press(30.0, 30.0)
    assert not tool.pending and (doc.labels == IGNORE_INDEX).all() and len(doc.history) == 0
    assert "still being computed" in canvas.messages[-1]
    qtbot.waitUntil(lambda: canvas.superpixels() is not None, timeout=60_000)  # the press started it


def test_grabcut_rectangle_runs_in_worker_and_is_one_undo_step(canvas, qtbot):
    doc = canvas.doc
    canvas.current_class = 2
    canvas.set_tool("grabcut")
    cy, cx, r = DISC
    with qtbot.waitSignal(canvas.grabcutDone, timeout=60_000) as sig:
        drag(canvas, [(cx - r - 10, cy - r - 10), (cx, cy), (cx + r + 10, cy + r + 10)])
        assert canvas.busy and not canvas.rect_item.isVisible()
    assert sig.args == [True]
    got = doc.labels == 2
    iou = (got & canvas.disc).sum() / (got | canvas.disc).sum()
    assert iou > 0.9, iou
    assert (doc.labels[~got] == IGNORE_INDEX).all() and len(doc.history) == 1 and canvas.edits == [1]
    canvas.undo()
    assert (doc.labels == IGNORE_INDEX).all()
    # A too small rectangle starts nothing.
    assert not canvas.grabcut((5, 5, 2, 2)) and "larger rectangle" in canvas.messages[-1] and not canvas.busy


def test_grabcut_result_goes_to_the_document_it_started_on(canvas, qtbot):
    first = canvas.doc
    canvas.current_class = 1
    cy, cx, r = DISC
    with qtbot.waitSignal(canvas.grabcutDone, timeout=60_000):
        assert canvas.grabcut((cx - r - 10, cy - r - 10, 2 * r + 20, 2 * r + 20))
        other = Document("other.png", make_image(seed=3)[0], CLASSES)
        canvas.set_document(other)
    assert (first.labels == 1).sum() > 0.9 * canvas.disc.sum() and len(first.history) == 1
    assert (other.labels == IGNORE_INDEX).all() and len(other.history) == 0
    assert canvas.edits == []  # the shown document did not change


@pytest.mark.parametrize("tool", ["brush", "fill", "polygon", "lasso", "grabcut"])
def test_a_class_id_outside_the_documents_classes_paints_nothing(canvas, tool):
    """A stale current class (e.g. left over from an edited class list) never reaches the label map."""
    doc = canvas.doc
    canvas.current_class = 7  # the document has classes 0..2
    canvas.set_tool(tool)
    if tool == "polygon":
        for x, y in [(20, 20), (80, 20), (80, 80), (20, 80)]:
            click(canvas, x, y)
        assert canvas.close_shape() is None
    else:
        drag(canvas, [(20, 20), (80, 20), (80, 80), (20, 80), (79, 79)])
    assert (doc.labels == IGNORE_INDEX).all() and len(doc.history) == 0 and canvas.edits == []
    assert not canvas.busy
    assert any("class id 7 is not one of this image's classes 0..2" in m for m in canvas.messages)


def test_switching_tool_or_document_mid_stroke_keeps_the_stroke_as_one_undo_step(canvas):
    doc = canvas.doc
    canvas.current_class = 2
    canvas.set_brush_radius(3)
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, 20, 20)
    mouse(canvas, QMouseEvent.Type.MouseMove, 60, 20)
    canvas.set_tool("fill")  # e.g. the F key while the button is held
    assert len(doc.history) == 1 and (doc.labels == 2).sum() == capsule(20, 20, 20, 60, 3).sum()
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, 60, 20, buttons=Qt.MouseButton.NoButton)
    assert len(doc.history) == 1
    # An image switch mid-stroke records the stroke on the image it was painted on; the new one is untouched.
    canvas.set_tool("brush")
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, 20, 90)
    mouse(canvas, QMouseEvent.Type.MouseMove, 60, 90)
    other = Document("other.png", make_image(seed=1)[0], CLASSES)
    canvas.set_document(other)
    mouse(canvas, QMouseEvent.Type.MouseMove, 80, 90)
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, 80, 90, buttons=Qt.MouseButton.NoButton)
    assert len(doc.history) == 2 and (doc.labels[90, 20:61] == 2).all() and doc.labels[90, 75] == IGNORE_INDEX
    assert (other.labels == IGNORE_INDEX).all() and len(other.history) == 0
    # Labels replaced mid-stroke (a prediction arriving): the stroke is dropped, the new map untouched.
    canvas.set_document(doc)
    canvas.begin_stroke(100.0, 100.0)
    new = np.zeros((H, W), np.uint8)
    doc.set_labels(new, "predicted")
    canvas.continue_stroke(100.0, 140.0)
    canvas.end_stroke()
    assert (doc.labels == 0).all() and len(doc.history) == 0


def test_strokes_render_on_the_canvas(canvas, tmp_path):
    """Grab the widget after strokes of two classes: the painted pixels show the class colours over the image."""
    canvas.overlay.setOpacity(1.0)
    canvas.set_brush_radius(6)
    canvas.current_class = 0  # red
    drag(canvas, [(20, 20), (140, 20)])
    canvas.current_class = 2  # blue
    drag(canvas, [(20, 100), (140, 100)])
    QApplication.processEvents()
    img = canvas.grab().toImage()
    img.save(str(tmp_path / "canvas.png"))

    def rgb(x, y):
        p = canvas.viewport().mapTo(canvas, canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
        c = img.pixelColor(p)
        return c.red(), c.green(), c.blue()

    assert rgb(80, 20) == (255, 0, 0) and rgb(80, 100) == (0, 0, 255)
    r, g, b = rgb(30, 60)  # unpainted: the grey image
    assert abs(r - 170) < 30 and abs(g - 170) < 30 and abs(b - 160) < 30


def test_closing_the_canvas_while_slic_runs_neither_aborts_nor_leaks_the_worker(qtbot):
    """The worker thread belongs to the application: deleting the canvas mid-job must not destroy a running
    QThread (Qt would abort the whole process); the job ends on its own and its result goes nowhere."""
    from segstudio.gui import workers

    cv = Canvas()
    cv.resize(300, 200)
    cv.show()
    cv.set_document(Document("synthetic.png", make_image()[0], CLASSES))
    cv.set_tool("superpixel")
    assert cv.busy and workers._IN_FLIGHT
    with qtbot.waitSignal(cv.destroyed, timeout=10_000):
        cv.close()
        cv.deleteLater()
    qtbot.waitUntil(lambda: not workers._IN_FLIGHT, timeout=60_000)


def test_tool_jobs_report_a_failing_worker_or_result_handler(qtbot):
    """A job's failure reaches the status bar (failed signal), never a silent traceback; the job still ends."""
    from segstudio.gui.tools import ToolJobs

    cv = Canvas()
    jobs, got = cv.jobs, []
    cv.status.connect(got.append)

    def broken(job):
        raise OSError("disk gone")

    with qtbot.waitSignal(jobs.failed, timeout=10_000):
        jobs.start("a", broken, lambda r: got.append(("result", r)))
    qtbot.waitUntil(lambda: not jobs.busy, timeout=10_000)
    assert got == ["a failed: disk gone"]  # forwarded to the canvas's status signal; no result delivered

    def bad_result(r):
        raise ValueError(f"class id {r} is not valid")

    with qtbot.waitSignal(jobs.failed, timeout=10_000) as sig:
        jobs.start("b", lambda job: 9, bad_result)
    assert sig.args == ["b failed: class id 9 is not valid"]
    qtbot.waitUntil(lambda: not jobs.busy, timeout=10_000)
    with pytest.raises(RuntimeError, match="still running"):
        jobs.start("c", lambda job: QThread.msleep(200))
        jobs.start("c", lambda job: None)
    qtbot.waitUntil(lambda: not jobs.busy, timeout=10_000)
    assert isinstance(jobs, ToolJobs)
    cv.deleteLater()


def test_tool_jobs_in_the_window_run_and_fail_through_the_project_state(qtbot, tmp_path, monkeypatch):
    """In the window the canvas's jobs go through ProjectState's one runner (slot "tool:<name>"): a GrabCut
    that raises in its worker, and a result handler that raises on the GUI thread, both reach the state's
    jobFailed signal and the status bar; the GrabCut's undo history is untouched."""
    from PIL import Image

    from segstudio.gui.jobs import TOOL_SLOT
    from segstudio.gui.tools import region as tools

    Image.fromarray(make_image()[0]).save(tmp_path / "a.png")
    win = show_window(qtbot, None, active=False)
    assert win.open_folder(tmp_path)
    st, cv = win.state, win.canvas
    assert cv.jobs.runner is st.runner
    started, failed, canvas_status = [], [], []
    st.jobStarted.connect(lambda slot, name: started.append((slot, name)))
    st.jobFailed.connect(lambda name, msg: failed.append((name, msg)))
    cv.status.connect(canvas_status.append)

    def broken(*a, **k):
        raise MemoryError("GrabCut ran out of memory")

    monkeypatch.setattr(tools, "grabcut_region", broken)
    with qtbot.waitSignal(st.jobFailed, timeout=30_000):
        assert cv.grabcut((20, 20, 80, 70))
    assert (TOOL_SLOT + GrabCutTool.JOB, GrabCutTool.JOB) in started
    msg = f"{GrabCutTool.JOB} failed: GrabCut ran out of memory"
    assert failed == [(GrabCutTool.JOB, msg)]
    assert win.status_text.text() == msg
    assert msg not in canvas_status  # reported once, by the state (the canvas does not say it again)
    qtbot.waitUntil(lambda: not cv.busy and not any(s.startswith(TOOL_SLOT) for s in st.jobs), timeout=30_000)
    assert len(cv.doc.history) == 0

    def bad_result(r):
        raise ValueError(f"class id {r} is not valid")

    with qtbot.waitSignal(st.jobFailed, timeout=30_000) as sig:
        cv.jobs.start("apply", lambda job: 9, bad_result)
    assert sig.args == ["apply", "apply failed: class id 9 is not valid"]
    assert win.status_text.text() == "apply failed: class id 9 is not valid"
    qtbot.waitUntil(lambda: not cv.busy and not any(s.startswith(TOOL_SLOT) for s in st.jobs), timeout=30_000)
