"""The window's tool bar (tools with icons, brush size, opacity, overlay / outline toggles, inference scale) and
its status-bar read-out (x, y, class under the cursor, zoom %, the image's status).

The tools shown are :data:`TOOL_ACTIONS`, one ``(tool id, name, shortcut)`` row per tool, read from the tool
table (:data:`segstudio.gui.tools.TOOL_TABLE`): adding a tool to the tool bar, the Tools menu and the
shortcuts help is one class in that table (its icon is its ``draw_icon``; a tool without a drawing gets its
initial). Icons are painted with ``QPainter``, nothing is downloaded.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QPushButton, QSizePolicy, QSlider, QSpinBox, QToolBar

from segstudio.core import IGNORE_INDEX
from segstudio.gui.tools import TOOL_BRUSH, TOOL_TABLE, Tool, ToolId, tool_class
from segstudio.gui.tools.base import ICON_ACCENT as _ACCENT
from segstudio.gui.tools.base import ICON_INK as _INK

TOOL_ACTIONS: list[tuple[ToolId, str, str]] = [(cls.name, cls.label, cls.shortcut) for cls in TOOL_TABLE]
"""Tools of the tool bar and the Tools menu, in order: ``(tool id, name, shortcut)``, read from the tool table
(:data:`segstudio.gui.tools.TOOL_TABLE`)."""

SCALES = ("auto", "1", "0.5", "0.25", "0.125")
"""Choices of the tool bar's inference-scale box (see :meth:`segstudio.engine.Predictor.scale_for`)."""



def _tool_class_or_none(tool: str) -> type[Tool] | None:
    try:
        return tool_class(tool)
    except KeyError:
        return None


def tool_icon(tool: str, size: int = 24) -> QIcon:
    """A simple ``size``×``size`` icon for ``tool`` drawn with ``QPainter``: a tool's own drawing
    (:meth:`Tool.draw_icon <segstudio.gui.tools.base.Tool.draw_icon>`), the window's toggles ("show",
    "outline", "clear", "fill_unlabelled"), else the initial."""
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 24.0, size / 24.0)
    p.setPen(QPen(_INK, 1.6))
    cls = _tool_class_or_none(tool)
    if cls is not None and cls.draw_icon is not Tool.draw_icon:
        cls.draw_icon(p)  # each tool class draws its own icon
    elif tool == "show":  # an eye
        p.setBrush(Qt.BrushStyle.NoBrush)
        path = QPainterPath(QPointF(2, 12))
        path.quadTo(QPointF(12, 1), QPointF(22, 12))
        path.quadTo(QPointF(12, 23), QPointF(2, 12))
        p.drawPath(path)
        p.setBrush(QBrush(_ACCENT))
        p.drawEllipse(QPointF(12, 12), 3.5, 3.5)
    elif tool == "outline":
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(_ACCENT, 2.2))
        p.drawRoundedRect(QRectF(4, 4, 16, 16), 4, 4)
    elif tool == "clear":
        p.setPen(QPen(QColor(229, 57, 53), 2.4))
        p.drawLine(QPointF(5, 5), QPointF(19, 19))
        p.drawLine(QPointF(19, 5), QPointF(5, 19))
    elif tool == "fill_unlabelled":
        p.setBrush(QBrush(_ACCENT))
        p.drawRect(QRectF(3, 3, 18, 18))
        p.setBrush(QBrush(QColor(240, 240, 240)))
        p.drawEllipse(QPointF(12, 12), 4.5, 4.5)
    else:
        p.setPen(QPen(_INK))
        f = p.font()
        f.setBold(True)
        f.setPixelSize(15)
        p.setFont(f)
        p.drawText(QRectF(0, 0, 24, 24), Qt.AlignmentFlag.AlignCenter, tool[:1].upper())
    p.end()
    return QIcon(pm)


def build_tool_bar(window) -> QToolBar:
    """The main tool bar of ``window`` (a :class:`~segstudio.gui.main_window.MainWindow` whose tool actions,
    ``act_outline``, ``act_fill_unlabelled``, ``act_clear``, canvas and class panel exist).

    Sets ``window.tool_bar``, ``window.tool_group`` (exclusive), ``window.brush_spin``, ``window.opacity_slider``,
    ``window.act_show_overlay`` and ``window.scale_box``; each widget follows its counterpart both ways.
    """
    tb = QToolBar("Tools", window)
    tb.setObjectName("Tools")  # saved layouts find it by name
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
    window.tool_bar = tb
    for act in window.tool_actions.values():
        tb.addAction(act)
    tb.addSeparator()
    cv, cp = window.canvas, window.class_panel

    tb.addWidget(QLabel(" Brush "))
    spin = window.brush_spin = QSpinBox()
    spin.setRange(1, 256)
    spin.setSuffix(" px")
    spin.setValue(cv.brush_radius)
    spin.setToolTip("Brush radius in image pixels ([ smaller, ] bigger, ×1.25 a step; Ctrl+drag on the image)")
    spin.valueChanged.connect(lambda v: v != cv.brush_radius and cv.set_brush_radius(v))
    cv.brushSizeChanged.connect(spin.setValue)
    tb.addWidget(spin)

    tb.addWidget(QLabel(" Opacity "))
    sl = window.opacity_slider = QSlider(Qt.Orientation.Horizontal)
    sl.setRange(0, 100)
    sl.setFixedWidth(110)
    sl.setValue(cp.opacity.value())
    sl.setToolTip("Overlay opacity")
    sl.valueChanged.connect(cp.opacity.setValue)
    cp.opacity.valueChanged.connect(sl.setValue)
    tb.addWidget(sl)

    show = window.act_show_overlay = QAction(tool_icon("show"), "Show overlay", window)
    show.setCheckable(True)
    show.setChecked(cp.show_overlay.isChecked())
    show.setToolTip("Show the label overlay (O); hold V to peek under it")
    show.toggled.connect(cp.show_overlay.setChecked)
    cp.show_overlay.toggled.connect(show.setChecked)
    tb.addAction(show)
    window.act_outline.setIcon(tool_icon("outline"))
    tb.addAction(window.act_outline)
    tb.addSeparator()
    for act, name in ((window.act_fill_unlabelled, "fill_unlabelled"), (window.act_clear, "clear")):
        act.setIcon(tool_icon(name))
        tb.addAction(act)
    tb.addSeparator()

    tb.addWidget(QLabel(" Scale "))
    box = window.scale_box = QComboBox()
    box.addItems(SCALES)
    box.setCurrentText(str(window.state.inference_scale))
    box.setToolTip(
        "Inference scale: photos are resized by this factor before predicting (auto: from the model's training "
        "image size, for photos much larger than those)"
    )
    box.currentTextChanged.connect(window.state.set_inference_scale)
    tb.addWidget(box)
    for w in (spin, sl, box):  # the canvas keeps the keyboard (tool keys) unless one of these is clicked
        w.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    spin.editingFinished.connect(cv.setFocus)
    box.activated.connect(lambda _i: cv.setFocus())
    for act in tb.actions():
        _shortcut_in_tooltip(act)
    cv.setFocus()
    return tb


class ElidedLabel(QLabel):
    """A one-line label that shows as much of its text as fits, ending in "…", with the whole text as its tooltip.

    Its minimum width is small, so a long status message never widens the window or runs into the permanent
    widgets beside it (the x/y read-out)."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self._full = ""
        self.setMinimumWidth(40)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        """Show ``text`` (elided to the width; the tooltip holds all of it)."""
        self._full = str(text)
        self.setToolTip(self._full if len(self._full) > 60 else "")
        self._elide()

    def text(self) -> str:
        """The whole text (not the elided one shown)."""
        return self._full

    def shown_text(self) -> str:
        """The text as shown (elided)."""
        return super().text()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        line = " ".join(self._full.split())
        super().setText(self.fontMetrics().elidedText(line, Qt.TextElideMode.ElideRight, max(self.width(), 40)))

    def minimumSizeHint(self):  # noqa: N802 (Qt name)
        return QSize(40, super().minimumSizeHint().height())

    def sizeHint(self):  # noqa: N802 (Qt name)
        return QSize(200, super().sizeHint().height())


def build_status_bar(window) -> None:
    """``window``'s status bar: the message (``window.status_text``), then the permanent :class:`CursorStatus`
    (``window.cursor_status``), the stale-overlay banner (``window.stale_label``), the job's progress bar
    (``window.progress``) and its Cancel button (``window.cancel_button``)."""
    window.status_text = ElidedLabel()
    window.stale_label = QLabel()
    window.stale_label.setStyleSheet("QLabel { background: #fff3cd; color: #5c4400; padding: 1px 6px; }")
    window.stale_label.hide()
    window.notice_label = QLabel()  # what the model predicts that the project has no class for (ProjectState.classNotice)
    window.notice_label.setStyleSheet("QLabel { background: #fff3cd; color: #5c4400; padding: 1px 6px; }")
    window.notice_label.setMaximumWidth(420)
    window.notice_label.hide()
    window.progress = QProgressBar()
    window.progress.setMaximumWidth(260)
    window.progress.hide()
    window.cancel_button = QPushButton("Cancel")
    window.cancel_button.hide()
    window.cancel_button.clicked.connect(window.cancel_job)
    window.cursor_status = CursorStatus(window.state, window.controls, window.image_status)
    sb = window.statusBar()
    sb.addWidget(window.status_text, 1)
    for w in (window.cursor_status, window.stale_label, window.notice_label, window.progress, window.cancel_button):
        sb.addPermanentWidget(w)


def _shortcut_in_tooltip(act: QAction) -> None:
    keys = [s.toString() for s in act.shortcuts()]
    tip = act.toolTip() or act.text()
    if keys and keys[0] not in tip:
        act.setToolTip(f"{tip} ({keys[0]})")


def make_tool_actions(window, menu) -> dict[str, QAction]:
    """One checkable action per :data:`TOOL_ACTIONS` row (exclusive group, in ``menu``), keyed by tool id."""
    window.tool_group = QActionGroup(window)
    acts = {}
    for tool, name, key in TOOL_ACTIONS:
        act = window._action(name, lambda checked=False, t=tool: window.set_tool(t), [key], menu)
        act.setIcon(tool_icon(tool))
        act.setCheckable(True)
        act.setToolTip(f"{name} ({key})")
        window.tool_group.addAction(act)
        acts[tool] = act
    acts[TOOL_BRUSH].setChecked(True)
    return acts


class CursorStatus(QLabel):
    """Status-bar read-out: ``x, y`` (image pixels), the class under the cursor, zoom %, the image's status.

    Args:
        state: the project state (the shown document).
        controls: the canvas's :class:`~segstudio.gui.canvas_controls.CanvasControls` (the zoom).
        image_status: ``image_status(doc) -> str``, the image's status for the read-out.
    """

    def __init__(self, state, controls, image_status) -> None:
        super().__init__()
        self.state, self.controls, self.image_status = state, controls, image_status
        self.xy: tuple[int, int] | None = None
        self.setMinimumWidth(360)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def on_hover(self, x: int, y: int) -> None:
        self.xy = (x, y)
        self.refresh()

    def refresh(self, *_args) -> None:
        """Recompute the text from the cursor position, the shown document and the canvas's zoom."""
        doc = self.state.current_doc()
        zoom = f"{self.controls.zoom * 100:.0f} %"
        if doc is None:
            self.setText(zoom)
            return
        parts = []
        h, w = doc.shape
        if self.xy is not None and 0 <= self.xy[0] < w and 0 <= self.xy[1] < h:
            x, y = self.xy
            v = int(doc.labels[y, x])
            name = "unlabelled" if v == IGNORE_INDEX or v >= doc.classes.num_classes else doc.classes.names[v]
            parts += [f"x {x}, y {y}", name]
        parts += [zoom, self.image_status(doc)]
        self.setText("  ·  ".join(parts))


__all__ = ["TOOL_ACTIONS", "SCALES", "tool_icon", "build_tool_bar", "make_tool_actions", "build_status_bar", "CursorStatus"]
