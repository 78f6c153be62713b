"""``MainWindow``: builds the window, its docks and actions, and wires them to the :class:`ProjectState`.

The window holds no project state of its own: folder, images, documents, classes, current class, model,
predictor and jobs live in :class:`~segstudio.gui.state.ProjectState` (``win.state``), which is their only
writer; the widgets here observe its signals and call its methods. All model work (predict, fine-tune,
loading a new version) runs in its worker jobs; the GUI thread only swaps label maps in and repaints.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QThread, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QMessageBox

from segstudio.core import Document
from segstudio.engine import LoadedModel, available_devices, train_on_folder
from segstudio.gui.canvas import TOOL_BRUSH, TOOL_ERASER, Canvas
from segstudio.gui.canvas_controls import CanvasControls
from segstudio.gui.cluster_dialog import import_trained_checkpoint, open_cluster_dialog
from segstudio.gui.docks import ClassPanel, FileList, ModelPanel
from segstudio.gui.loop import LabellingLoop, build_loop_view
from segstudio.gui.new_model_dialog import NewModelController
from segstudio.gui.project_view import ProjectController, build_project_view
from segstudio.gui.prompts import Prompts
from segstudio.gui.qtutil import add_dock, collect_garbage_on_gui_thread, window_action, window_menu
from segstudio.gui.review import ReviewQueue
from segstudio.gui.state import MAIN, ProjectState
from segstudio.gui.toolbar import build_status_bar, build_tool_bar
from segstudio.gui.window_actions import CLASS_KEYS, build_actions
from segstudio.gui.window_layout import ScreenGuard, add_view_menu, restore_layout, save_layout

log = logging.getLogger(__name__)
__all__ = ["MainWindow", "ask_recover", "QMessageBox", "CLASS_KEYS"]



def ask_recover(parent, image_name: str, edits: int, torn: bool) -> bool:
    """Ask whether to restore the unsaved edits found in an image's journal (a crash left them).

    A module-level function so tests (and headless runs) can replace it. Returns True to restore.
    """
    return Prompts.ask_recover(Prompts(parent), image_name, edits, torn)


class _WindowPrompts(Prompts):
    def ask_recover(self, image_name: str, edits: int, torn: bool) -> bool:
        return ask_recover(self.parent, image_name, edits, torn)  # looked up at call time (tests replace it)


class MainWindow(QMainWindow):
    """The SegStudio main window.

    Args:
        model: the model to start with (e.g. the embedded default).
    Attributes:
        state: the :class:`~segstudio.gui.state.ProjectState` (read-only views of it: ``folder``, ``paths``,
            ``index``, ``docs``, ``classes``, ``model``, ``predictor``, ``job``; ``finetune_config`` is settable).
    """

    predictorNotice = Signal(str)  # the Predictor's fallback notices (e.g. out of memory), from any thread

    def __init__(self, model: LoadedModel | None = None) -> None:
        super().__init__()
        collect_garbage_on_gui_thread()  # never let a worker thread destroy Qt objects through the cyclic GC
        self.setWindowTitle("SegStudio")
        self.state = st = ProjectState(self, _WindowPrompts(self))
        st.train_fn = lambda *a, **k: train_on_folder(*a, **k)  # resolved here at call time (tests spy on it)
        st.on_notice = self.predictorNotice.emit
        st.is_editing = lambda: bool(QApplication.mouseButtons() & Qt.MouseButton.LeftButton) and self.canvas.underMouse()
        self.predictorNotice.connect(self.message)  # queued onto the GUI thread when emitted by a worker

        self.canvas = Canvas(self, state=st)
        self.setCentralWidget(self.canvas)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.controls = CanvasControls(self.canvas)  # zoom about the cursor, 1:1, peek (hold V), Ctrl+drag brush
        self.files, self.class_panel, self.model_panel = FileList(), ClassPanel(), ModelPanel(available_devices())
        for title, widget, area in (
            ("Images", self.files, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Classes", self.class_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Model", self.model_panel, Qt.DockWidgetArea.RightDockWidgetArea),
        ):
            add_dock(self, title, widget, area)
        build_status_bar(self)  # message, x/y/class/zoom/status read-out, stale banner, progress, Cancel
        build_actions(self)  # menus and window-wide shortcuts (window_actions.py)
        self._connect()
        self.loop = LabellingLoop(st, self.canvas, self)  # training view, uncertainty, metrics, refine preview, Help ▸ Device
        build_loop_view(self, self.loop)
        self.project_ctl = ProjectController(st, self.canvas, self)  # segstudio.json, class editor, versions + A/B, effort
        build_project_view(self, self.project_ctl)
        st.book = self.project_ctl
        if model is not None:
            st.set_model(model)
        self.new_model_ctl = NewModelController(st, window_menu(self, "Model"), self)  # Model ▸ New model…; bundled models in the picker
        self.review = ReviewQueue(st, self.canvas, self)  # Model ▸ Predict folder and review: Enter / Space / Backspace
        self.review.act_review = self._action("Predict folder and review", self.review.start, ["Ctrl+Shift+R"], window_menu(self, "Model"))
        build_tool_bar(self)
        add_view_menu(self)
        restore_layout(self)  # the last session's geometry and docks; a first start: 90 % of the screen
        self.screen_guard = ScreenGuard(self)  # after any layout change the window stays inside the screen

    # -- building ------------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcuts=(), menu=None) -> QAction:
        return window_action(self, text, slot, shortcuts, menu)

    def _connect(self) -> None:
        st, cv, cp = self.state, self.canvas, self.class_panel
        for view in (self.files, cp, self.model_panel):
            view.bind(st)  # each dock observes the state and calls its methods
        st.message.connect(self.message)
        st.classNotice.connect(self._on_class_notice)
        st.folderOpened.connect(self._on_folder_opened)
        st.modelChanged.connect(lambda _m, _l: self._update_title())
        st.documentChanged.connect(self._on_document)
        st.labelsSaved.connect(lambda _p: self._update_title())
        st.staleChanged.connect(lambda _p, _w: self._update_title())
        st.jobStarted.connect(lambda slot, _n: slot == MAIN and self._set_busy(True))
        st.jobFinished.connect(lambda slot, _n: slot == MAIN and self._set_busy(False))
        st.jobProgress.connect(self._on_progress)
        cp.classPicked.connect(self.set_class)
        cp.opacityChanged.connect(cv.set_opacity)
        cp.overlayToggled.connect(cv.set_overlay_visible)
        cp.classVisibilityChanged.connect(cv.set_class_visible)
        cv.edited.connect(self._on_edited)
        cv.navigate.connect(self.step)
        cv.brushSizeChanged.connect(lambda r: self.message(f"brush radius {r} px"))
        cv.status.connect(self.message)
        cv.hint.connect(self.hint)
        self.controls.hovered.connect(self.cursor_status.on_hover)
        self.controls.zoomChanged.connect(self.cursor_status.refresh)
        for sig in (st.documentChanged, st.labelsChanged, st.labelsSaved, cv.edited):
            sig.connect(self.cursor_status.refresh)
        self.model_panel.save.clicked.connect(self.save_current)

    # -- read-only views of the state (for controllers, scripts and tests) ------------------------
    folder = property(lambda self: self.state.folder)
    paths = property(lambda self: self.state.paths)
    index = property(lambda self: self.state.index)
    docs = property(lambda self: self.state.docs)
    classes = property(lambda self: self.state.classes)
    model = property(lambda self: self.state.model)
    predictor = property(lambda self: self.state.predictor, lambda self, p: self.state.set_predictor(p))
    job = property(lambda self: self.state.job)
    _models = property(lambda self: [e.entry for e in self.state.models])
    finetune_config = property(
        lambda self: self.state.finetune_config, lambda self, cfg: setattr(self.state, "finetune_config", cfg)
    )

    def current_doc(self) -> Document | None:
        return self.state.current_doc()

    HINT_AFTER_S = 3.0
    """A tool's hint (:attr:`Canvas.hint`) replaces a message only once it has been shown this long."""

    def message(self, text: str) -> None:
        """Show ``text`` on the status bar (a message: what happened, what to do next)."""
        self.status_text.setText(text)
        self._message_at = time.monotonic()

    def hint(self, text: str) -> None:
        """Show a passing hint (tool ready, tool picked) unless it would hide a message shown less than
        :attr:`HINT_AFTER_S` ago (e.g. the review queue's first line)."""
        if time.monotonic() - getattr(self, "_message_at", float("-inf")) >= self.HINT_AFTER_S:
            self.status_text.setText(text)

    # -- state → widgets -------------------------------------------------------------------------
    def _on_folder_opened(self, folder: Path) -> None:
        self.setWindowTitle(f"SegStudio — {self.state.source_folder}" + (" [read-only]" if self.state.read_only else ""))

    def _on_document(self, doc: Document | None) -> None:
        if doc is not None and doc is self.canvas.doc:
            self.canvas.refresh_labels()
        else:
            self.canvas.set_document(doc)
        self._update_title()

    def _update_title(self) -> None:
        doc = self.current_doc()
        if doc is None:
            self.stale_label.hide()
            return
        state = {"saved": "saved labels", "predicted": "prediction", "none": "no labels"}[doc.source]
        why = self.state.stale.get(doc.path)
        self.setWindowTitle(
            f"SegStudio — {doc.path.name} [{state}{', edited' if doc.dirty else ''}{', stale' if why else ''}]"
            + (" — read-only folder, not saved" if self.state.read_only else "")
        )
        self.stale_label.setText(f"⚠ overlay stale: {why}" if why else "")
        self.stale_label.setToolTip(why or "")
        self.stale_label.setVisible(bool(why))

    def _on_class_notice(self, text: str) -> None:
        """The status bar's notice of model classes the project lacks (the canvas shows the same banner)."""
        metrics = self.notice_label.fontMetrics()
        self.notice_label.setText(metrics.elidedText(f"⚠ {text}", Qt.TextElideMode.ElideRight, 400) if text else "")
        self.notice_label.setToolTip(text)
        self.notice_label.setVisible(bool(text))

    def _set_busy(self, busy: bool) -> None:
        """Show progress + Cancel and disable the model buttons while a model job runs."""
        self.progress.setVisible(busy)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(busy)
        for b in (self.model_panel.predict_image, self.model_panel.predict_folder, self.model_panel.finetune):
            b.setEnabled(not busy)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.message(text)

    def _on_edited(self) -> None:  # the journal heard the document first (ProjectState._on_doc_event)
        self.state.flush_pending()
        self._update_title()

    # -- user actions ------------------------------------------------------------------------------
    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open image folder", str(self.folder or Path.home()))
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> bool:
        """Open ``folder`` (its own classes and model) and show where the user left off."""
        if not self.state.open_folder(folder):
            return False
        self.files.setCurrentRow(self.state.start_row)
        self.canvas.setFocus()
        return True

    def step(self, delta: int) -> None:
        if self.paths:
            self.files.setCurrentRow(min(max(self.index + delta, 0), len(self.paths) - 1))

    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        if tool in self.tool_actions:
            self.tool_actions[tool].setChecked(True)
        self.hint(f"tool: {tool}")

    def image_status(self, doc: Document) -> str:
        """The shown image's status for the status bar: the project's (unlabelled / predicted / corrected /
        reviewed), else where its labels came from; ``, edited`` while unsaved."""
        project = getattr(self.project_ctl, "project", None)
        rec = project.images.get(doc.path.name) if project is not None else None
        status = rec.status if rec is not None else {"saved": "saved", "predicted": "predicted", "none": "unlabelled"}[doc.source]
        return status + (", edited" if doc.dirty else "")

    def set_class(self, c: int) -> None:
        """The user picked class ``c`` (legend click, number key): paint with it (the eraser turns into the brush)."""
        self.state.set_current_class(c)
        if self.canvas.tool == TOOL_ERASER:
            self.canvas.tool = TOOL_BRUSH

    def pick_class(self, c: int) -> None:
        if self.classes is not None and c < self.classes.num_classes:
            self.set_class(c)

    def save_current(self) -> bool:
        """Ctrl+S: save the current image's labels as shown (the whole image is accepted as labels)."""
        return self.state.save_current(accept=True)

    def save_doc(self, doc: Document, accept: bool = True) -> bool:
        return self.state.save_doc(doc, accept=accept, explicit=accept)

    # The state's methods, reached through the window by scripts, controllers and tests.
    set_model = property(lambda self: self.state.set_model)
    _on_model_picked = property(lambda self: self.state.pick_model)
    autosave = property(lambda self: self.state.autosave)
    predict_current = property(lambda self: self.state.predict_current)
    predict_folder = property(lambda self: self.state.predict_folder)
    finetune = property(lambda self: self.state.finetune)
    saved_sample_count = property(lambda self: self.state.saved_sample_count)
    train_version = property(lambda self: self.state.train_version)
    cancel_job = property(lambda self: lambda: self.state.runner.cancel(MAIN))

    def show_shortcuts(self) -> None:
        """Help ▸ Keyboard shortcuts (the table is read from this window's actions)."""
        from segstudio.gui.help_dialog import ShortcutsDialog

        ShortcutsDialog(self).exec()

    def run_on_cluster(self):
        """Model ▸ Run fine-tune on a cluster… (see :func:`~segstudio.gui.cluster_dialog.open_cluster_dialog`)."""
        return open_cluster_dialog(self, self.state)

    def import_trained_checkpoint(self, path: str | Path | None = None) -> bool:
        """Model ▸ Import trained checkpoint… (see :func:`~segstudio.gui.cluster_dialog.import_trained_checkpoint`)."""
        return import_trained_checkpoint(self, self.state, path)

    def showEvent(self, event) -> None:
        """On the first show, ask for keyboard focus: activate the window and give the canvas the focus.

        Tool and class keys are window shortcuts, which Qt fires only in the *active* window. A window manager
        usually activates a new window, but without one (a bare X server, Xvfb, some kiosk sessions) nothing
        does, and every key pressed before a click into the window was lost. ``activateWindow`` asks the
        platform for it (on X without a window manager Qt sets the X input focus itself once the window is
        mapped), and the canvas takes the focus so the first key reaches it.
        """
        super().showEvent(event)
        if not event.spontaneous() and not getattr(self, "_shown_once", False):
            self._shown_once = True
            self.raise_()
            self.activateWindow()
            self.canvas.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def closeEvent(self, event) -> None:
        if not self.state.can_close():  # a fine-tune running, or edits that could not be saved
            event.ignore()
            return
        save_layout(self)
        for th in self.findChildren(QThread):  # predict, fine-tune and thumbnail threads
            th.quit()
            th.wait(30000)
        super().closeEvent(event)
