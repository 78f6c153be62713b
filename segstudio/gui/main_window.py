"""``MainWindow``: builds the docks and actions and wires them to the document, canvas and workers.

All model work (predict, fine-tune, loading a new version) runs in :mod:`segstudio.gui.workers`
jobs; the GUI thread only swaps label maps in and repaints.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QThread, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
)

from segstudio.core import ClassSpec, Document
from segstudio.core.document import SOURCE_PREDICTED, SOURCE_SAVED
from segstudio.core.labels import validate_label_map
from segstudio.engine import (
    LoadedModel,
    Predictor,
    TrainConfig,
    available_devices,
    finetune_config,
    list_versions,
    load_checkpoint,
    next_version_dir,
    train_on_folder,
)
from segstudio.gui.canvas import (
    TOOL_BRUSH,
    TOOL_ERASER,
    TOOL_FILL,
    TOOL_GRABCUT,
    TOOL_LASSO,
    TOOL_POLYGON,
    TOOL_SUPERPIXEL,
    Canvas,
)
from segstudio.gui.docks import THUMB, ClassPanel, FileList, ModelPanel
from segstudio.gui.project_view import ProjectController
from segstudio.gui.loop import LabellingLoop, tile_reporter
from segstudio.gui.new_model_dialog import NewModelController
from segstudio.gui.qtutil import add_dock, collect_garbage_on_gui_thread, rgb_to_qimage
from segstudio.gui.relay import on_gui
from segstudio.gui.workers import Job, start_job
from segstudio.io.journal import Journal, JournalError, replay
from segstudio.io import (
    ImageReadError,
    find_samples,
    label_path_for,
    list_images,
    load_classes,
    read_image,
    read_index_png,
    save_labels,
)

log = logging.getLogger(__name__)


def ask_recover(parent, image_name: str, edits: int, torn: bool) -> bool:
    """Ask whether to restore the unsaved edits found in an image's journal (a crash left them).

    A module-level function so tests (and headless runs) can replace it. Returns True to restore.
    """
    extra = "\nThe edit in progress when SegStudio stopped was incomplete and is left out." if torn else ""
    answer = QMessageBox.question(
        parent,
        "SegStudio — recover unsaved edits",
        f"SegStudio stopped before the labels of {image_name} were saved.\n"
        f"{edits} finished edit(s) were recorded. Restore them?{extra}\n\n"
        "Choose No to open the labels as last saved (the recorded edits are kept aside in labels/.journal).",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes,
    )
    return answer == QMessageBox.StandardButton.Yes


class MainWindow(QMainWindow):
    """The SegStudio main window.

    Args:
        model: the model to start with (e.g. the embedded default).
    Attributes:
        finetune_config: :class:`TrainConfig` of the one-click fine-tune (tests shorten it).
    """

    predictorNotice = Signal(str)  # the Predictor's fallback notices (e.g. out of memory), from any thread

    def __init__(self, model: LoadedModel | None = None) -> None:
        super().__init__()
        collect_garbage_on_gui_thread()  # never let a worker thread destroy Qt objects through the cyclic GC
        self.predictorNotice.connect(self.message)  # queued onto the GUI thread when emitted by a worker
        self.setWindowTitle("SegStudio")
        self.resize(1280, 800)
        self.folder: Path | None = None
        self.paths: list[Path] = []
        self.index = -1
        self.docs: dict[Path, Document] = {}
        self.classes: ClassSpec | None = None
        self.model: LoadedModel | None = None
        self.predictor: Predictor | None = None
        self.finetune_config: TrainConfig = finetune_config()
        self.job: Job | None = None
        self._after_job = None
        self.thread = None
        self.thumb_job: Job | None = None
        self._models: list[LoadedModel | Path] = []
        self._journals: dict[Path, Journal] = {}  # crash-safe edit journal per open image

        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.files = FileList()
        self.class_panel = ClassPanel()
        self.model_panel = ModelPanel(available_devices())
        for title, widget, area in (
            ("Images", self.files, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Classes", self.class_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Model", self.model_panel, Qt.DockWidgetArea.RightDockWidgetArea),
        ):
            add_dock(self, title, widget, area)

        self.status_text = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_job)
        sb = self.statusBar()
        sb.addWidget(self.status_text, 1)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

        self._build_actions()
        self.files.currentRowChanged.connect(self.show_index)
        self.class_panel.classPicked.connect(self.set_class)
        self.class_panel.opacityChanged.connect(self.canvas.set_opacity)
        self.class_panel.overlayToggled.connect(self.canvas.set_overlay_visible)
        self.canvas.edited.connect(self._on_edited)
        self.canvas.navigate.connect(self.step)
        self.canvas.brushSizeChanged.connect(lambda r: self.message(f"brush radius {r} px"))
        self.canvas.status.connect(self.message)
        self.class_panel.classVisibilityChanged.connect(self.canvas.set_class_visible)
        mp = self.model_panel
        mp.predict_image.clicked.connect(self.predict_current)
        mp.predict_folder.clicked.connect(self.predict_folder)
        mp.save.clicked.connect(self.save_current)
        mp.finetune.clicked.connect(self.finetune)
        mp.model_combo.activated.connect(self._on_model_picked)
        mp.device_combo.currentTextChanged.connect(lambda _: self._make_predictor())
        self.loop = LabellingLoop(self)  # training view, uncertainty, metrics, refine preview, Help ▸ Device
        self.project_ctl = ProjectController(self)  # segstudio.json, class editor, versions + A/B, effort
        if model is not None:
            self.set_model(model)
        self.new_model_ctl = NewModelController(self)  # Model ▸ New model…; bundled models in the picker (after the start model)

    # -- actions ---------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcuts=(), menu=None) -> QAction:
        act = QAction(text, self)
        act.setShortcuts([QKeySequence(s) for s in shortcuts])
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.triggered.connect(slot)
        self.addAction(act)
        if menu is not None:
            menu.addAction(act)
        return act

    def _build_actions(self) -> None:
        mb = self.menuBar()
        m_file, m_edit, m_tools, m_model = mb.addMenu("&File"), mb.addMenu("&Edit"), mb.addMenu("&Tools"), mb.addMenu("&Model")
        self.act_open = self._action("Open Folder…", self.ask_open_folder, ["Ctrl+O"], m_file)
        self.act_save = self._action("Save labels", self.save_current, ["Ctrl+S"], m_file)
        self._action("Next image", lambda: self.step(1), ["Right", "PgDown"], m_file)
        self._action("Previous image", lambda: self.step(-1), ["Left", "PgUp"], m_file)
        self._action("Quit", self.close, ["Ctrl+Q"], m_file)
        self.act_undo = self._action("Undo", self.canvas.undo, ["Ctrl+Z"], m_edit)
        self.act_redo = self._action("Redo", self.canvas.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], m_edit)
        self._action("Brush", lambda: self.set_tool(TOOL_BRUSH), ["B"], m_tools)
        self._action("Eraser", lambda: self.set_tool(TOOL_ERASER), ["E"], m_tools)
        self._action("Flood fill", lambda: self.set_tool(TOOL_FILL), ["F"], m_tools)
        self._action("Polygon", lambda: self.set_tool(TOOL_POLYGON), ["P"], m_tools)
        self._action("Lasso", lambda: self.set_tool(TOOL_LASSO), ["L"], m_tools)
        self._action("Superpixel brush", lambda: self.set_tool(TOOL_SUPERPIXEL), ["S"], m_tools)
        self._action("GrabCut rectangle", lambda: self.set_tool(TOOL_GRABCUT), ["G"], m_tools)
        for act in (
            self._action("Close polygon", self.canvas.close_shape, ["Return", "Enter"], m_tools),
            self._action("Cancel polygon / rectangle", self.canvas.cancel_shape, ["Esc"], m_tools),
        ):  # only while the canvas has focus, so Enter/Esc still work in the docks' fields
            act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.canvas.addAction(act)
        self.act_outline = self._action("Outline mode", self.canvas.set_outline, ["Shift+O"], m_tools)
        self.act_outline.setCheckable(True)
        self._action("Hide/show current class", self.class_panel.toggle_current_class, ["H"], m_tools)
        self._action("Smaller brush", lambda: self.canvas.set_brush_radius(self.canvas.brush_radius - 2), ["["], m_tools)
        self._action("Bigger brush", lambda: self.canvas.set_brush_radius(self.canvas.brush_radius + 2), ["]"], m_tools)
        self._action("Toggle overlay", lambda: self.class_panel.show_overlay.toggle(), ["O"], m_tools)
        self._action("Zoom to fit", self.canvas.zoom_fit, ["Ctrl+0"], m_tools)
        for k in range(1, 10):
            self._action(f"Class {k}", lambda checked=False, c=k - 1: self.pick_class(c), [str(k)])
        self._action("Predict image", self.predict_current, ["Ctrl+P"], m_model)
        self._action("Predict folder", self.predict_folder, ["Ctrl+Shift+P"], m_model)
        self._action("Fine-tune on saved labels", self.finetune, ["Ctrl+T"], m_model)
        self._action("Run fine-tune on a cluster…", self.run_on_cluster, (), m_model)
        self._action("Import trained checkpoint…", self.import_trained_checkpoint, (), m_model)
        self._action("Keyboard shortcuts", self.show_shortcuts, ["F1"], mb.addMenu("&Help"))

    def message(self, text: str) -> None:
        self.status_text.setText(text)
        log.info("%s", text)

    # -- model -----------------------------------------------------------------------------
    def set_model(self, model: LoadedModel, label: str | None = None) -> None:
        """Use ``model`` for prediction (added to the model picker)."""
        self.model = model
        combo = self.model_panel.model_combo
        name = label or model.display_name
        idx = combo.findText(name)
        if idx < 0:
            combo.addItem(name)
            self._models.append(model)
            idx = combo.count() - 1
        else:
            self._models[idx] = model
        combo.setCurrentIndex(idx)
        metrics = model.card.get("metrics", {}).get("val", {})
        miou = metrics.get("miou")
        self.model_panel.info.setText(
            f"{model.card['architecture']} · {len(model.card['classes'])} classes"
            + (f" · val mIoU {100 * miou:.1f}" if miou is not None else "")
        )
        if self.classes is None or self.classes.num_classes != model.classes.num_classes and not self._has_saved_classes():
            self._set_classes(model.classes)
        self._make_predictor()
        self.project_ctl.on_model_changed(model, name)

    def _make_predictor(self) -> None:
        if self.model is not None:
            # lazy: BN folding and the device move (~0.2 s) happen on the worker's first prediction, not here
            self.predictor = Predictor(
                self.model, device=self.model_panel.device_combo.currentText(), on_notice=self.predictorNotice.emit, lazy=True
            )

    def _on_model_picked(self, idx: int) -> None:
        entry = self._models[idx]
        if isinstance(entry, Path):  # a version on disk not loaded yet
            try:
                entry = load_checkpoint(entry)
            except ValueError as exc:
                QMessageBox.warning(self, "SegStudio", str(exc))
                return
            self._models[idx] = entry
        self.set_model(entry, self.model_panel.model_combo.itemText(idx))

    def _has_saved_classes(self) -> bool:
        return self.folder is not None and (self.folder / "labels" / "classes.json").is_file()

    def _set_classes(self, classes: ClassSpec) -> None:
        self.classes = classes
        self.class_panel.set_classes(classes)

    # -- folder & navigation ----------------------------------------------------------------
    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open image folder", str(self.folder or Path.home()))
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> None:
        """Show the images of ``folder``; images with saved labels show those, others get predicted."""
        folder = Path(folder)
        try:
            paths = list_images(folder)
        except OSError as exc:  # not a folder, no permission...
            QMessageBox.warning(self, "SegStudio", str(exc))
            return
        if not paths:
            QMessageBox.information(self, "SegStudio", f"No images ({', '.join(['png', 'jpg', 'tif', '…'])}) in {folder}")
            return
        self.autosave()
        self.folder, self.paths, self.docs, self.index = folder, paths, {}, -1
        start = self.project_ctl.open(folder, paths)  # where the user left off
        if self._has_saved_classes():
            try:
                self._set_classes(load_classes(folder / "labels" / "classes.json"))
            except ValueError as exc:
                QMessageBox.warning(self, "SegStudio", f"{exc}\nUsing the model's classes instead.")
                self._set_classes(self.model.classes if self.model else ClassSpec(("background", "foreground")))
        elif self.model is not None:
            self._set_classes(self.model.classes)
        elif self.classes is None:  # no model and no saved classes: still openable
            self._set_classes(ClassSpec(("background", "foreground")))
        versions = list_versions(folder)
        for v in versions:
            self.model_panel.model_combo.addItem(f"{folder.name}/{v.name}")
            self._models.append(v / "model.safetensors")
        pick = self.project_ctl.restore_version(self.model_panel.model_combo.count() - 1 if versions else None)
        if pick is not None:
            self._on_model_picked(pick)
        self.files.set_paths(paths, {p for p in paths if label_path_for(p).is_file()})
        self.setWindowTitle(f"SegStudio — {folder}")
        self._start_thumbnails()
        self.files.setCurrentRow(start)
        self.canvas.setFocus()

    def _start_thumbnails(self) -> None:
        paths = list(self.paths)

        def work(job: Job):
            for i, p in enumerate(paths):
                job.cancel_token.check()
                try:
                    img = read_image(p)
                except ImageReadError:
                    continue
                h, w = img.shape[:2]
                s = max(1, max(h, w) // THUMB)
                job.emit_result(i, rgb_to_qimage(np.ascontiguousarray(img[::s, ::s])))

        if self.thumb_job is not None:
            self.thumb_job.cancel()
        self.thumb_job = Job("thumbnails", work)
        self.thumb_job.result.connect(self.files.set_thumbnail)
        start_job(self.thumb_job, self)

    def step(self, delta: int) -> None:
        if self.paths:
            self.files.setCurrentRow(min(max(self.index + delta, 0), len(self.paths) - 1))

    def current_doc(self) -> Document | None:
        return self.docs.get(self.paths[self.index]) if 0 <= self.index < len(self.paths) else None

    def _load_doc(self, path: Path) -> Document | None:
        if path in self.docs:
            return self.docs[path]
        try:
            image = read_image(path)
        except ImageReadError as exc:
            self.message(str(exc))
            return None
        try:
            doc = Document(path, image, self.classes)
        except ValueError as exc:
            self.message(f"{path.name}: {exc}")
            return None
        lp = label_path_for(path)
        if lp.is_file():
            try:
                doc.set_labels(read_index_png(lp), SOURCE_SAVED)
            except (ValueError, OSError) as exc:
                self.message(f"saved labels not usable ({exc}); they stay on disk untouched")
        self.project_ctl.on_doc_loaded(doc)  # saved provenance
        self.docs[path] = doc
        self._offer_recovery(doc)
        return doc

    def show_index(self, index: int) -> None:
        if not 0 <= index < len(self.paths):
            return
        self.autosave()
        self.index = index
        doc = self._load_doc(self.paths[index])
        self.canvas.set_document(doc)
        if doc is None:
            return
        self._update_title()
        if doc.source == "none" and self.predictor is not None and self.job is None:
            self.predict_current()

    def _update_title(self) -> None:
        doc = self.current_doc()
        if doc is not None:
            state = {"saved": "saved labels", "predicted": "prediction", "none": "no labels"}[doc.source]
            self.setWindowTitle(f"SegStudio — {doc.path.name} [{state}{', edited' if doc.dirty else ''}]")

    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        self.message(f"tool: {tool}")

    def show_shortcuts(self) -> None:
        """Help ▸ Keyboard shortcuts (the table is read from this window's actions)."""
        from segstudio.gui.help_dialog import ShortcutsDialog

        ShortcutsDialog(self).exec()

    def set_class(self, c: int) -> None:
        self.canvas.current_class = c
        if self.canvas.tool == TOOL_ERASER:
            self.canvas.tool = TOOL_BRUSH

    def pick_class(self, c: int) -> None:
        if self.classes is not None and c < self.classes.num_classes:
            self.class_panel.legend.setCurrentRow(c)

    def _on_edited(self) -> None:
        self._journal_edit()
        self._update_title()

    # -- crash-safe journal -------------------------------------------------------------------
    def _journal_edit(self) -> None:
        """Append the edit just finished to the image's journal (fsynced) before anything else happens.

        The record holds the current pixels of the box the edit touched (the last undo-stack patch, and
        the last redo-stack patch for an undo), so replay is exact for strokes, fills, undo and redo.
        The first edit (or one after the history was cleared, e.g. a relabel) writes the whole map.
        """
        doc = self.current_doc()
        if doc is None or not doc.dirty:
            return
        journal = self._journals.setdefault(doc.path, Journal(doc.path))
        hist = doc.history
        patches = getattr(hist, "_undo", [])[-1:] + getattr(hist, "_redo", [])[-1:]
        try:
            if not journal.started or len(hist) <= 1 or not patches:
                journal.start(doc.labels)
            else:
                for p in patches:
                    journal.append_patch(p.y0, p.x0, doc.labels[p.slices])
        except OSError as exc:
            self.message(f"edits of {doc.path.name} are not crash-protected (journal: {exc})")

    def _offer_recovery(self, doc: Document) -> None:
        """If a journal of ``doc`` survived a crash, offer to restore its edits (:func:`ask_recover`)."""
        journal = Journal(doc.path)
        if not journal.exists():
            return
        contents = journal.read()
        try:
            labels = replay(contents, doc.shape)
            validate_label_map(labels, doc.classes.num_classes)
        except (JournalError, ValueError) as exc:
            kept = journal.set_aside()
            self.message(f"unsaved edits of {doc.path.name} found but not usable ({exc}); kept in {kept}")
            return
        if not ask_recover(self, doc.path.name, contents.num_edits, contents.torn):
            kept = journal.set_aside()
            self.message(f"recorded edits of {doc.path.name} not restored; kept in {kept}")
            return
        doc.set_labels(labels, SOURCE_SAVED)
        doc.dirty = True
        try:
            journal.resume(contents)
            self._journals[doc.path] = journal
        except OSError as exc:
            self.message(f"edits of {doc.path.name} are not crash-protected (journal: {exc})")
        self.message(f"restored {contents.num_edits} unsaved edit(s) of {doc.path.name}; save to keep them")

    # -- saving ------------------------------------------------------------------------------
    def save_doc(self, doc: Document) -> bool:
        try:
            save_labels(doc.path, doc.labels, doc.classes)
        except (OSError, ValueError) as exc:
            QMessageBox.critical(self, "SegStudio", f"Could not save labels of {doc.path.name}: {exc}\nYour edits are still open.")
            return False
        doc.mark_saved()
        self.project_ctl.on_saved(doc)  # provenance file, status, segstudio.json
        self._journals.pop(doc.path, Journal(doc.path)).clear()  # saved: the journal has done its job
        if doc.path in self.paths:
            self.files.set_labelled(self.paths.index(doc.path), True)
        self.message(f"saved {label_path_for(doc.path)}")
        return True

    def save_current(self) -> None:
        doc = self.current_doc()
        if doc is not None:
            self.save_doc(doc)
            self._update_title()

    def autosave(self) -> None:
        """Save every edited document (called when leaving an image, fine-tuning and closing)."""
        for doc in list(self.docs.values()):
            if doc.dirty:
                self.save_doc(doc)
        self.project_ctl.save()

    # -- jobs --------------------------------------------------------------------------------
    def _start(self, job: Job) -> bool:
        if self.job is not None:
            self.message(f"busy: {self.job.name} is running")
            return False
        self.job = job
        job.progress.connect(self._on_progress)
        # Lambdas connected to a worker's signals would run in the worker thread: relay them to the GUI thread.
        job.failed.connect(on_gui(lambda msg: QMessageBox.warning(self, "SegStudio", msg), self))
        job.cancelled.connect(on_gui(lambda: self.message(f"{job.name} cancelled"), self))
        job.done.connect(self._on_job_done)
        self.progress.setRange(0, 0)
        self._set_busy(True)
        self.thread = start_job(job, self)
        return True

    def _set_busy(self, busy: bool) -> None:
        """Show progress + Cancel and disable the model buttons while a job runs."""
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        for b in (self.model_panel.predict_image, self.model_panel.predict_folder, self.model_panel.finetune):
            b.setEnabled(not busy)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.message(text)

    def _on_job_done(self) -> None:
        finished, self.job = self.job, None
        after, self._after_job = self._after_job, None
        self._set_busy(False)
        if after is not None:
            after()
        else:
            # The user may have moved to an unpredicted image while the worker was busy.
            # (Not when that job just tried this very image, e.g. with mismatched classes: no retry loop.)
            doc = self.current_doc()
            tried = getattr(finished, "paths", ())
            if doc is not None and doc.source == "none" and self.predictor is not None and doc.path not in tried:
                self.predict_current()

    def cancel_job(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.message(f"cancelling {self.job.name}…")

    def predict_paths(self, paths: list[Path]) -> bool:
        """Predict ``paths`` in a worker; results replace labels of images without saved or edited labels."""
        if self.predictor is None or not paths:
            return False
        predictor = self.predictor
        images = {p: self.docs[p].image for p in paths if p in self.docs}

        def work(job: Job):
            for i, p in enumerate(paths):
                job.cancel_token.check()
                job.report(i, len(paths), f"predicting {p.name} ({i + 1}/{len(paths)})")
                image = images.get(p)
                if image is None:
                    try:
                        image = read_image(p)
                    except ImageReadError as exc:
                        log.warning("%s", exc)
                        continue
                with predictor.tile_progress(tile_reporter(job, p.name, i, len(paths))):  # large images: per-tile progress
                    job.emit_result(p, predictor.predict(image))
            job.report(len(paths), len(paths), f"predicted {len(paths)} image(s)")
            return len(paths)

        job = Job("predict", work)
        job.paths = list(paths)
        job.result.connect(self._on_prediction)
        return self._start(job)

    def _on_prediction(self, path: Path, labels: np.ndarray) -> None:
        labels = self.project_ctl.map_prediction(labels)  # model ids -> project ids, by class name
        if self.classes is None or not self.project_ctl.prediction_fits(labels):
            self.message(f"the model's classes do not match the project's {self.classes.num_classes}; fine-tune to adapt it")
            return
        doc = self.docs.get(path)
        if doc is None:
            try:
                doc = Document(path, read_image(path), self.classes)
            except ImageReadError:
                return
            self.docs[path] = doc
        elif doc.dirty or (doc.source == SOURCE_SAVED and path != self.paths[self.index]):
            return  # never overwrite unsaved edits, nor saved labels of other images in a folder run
        doc.set_labels(labels, SOURCE_PREDICTED)
        self.project_ctl.on_predicted(doc)
        if doc is self.current_doc():
            self.canvas.refresh_labels()
            self._update_title()

    def predict_current(self) -> None:
        doc = self.current_doc()
        if doc is not None:
            if doc.dirty:
                self.message("save or undo your edits before re-predicting this image")
                return
            self.predict_paths([doc.path])

    def predict_folder(self) -> None:
        todo = [p for p in self.paths if not label_path_for(p).is_file() and not (p in self.docs and self.docs[p].dirty)]
        if not todo:
            self.message("every image has saved labels")
        self.predict_paths(todo)

    def finetune(self) -> bool:
        """Train the current model on every image with saved labels, as a new version ``labels/models/vNNN``."""
        if self.folder is None or self.model is None:
            return False
        n = self.saved_sample_count()
        return bool(n) and self.train_version(n, init=self.model.path, config=self.finetune_config)

    def saved_sample_count(self) -> int:
        """Autosave, then count the open folder's images with saved labels (0 after telling the user to save some)."""
        self.autosave()
        try:
            samples, _ = find_samples(self.folder)
        except FileNotFoundError:
            samples = []
        if not samples:
            QMessageBox.information(self, "SegStudio", "Save corrected labels for at least one image first.")
        return len(samples)

    def train_version(self, n_images: int, what: str = "fine-tune", extra_card: dict | None = None, **train_kwargs) -> bool:
        """Train in a worker on the folder's saved labels as a new version ``labels/models/vNNN``.

        The one path of the one-click fine-tune and of Model ▸ New model…: progress bar and Cancel, live curves in
        the training dock, then the new model is used and the current image re-predicted.

        Args:
            n_images: images with saved labels (for the status message).
            what: the job's wording in the status bar (``"fine-tune"``, ``"new lraspp"``...).
            extra_card: model-card fields on top of ``name`` (``"<folder>/vNNN"``).
            train_kwargs: :func:`~segstudio.engine.train_on_folder` arguments (``init`` or ``model_name`` +
                ``model_kwargs``, ``config``).
        """
        out_dir = next_version_dir(self.folder)
        folder = self.folder
        card = {"name": f"{folder.name}/{out_dir.name}", **(extra_card or {})}

        def work(job: Job):
            def cb(event: str, info: dict) -> None:
                job.emit_result(event, dict(info))  # live curves in the training dock (self.loop)
                if event == "step":
                    job.report(
                        info["global_step"],
                        info["total_steps"],
                        f"{what} {out_dir.name}: epoch {info['epoch'] + 1} step {info['step']}/{info['steps_per_epoch']}"
                        f" loss {info['loss']:.3f}",
                    )

            path = train_on_folder(folder, out_dir, callbacks=[cb], cancel=job.cancel_token, extra_card=card, **train_kwargs)
            return load_checkpoint(path)

        job = Job("fine-tune", work)  # one kind for the training dock's Cancel
        job.finished.connect(on_gui(lambda loaded: self._on_finetuned(loaded, out_dir, n_images, what), self))
        self.loop.watch_training(job, out_dir)
        return self._start(job)

    def _on_finetuned(self, loaded: LoadedModel, out_dir: Path, n: int, what: str = "fine-tune") -> None:
        self.set_model(loaded, f"{self.folder.name}/{out_dir.name}")
        for doc in self.docs.values():
            if doc.source == SOURCE_PREDICTED and not doc.dirty:
                doc.source = "none"  # stale: re-predicted when shown
        done = "fine-tuned" if what == "fine-tune" else f"{what} trained"
        self.message(f"{done} on {n} labelled image(s): new model {out_dir.name}")
        doc = self.current_doc()
        if doc is not None and doc.source != SOURCE_SAVED and not doc.dirty:
            self._after_job = self.predict_current  # the job slot frees in _on_job_done

    # -- cluster hand-off (segstudio.engine.cluster) ------------------------------------------
    def run_on_cluster(self):
        """Model ▸ Run fine-tune on a cluster…: the torchrun command + dataset manifest of this folder's fine-tune.

        Returns the (non-modal) :class:`~segstudio.gui.cluster_dialog.ClusterDialog`, or ``None`` without a folder.
        """
        from segstudio.gui.cluster_dialog import ClusterDialog

        if self.folder is None:
            QMessageBox.information(self, "SegStudio", "Open an image folder with saved labels first.")
            return None
        self.autosave()
        dialog = ClusterDialog(self.folder, self.model.path if self.model else None, self.finetune_config, self)
        dialog.open()
        return dialog

    def import_trained_checkpoint(self, path: str | Path | None = None) -> bool:
        """Model ▸ Import trained checkpoint…: copy a (cluster) run's model into ``labels/models/vNNN``, switch to it."""
        from segstudio.engine.cluster import import_checkpoint

        if self.folder is None:
            QMessageBox.information(self, "SegStudio", "Open the image folder the model was trained for first.")
            return False
        if not path:
            path, _ = QFileDialog.getOpenFileName(
                self, "Import trained checkpoint", str(self.folder), "SegStudio checkpoint (*.safetensors)"
            )
            if not path:
                return False
        folder = self.folder
        job = Job("import checkpoint", lambda job: load_checkpoint(import_checkpoint(path, folder)))
        job.finished.connect(self._on_imported)
        return self._start(job)

    def _on_imported(self, loaded: LoadedModel) -> None:
        self.set_model(loaded, loaded.card.get("name") or loaded.display_name)
        for doc in self.docs.values():
            if doc.source == SOURCE_PREDICTED and not doc.dirty:
                doc.source = "none"  # stale: re-predicted when shown
        self.message(f"imported {loaded.card.get('imported_from')} as {loaded.path.parent.name}")

    # -- closing -----------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.autosave()
        for job in (self.job, self.thumb_job):
            if job is not None:
                job.cancel()
        for th in self.findChildren(QThread):  # predict, fine-tune and thumbnail threads
            th.quit()
            th.wait(30000)
        super().closeEvent(event)
