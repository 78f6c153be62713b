"""The labelling tools' foundation: :class:`ToolId` (the tools' ids), :class:`ToolHost` (the narrow view of the
canvas a tool may use), :class:`ToolJobs` (the tools' background work) and the :class:`Tool` base class.

A tool turns left-button press / move / release, in image coordinates ``(y, x)`` (float pixels, pixel
centres at integers), into ``segstudio.core`` edits of the shown :class:`~segstudio.core.Document`, one undo
step per gesture. It sees its host only through :class:`ToolHost`; it never imports the canvas or the window.
Each tool class carries its id, label, shortcut, help text and icon: :data:`segstudio.gui.tools.TOOL_TABLE`
is read by the tool bar, the Tools menu and the help dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, QPointF, Qt, Signal, SignalInstance, Slot
from PySide6.QtGui import QColor, QPainter, QTransform
from PySide6.QtWidgets import QGraphicsScene, QWidget

from segstudio.core import IGNORE_INDEX, Document, Patch
from segstudio.gui.jobs import TOOL_SLOT, JobRunner
from segstudio.gui.qtutil import collect_garbage_on_gui_thread
from segstudio.gui.workers import Job, start_job

log = logging.getLogger(__name__)

ICON_INK = QColor(40, 40, 40)
"""Ink of the tool icons."""
ICON_ACCENT = QColor(30, 136, 229)
"""Accent colour of the tool icons."""


class ToolId(StrEnum):
    """The labelling tools' ids (strings, so ``ToolId.BRUSH == "brush"``), in tool-bar order."""

    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"
    POLYGON = "polygon"
    LASSO = "lasso"
    SUPERPIXEL = "superpixel"
    GRABCUT = "grabcut"
    CLICK = "click"


class ToolHost(Protocol):
    """What a tool may use of the view it works in (the :class:`~segstudio.gui.canvas.Canvas`), and nothing else.

    Attributes:
        doc: the shown document, or ``None``.
        current_class: the class id painted with.
        brush_radius: round-brush radius in image pixels.
        polygon_rule: fill rule of polygon and lasso (``"nonzero"`` / ``"evenodd"``).
        jobs: the tools' background work (:class:`ToolJobs`).
        active_tool: the current tool.
        status, hint: signals taking a status-bar message / a passing hint.
        superpixelsReady, grabcutDone: the signals the superpixel and GrabCut tools announce on.
        shape_item, rect_item, sp_item: scene items of the polygon / lasso in progress, the GrabCut rectangle and
            the superpixel boundaries.
    """

    doc: Document | None
    current_class: int
    brush_radius: int
    polygon_rule: str
    jobs: ToolJobs
    active_tool: Tool
    status: SignalInstance
    hint: SignalInstance
    superpixelsReady: SignalInstance
    grabcutDone: SignalInstance
    shape_item: Any
    rect_item: Any
    sp_item: Any

    def refresh_patch(self, patch: Patch | None) -> None:
        """Redraw the rectangle of ``patch`` (live feedback of a stroke in progress)."""

    def next_image_path(self) -> Path | None:
        """The image that will be shown next (the click tool's prefetch)."""

    def loaded_document(self, path: Path) -> Document | None:
        """The project's already open document of ``path``, or ``None``."""

    def scene(self) -> QGraphicsScene:
        """The scene (a tool adds its own preview item)."""

    def transform(self) -> QTransform:
        """The view's zoom transform."""

    def mapFromScene(self, p: QPointF):  # noqa: N802 (Qt name)
        """Scene → view coordinates."""

    def mapToScene(self, p):  # noqa: N802 (Qt name)
        """View → scene coordinates."""

    def viewport(self) -> QWidget:
        """The view's viewport (a tool may install an event filter on it)."""

    def installEventFilter(self, obj: QObject) -> None:  # noqa: N802 (Qt name)
        """Filter the view's own events (keys before the window's shortcuts)."""


class ToolJobs(QObject):
    """Runs the tools' background work off the GUI thread, at most one job per name.

    :meth:`start` runs ``work(job)`` in a worker; its return value is handed to ``on_result`` on the GUI
    thread (``job.result`` is connected to a bound slot of this GUI-thread object, so the call is queued),
    then ``on_done`` runs whether the work succeeded or not.

    With a job runner (the window's canvas: the project state's :class:`~segstudio.gui.jobs.JobRunner`) every
    job goes through it, in slot ``"tool:<name>"`` (:data:`~segstudio.gui.jobs.TOOL_SLOT`): the runner tracks
    it, and a failure — in the worker, or in applying its result on the GUI thread
    (:meth:`~segstudio.gui.jobs.JobRunner.report_failure`) — reaches the status bar, the log and ``jobFailed``
    like any job's. Without one (a canvas on its own, e.g.
    in tests or benchmarks) the job runs on :func:`segstudio.gui.workers.start_job` with its thread owned by
    the application, and :attr:`failed` is the report. Starting a job turns Python's cyclic GC over to the
    GUI thread (:func:`~segstudio.gui.qtutil.collect_garbage_on_gui_thread`), as the main window does, so
    the canvas is safe on its own too.

    Args:
        parent: the canvas.
        runner: the :class:`~segstudio.gui.jobs.JobRunner` that starts the jobs, or ``None``.

    Signals:
        failed(str): a job, or the GUI-thread handling of its result, raised; the message names the job
            and the error (the traceback is logged). Emitted with or without a runner.
    """

    failed = Signal(str)

    def __init__(self, parent: QObject, runner: JobRunner | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._jobs: dict[str, tuple[Job, Callable | None, Callable | None]] = {}

    def running(self, name: str) -> bool:
        """True while the job ``name`` has not ended."""
        return name in self._jobs

    @property
    def busy(self) -> bool:
        """True while any job runs."""
        return bool(self._jobs)

    def start(self, name: str, work: Callable[[Job], object], on_result: Callable | None = None,
              on_done: Callable[[], None] | None = None) -> Job:
        """Start ``work`` in a worker as job ``name``.

        Raises:
            RuntimeError: a job of that name is still running (check :meth:`running` first).
        """
        if name in self._jobs:
            raise RuntimeError(f"job {name!r} is still running")
        collect_garbage_on_gui_thread()  # a worker must never run the cyclic GC on Qt wrappers (idempotent)

        def run(job: Job):
            try:
                job.emit_result(("result", name), work(job))
            finally:
                job.emit_result(("done", name), name)

        job = Job(name, run)
        job.result.connect(self._on_result)
        job.failed.connect(self.failed)
        self._jobs[name] = (job, on_result, on_done)
        if self.runner is not None:
            self.runner.start(job, TOOL_SLOT + name)  # tracked, and its failure reported, by the one runner
        else:
            # The thread belongs to the application, not to the canvas: closing the canvas while SLIC or
            # GrabCut runs must not destroy a running QThread (Qt aborts the process); the result of a job
            # whose canvas is gone is simply not delivered (the connection dies with this object).
            start_job(job, QCoreApplication.instance())
        return job

    @Slot(object, object)
    def _on_result(self, kind: tuple[str, str], payload) -> None:
        what, name = kind
        entry = self._jobs.get(name)
        if entry is None:
            return
        _, on_result, on_done = entry
        if what == "done":
            del self._jobs[name]
        callback = on_result if what == "result" else on_done
        if callback is None:
            return
        try:
            callback(payload) if what == "result" else callback()
        except Exception as exc:  # applying a result must never fail silently
            log.exception("%s: handling its %s failed", name, what)
            msg = f"{name} failed: {exc}"
            if self.runner is not None:
                self.runner.report_failure(name, msg)
            self.failed.emit(msg)


class Tool:
    """A labelling tool: left-button press / move / release in image coordinates ``(y, x)``.

    Subclasses override the event methods they need. A gesture's edit becomes exactly one undo step in
    the document's history; the document announces it to its observers (the canvas redraws from that).

    Class attributes (one row of the tool table, :data:`segstudio.gui.tools.TOOL_TABLE`):
        name: the tool's :class:`ToolId`.
        label: its name in the tool bar, the Tools menu and the shortcuts help.
        shortcut: its key.
        mouse_help: its mouse gestures for the shortcuts help ('' when the plain "left button uses the tool").
        round_cursor: the canvas shows the brush-sized round cursor while this tool is on.

    Args:
        host: the view the tool works in, seen through :class:`ToolHost`.
    """

    name: ToolId | str = ""
    label = ""
    shortcut = ""
    mouse_help = ""
    round_cursor = False

    def __init__(self, host: ToolHost) -> None:
        self.host = host

    @staticmethod
    def draw_icon(p: QPainter) -> None:
        """Paint the tool's 24×24 icon with ``p`` (pen and scale already set); default: nothing (the tool bar
        then draws the label's initial)."""

    # -- what to paint ----------------------------------------------------------------------
    def value(self) -> int:
        """The label value this tool writes: the host's current class id."""
        return int(self.host.current_class)

    def check_value(self, doc: Document, value: int) -> bool:
        """True if ``value`` is ``IGNORE_INDEX`` or a class id of ``doc``; else says why on the status bar
        (e.g. a class list edited under a stale current class) and nothing is painted."""
        n = doc.classes.num_classes
        if value == IGNORE_INDEX or 0 <= value < n:
            return True
        self.host.status.emit(f"class id {value} is not one of this image's classes 0..{n - 1}; pick a class first")
        return False

    # -- events -----------------------------------------------------------------------------
    def press(self, y: float, x: float) -> None:
        """Left button pressed at ``(y, x)``."""

    def move(self, y: float, x: float, left_down: bool) -> bool:
        """Mouse moved to ``(y, x)``; ``left_down``: the left button is held. True if the move was used
        (the view then does not handle it)."""
        return False

    def release(self, y: float, x: float) -> bool:
        """Left button released at ``(y, x)``; True if the release was used."""
        return False

    def double_click(self, y: float, x: float) -> bool:
        """Left double-click; False lets the canvas treat it as a press."""
        return False

    def key(self, key: int) -> bool:
        """A key the canvas did not use (``Qt.Key``); True if the tool used it."""
        return False

    # -- life cycle -------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """True while a gesture has painted pixels not yet recorded as an undo step (undo waits)."""
        return False

    def activate(self, document_changed: bool = False) -> None:
        """The tool became the current one (or, with ``document_changed``, the shown document changed while it is)."""

    def document_shown(self) -> None:
        """The shown document changed while another tool is the current one (background work may start)."""

    def finish(self) -> None:
        """End any gesture in progress: painted pixels become one undo step, an unclosed shape is dropped.
        Called before a tool switch and after a document switch."""
        self.cancel()

    def cancel(self) -> None:
        """Drop an unfinished shape or rectangle (Esc); painted strokes are not affected."""

    def deactivate(self) -> None:
        """The tool stops being the current one."""
        self.finish()


