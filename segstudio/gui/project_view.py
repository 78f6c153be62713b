"""The project in the app: per-image status, effort and provenance (``ProjectView``), and the
``ProjectController`` that keeps ``segstudio.json`` in step with the main window.

The controller keeps the project file (statuses, effort, versions) in step with the
:class:`~segstudio.gui.state.ProjectState`: the state calls its bookkeeping hooks (``open``,
``on_doc_loaded``, ``on_predicted``, ``on_saved``, ``save``) and it observes the state's signals
(model and classes changed); it changes the project's classes and model only through the state's methods.

Effort: active seconds come from an :class:`~segstudio.io.project.ActivityClock` fed by mouse, wheel and
key events on the canvas (idle gaps capped at 30 s); strokes are the document's human edit count.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QHBoxLayout,
    QWidget,
)

from segstudio.core import ClassSpec, Document
from segstudio.core.document import SOURCE_SAVED
from segstudio.engine import LoadedModel, list_versions
from segstudio.engine.versions import versions_dir
from segstudio.gui.class_editor import ClassEditorDialog
from segstudio.gui.qtutil import add_dock, window_action, window_menu
from segstudio.gui.versions_dock import ABCompareDialog, VersionsPanel, make_ab_job
from segstudio.io import label_path_for, load_classes, save_classes
from segstudio.io.layout import CARD_FILENAME, WEIGHTS_FILENAME, ProjectLayout
from segstudio.io.validation import read_validation_list, set_validation
from segstudio.core.class_mapping import class_lut, match_classes
from segstudio.io.project import (
    PROJECT_FILENAME,
    STATUS_CORRECTED,
    STATUS_PREDICTED,
    STATUS_REVIEWED,
    STATUSES,
    ActivityClock,
    ModelVersion,
    Project,
    ProjectError,
    provenance_percent,
    relabel_label_files,
    version_status,
)
from segstudio.io.provenance_files import load_provenance, save_provenance
from segstudio.core.provenance import provenance_counts

log = logging.getLogger(__name__)

STATUS_COLORS = {"unlabelled": "#9e9e9e", "predicted": "#1e88e5", "corrected": "#fb8c00", "reviewed": "#43a047"}


def format_seconds(s: float) -> str:
    """``h:mm:ss`` or ``m:ss`` of a duration in seconds."""
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class ProjectView(QWidget):
    """Table of images (status, active time, strokes, provenance % of saved labels) with project totals.

    Signals:
        imageActivated(int): row double-clicked (go to that image).
    """

    imageActivated = Signal(int)
    COLUMNS = ("Image", "Status", "Time", "Strokes", "Model %", "Human %", "CRF %")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.imageActivated.emit(r))
        lay.addWidget(self.table, 3)
        self.totals = QLabel()
        self.totals.setWordWrap(True)
        self.totals.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.totals.setMinimumWidth(260)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.totals, 1)

    def set_project(self, project: Project | None, names: list[str], current: int = -1) -> None:
        """Show ``project``'s records of the images ``names`` (in list order); highlight row ``current``.

        A full rebuild (folder opened, classes changed); single images are updated with :meth:`update_image`.
        """
        self.table.setRowCount(0 if project is None else len(names))
        if project is None:
            self.totals.setText("")
            return
        for r, name in enumerate(names):
            self.update_image(project, r, name)
        self.select(current)
        self.update_totals(project)

    def update_image(self, project: Project, row: int, name: str) -> None:
        """Rewrite row ``row`` from the record of image ``name`` (constant time, whatever the folder size)."""
        rec = project.record(name)
        pct = provenance_percent(rec.provenance)
        has = bool(rec.provenance) and sum(rec.provenance.get(k, 0) for k in ("model", "human", "crf")) > 0
        cells = (
            name,
            rec.status,
            format_seconds(rec.seconds),
            str(rec.strokes),
            *((f"{pct[k]:.1f}" if has else "—") for k in ("model", "human", "crf")),
        )
        for c, text in enumerate(cells):
            it = self.table.item(row, c)
            if it is None:
                it = QTableWidgetItem()
                if c >= 2:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, c, it)
            it.setText(text)
            if c == 1:
                it.setForeground(QColor(STATUS_COLORS[rec.status]))

    def select(self, row: int) -> None:
        """Highlight row ``row`` (the image shown)."""
        if 0 <= row < self.table.rowCount():
            self.table.selectRow(row)

    def update_totals(self, project: Project) -> None:
        """Recompute the totals line (linear in the number of images, no widgets rebuilt)."""
        s = project.summary()
        pct = s.provenance_percent()
        counts = " · ".join(
            f"<span style='color:{STATUS_COLORS[k]}'>{s.by_status[k]} {k}</span>" for k in STATUSES
        )
        self.totals.setText(
            f"<b>{s.images} images</b><br>{counts}<br>"
            f"<b>{format_seconds(s.seconds)}</b> active · <b>{s.strokes}</b> strokes"
            + (f" · {s.seconds / max(s.by_status[STATUS_CORRECTED] + s.by_status[STATUS_REVIEWED], 1):.0f} s per corrected image" if s.seconds else "")
            + f"<br>saved pixels from model <b>{pct['model']:.1f}%</b> · human <b>{pct['human']:.1f}%</b> · CRF <b>{pct['crf']:.1f}%</b>"
        )


class ProjectController(QObject):
    """Keeps a :class:`~segstudio.io.project.Project` in step with a main window (see the module docstring).

    Args:
        state: the :class:`~segstudio.gui.state.ProjectState` (its ``book``: called on open / load / predict / save).
        canvas: the :class:`~segstudio.gui.canvas.Canvas` (edits and activity are counted from it).
        parent: the QObject owning this controller. The window lays out its docks and menus with
            :func:`build_project_view`.
        idle_s: idle cap of the activity clock, seconds.

    Attributes:
        project: the open project, or ``None`` before a folder is opened.
        view: the :class:`ProjectView` (in the "Project" dock).
        versions: the :class:`~segstudio.gui.versions_dock.VersionsPanel` (in the "Versions" dock).
        match: how the model's classes relate to the project's (:class:`~segstudio.core.class_mapping.ClassMatch`).
    """

    def __init__(self, state, canvas, parent: QObject | None = None, idle_s: float = 30.0) -> None:
        super().__init__(parent)
        self.state, self.canvas = state, canvas
        self.project: Project | None = None
        self.clock = ActivityClock(idle_s)
        self.match = None
        self._seen_edits: dict[Path, int] = {}
        self._current: str | None = None
        self._rows: dict[str, int] = {}
        self.ab_job = None
        self._ab_inputs = None
        self.ab_dialog: ABCompareDialog | None = None

        self.view = ProjectView()
        self.versions = VersionsPanel()
        self.docks = {}  # filled by build_project_view (the window's layout)

        canvas.viewport().installEventFilter(self)
        canvas.installEventFilter(self)
        canvas.edited.connect(self._on_edited)
        state.indexChanged.connect(self._on_row)
        self.view.imageActivated.connect(self.go_to_row)
        self.versions.useRequested.connect(self.use_version)
        self.versions.compareRequested.connect(self.compare)
        self.state.modelChanged.connect(self.on_model_changed)
        self.state.classesChanged.connect(lambda _c: self.refresh_versions())
        self.state.versionCancelled.connect(lambda _d: self._sync_versions() or self.refresh_versions())

    def go_to_row(self, row: int) -> None:
        """Show image ``row`` of the list (a double-click in the Project table)."""
        if 0 <= row < len(self.state.paths) and row != self.state.index:
            self.state.set_index(row)  # the image list follows the state

    # -- hooks called by MainWindow ----------------------------------------------------------------
    def open(self, folder: Path, paths: list[Path]) -> int:
        """Load (or start) ``folder``'s project; returns the row to show first (where the user left off)."""
        self._seen_edits.clear()
        self._current = None
        self.clock.stop()
        try:
            project = Project.load(folder)
        except ProjectError as exc:
            aside = self._move_aside(folder / PROJECT_FILENAME)
            QMessageBox.warning(self.canvas.window(), "SegStudio", f"{exc}\n\nThe file was kept as {aside.name}; starting a new project.")
            project = Project(folder)
        self.project = project
        project.sync_images(paths)
        self._sync_versions()
        names = [p.name for p in paths]
        start = names.index(project.last_image) if project.last_image in names else 0
        self._rows = {p.name: i for i, p in enumerate(paths)}
        self.view.set_project(project, names, start)
        return start

    def on_doc_loaded(self, doc: Document) -> None:
        """A document with saved labels was opened: use its saved provenance map, if any."""
        self._seen_edits[doc.path] = doc.edits
        if doc.source != SOURCE_SAVED:
            return
        try:
            prov = load_provenance(doc.path, doc.shape)
        except (ValueError, OSError) as exc:
            self.state.say(f"provenance of {doc.path.name} not usable ({exc}); counting the saved labels as human")
            return
        if prov is not None:
            doc.provenance.load(prov)

    def on_predicted(self, doc: Document) -> None:
        """A prediction filled ``doc``'s undecided pixels: status *predicted* unless labels are saved on disk or a
        person edited it (a prediction around a person's strokes leaves the image *corrected*)."""
        self._seen_edits[doc.path] = doc.edits
        if self.project is not None and not label_path_for(doc.path).is_file() and not doc.edits:
            self.project.set_status(doc.path.name, STATUS_PREDICTED)
            self._touch(doc.path.name)

    def on_saved(self, doc: Document, prov: np.ndarray | None = None) -> None:
        """Labels of ``doc`` were saved with provenance ``prov`` (uint8 (H, W); default the document's): save
        it beside them, record pixel counts and status."""
        prov = doc.provenance.map if prov is None else prov
        try:
            save_provenance(doc.path, prov)
        except (OSError, ValueError) as exc:
            self.state.say(f"labels saved, but not their provenance ({exc})")
        if self.project is None or doc.path.parent != Path(self.project.folder):
            return
        rec = self.project.record(doc.path.name)
        rec.provenance = provenance_counts(prov)
        rec.saved = _now()
        if rec.status not in (STATUS_CORRECTED, STATUS_REVIEWED):
            rec.status = STATUS_CORRECTED if rec.provenance["human"] + rec.provenance["crf"] else STATUS_PREDICTED
        self.save()
        self._touch(doc.path.name)

    def record_model(self, model: LoadedModel, label: str) -> None:
        """List ``model`` among the project's versions (without making it the current one)."""
        if self.project is not None:
            name = self._version_name(model, label)
            if self.project.version(name) is None:
                self.project.add_version(ModelVersion.from_card(name, model.path or name, model.card, self.project.folder))

    def on_model_changed(self, model: LoadedModel | None, label: str) -> None:
        """The model in use changed: record it as the current version and check its classes."""
        if self.project is not None and model is not None:
            name = self._version_name(model, label)
            self.project.add_version(ModelVersion.from_card(name, model.path or name, model.card, self.project.folder))
            self.project.current_version = name
        self.refresh_versions()

    def save(self) -> None:
        """Write ``segstudio.json`` (credits the active time so far); errors go to the status bar.

        Nothing is written into a read-only folder opened for viewing."""
        if self.project is None or self.state.read_only:
            return
        if self._current is not None and self.clock.running:
            self.project.add_effort(self._current, self.clock.tick())
        if self.state.classes is not None:
            self.project.classes = self.state.classes
        try:
            self.project.save()
        except OSError as exc:
            self.state.say(f"could not save {self.project.path.name}: {exc}")

    # -- effort and status ---------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:
        t = event.type()
        if self._current is not None and self.project is not None and (
            t in (QEvent.Type.MouseButtonPress, QEvent.Type.Wheel, QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride)
            or (t == QEvent.Type.MouseMove and event.buttons() != Qt.MouseButton.NoButton)
        ):
            self.project.add_effort(self._current, self.clock.tick())
        return False

    def _on_row(self, row: int) -> None:
        if self.project is None or not 0 <= row < len(self.state.paths):
            return
        previous = self._current
        if previous is not None:
            self.project.add_effort(previous, self.clock.stop())
        self._current = self.state.paths[row].name
        self.project.last_image = self._current
        self.clock.start()
        self._touch(previous)
        self.view.select(row)
        self.sync_validation_action(self.state.paths[row])

    def _on_edited(self) -> None:
        doc = self.state.current_doc()
        if doc is None or self.project is None:
            return
        delta = doc.edits - self._seen_edits.get(doc.path, 0)
        self._seen_edits[doc.path] = doc.edits
        if delta > 0:
            self.project.add_effort(doc.path.name, strokes=delta)
            self.project.set_status(doc.path.name, STATUS_CORRECTED)
            self._touch(doc.path.name)

    def set_image_status(self, path: Path, status: str) -> None:
        """Set image ``path``'s status (one of ``STATUSES``), write the project file and refresh its row."""
        if self.project is not None:
            self.project.set_status(path.name, status)
            self.save()
            self._touch(path.name)

    def mark_reviewed(self) -> None:
        """Approve the current image's labels: save them (if needed) and set its status to *reviewed*."""
        doc = self.state.current_doc()
        if doc is None or self.project is None:
            return
        if doc.source == "none":
            self.state.say("nothing to review: this image has no labels yet")
            return
        if not self.state.save_doc(doc, accept=True, explicit=True):  # reviewing accepts every pixel shown
            return
        self.project.set_status(doc.path.name, STATUS_REVIEWED)
        self.save()
        self._touch(doc.path.name)
        self.state.say(f"{doc.path.name} reviewed")

    def toggle_validation(self) -> None:
        """Set the current image aside for validation (never trained on), or back to training; the action's check
        mark follows the list on disk (``labels/validation.txt``, :mod:`segstudio.io.validation`)."""
        doc = self.state.current_doc()
        if doc is None:
            return
        try:
            aside = doc.path.name not in read_validation_list(doc.path.parent)
            names = set_validation(doc.path.parent, doc.path.name, aside)
        except (OSError, ValueError) as exc:
            self.state.say(f"could not update the validation list: {exc}")
            self.sync_validation_action()
            return
        self.sync_validation_action()
        self.state.say(
            f"{doc.path.name} set aside for validation: fine-tunes never train on it ({len(names)} set aside)" if aside
            else f"{doc.path.name} trains the next fine-tune again ({len(names)} set aside)"
        )

    def sync_validation_action(self, path: Path | None = None) -> None:
        """Check the action when image ``path`` (default: the current document's) is set aside for validation."""
        if path is None:
            doc = self.state.current_doc()
            path = None if doc is None else doc.path
        try:
            on = path is not None and path.name in read_validation_list(path.parent)
        except (OSError, ValueError):
            on = False
        self.act_validation.setChecked(on)

    # -- classes -------------------------------------------------------------------------------------
    def edit_classes(self) -> None:
        """Open the class editor; apply its result (with confirmation when label maps are relabelled)."""
        if self.state.classes is None:
            self.state.say("open a folder or load a model first")
            return
        dlg = ClassEditorDialog(self.state.classes, self.canvas.window())
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.apply_classes(dlg.classes(), dlg.mapping(), dlg.needs_relabel(), dlg.describe_changes())

    def label_files(self) -> list[Path]:
        """Saved label files of the open folder."""
        return [label_path_for(p) for p in self.state.paths if label_path_for(p).is_file()]

    def apply_classes(self, classes: ClassSpec, lut: np.ndarray, relabel: bool, description: str = "", confirm: bool = True) -> bool:
        """Make ``classes`` the project's classes.

        When ``relabel`` (ids changed or classes were deleted), every saved label map and every open
        document is mapped through ``lut`` (uint8 (256,) old id → new id) after the user confirms;
        a person's unsaved pixels are saved first. Unaccepted *predicted* pixels become unlabelled, the
        current class follows the edit and a renamed class gets a contrasting colour
        (:meth:`~segstudio.gui.state.ProjectState.apply_class_edit`). Returns False when cancelled or failed
        (nothing changed then).
        """
        st = self.state
        files = self.label_files() if st.folder is not None else []
        if relabel and confirm and not st.prompts.ask_yes_no(
            "SegStudio — relabel",
            f"{description}\n\nThis rewrites {len(files)} saved label file(s) and every open image with the new "
            "class ids (each file atomically); predicted pixels nobody accepted become unlabelled. Continue?",
        ):
            return False

        def write(new: ClassSpec) -> None:
            if st.folder is not None and st.read_only:
                return
            if st.folder is not None and relabel:
                relabel_label_files(st.folder, lut, new)
            elif st.folder is not None:  # the folder's classes from now on, even before any label is saved
                save_classes(ProjectLayout(st.folder).classes_file, new)

        try:
            note = st.apply_class_edit(classes, lut, relabel, write)
        except (OSError, ValueError) as exc:
            st.prompts.error(f"Classes not changed: {exc}")
            return False
        if self.project is not None:
            self.project.classes = st.classes
            self.project.class_aliases = dict(st.class_aliases)  # the model's old names still reach the renamed classes
            self.save()
        self.refresh()
        st.say(f"classes updated ({description or f'{classes.num_classes} classes'}){note}")
        return True

    def import_classes_file(self, path: str | Path, confirm: bool = True) -> bool:
        """Use a ``classes.json`` as the project's classes; saved labels are mapped to it by class name.

        Raises:
            ValueError: not a valid ``classes.json``.
        """
        new = load_classes(path)
        old = self.state.classes or new
        lut = class_lut(old, new)
        relabel = not np.array_equal(lut[: old.num_classes], np.arange(old.num_classes, dtype=np.uint8))
        m = match_classes(old, new)
        desc = f"import {Path(path).name}: {len(m.matched)} classes matched by name" + (
            f", removed: {', '.join(m.model_only)}" if m.model_only else ""
        )
        return self.apply_classes(new, lut, relabel, desc, confirm)

    def ask_import_classes(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.canvas.window(), "Import classes", str(self.state.folder or ""), "classes.json (*.json)")
        if path:
            try:
                self.import_classes_file(path)
            except ValueError as exc:
                QMessageBox.warning(self.canvas.window(), "Import classes", str(exc))

    def ask_export_classes(self) -> None:
        if self.state.classes is None:
            return
        path, _ = QFileDialog.getSaveFileName(self.canvas.window(), "Export classes", "classes.json", "classes.json (*.json)")
        if path:
            try:
                save_classes(path, self.state.classes)
            except OSError as exc:
                QMessageBox.warning(self.canvas.window(), "Export classes", str(exc))

    # -- versions ------------------------------------------------------------------------------------
    def _version_name(self, model: LoadedModel, label: str) -> str:
        folder = self.project.folder if self.project is not None else None
        if folder is not None and model.path is not None and model.path.parent.parent.resolve() == versions_dir(folder).resolve():
            return model.path.parent.name
        return label or model.display_name

    def _sync_versions(self) -> None:
        folder = self.project.folder
        found = []
        for v in list_versions(folder):
            try:
                card = json.loads((v / CARD_FILENAME).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable model card (%s)", v, exc)
                card = {}
            mv = ModelVersion.from_card(v.name, v / WEIGHTS_FILENAME, card, folder)
            mv.status = version_status(v)
            found.append(mv)
        self.project.set_versions(found)

    def _combo_text(self, name: str) -> str:
        folder = self.project.folder if self.project is not None else None
        v = self.project.version(name) if self.project is not None else None
        if folder is not None and v is not None and not Path(v.path).is_absolute():
            return f"{Path(folder).name}/{name}"
        return name

    def _combo_index(self, name: str) -> int | None:
        text = self._combo_text(name)
        v = self.project.version(name) if self.project is not None else None
        for label in (text, f"{text} (cancelled)") if v is not None and v.status == "cancelled" else (text,):
            idx = self.state.find_model(label)
            if idx is not None:
                return idx
        return None

    def use_version(self, name: str) -> bool:
        """Switch the model in use to version ``name`` (adds it to the model picker if needed)."""
        if self.project is None or self.project.version(name) is None:
            return False
        idx = self._combo_index(name)
        if idx is None:
            path = self.project.version(name).resolve(self.project.folder)
            idx = self.state.add_model_entry(self._combo_text(name), path)
        return self.state.pick_model(idx)

    def compare(self, name_a: str, name_b: str) -> bool:
        """Predict the current image with versions A and B in a worker; show the A/B view with their mIoU."""
        st = self.state
        doc = st.current_doc()
        if self.project is None or doc is None or st.classes is None:
            return False
        va, vb = self.project.version(name_a), self.project.version(name_b)
        if va is None or vb is None:
            st.say("pick two model versions to compare")
            return False
        if self.ab_job is not None:
            st.say("an A/B comparison is already running")
            return False
        image, classes, folder = doc.image, st.classes, self.project.folder
        job = make_ab_job(va.resolve(folder), vb.resolve(folder), image, classes, st.device)
        self.ab_job = job
        self._ab_inputs = (image, classes, (name_a, name_b))
        # Failures reach the status bar and the log through the state's job runner.
        st.start(job, "ab", on_finished=self._ab_finished, on_progress=self._ab_progress, on_done=self._ab_done)
        return True

    def _ab_progress(self, done: int, total: int, text: str) -> None:
        self.state.say(text)

    def _ab_finished(self, result: dict) -> None:
        image, classes, names = self._ab_inputs
        self._show_ab(image, result, classes, names)

    def _ab_done(self) -> None:
        self.ab_job = None

    def _show_ab(self, image, result: dict, classes: ClassSpec, names: tuple[str, str]) -> None:
        if self.ab_dialog is None:
            self.ab_dialog = ABCompareDialog(self.canvas.window())
        opacity = self.canvas.overlay.opacity()
        self.ab_dialog.set_result(image, result, classes, names, opacity)
        self.ab_dialog.show()
        self.ab_dialog.raise_()

    # -- display -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild the project table (folder opened, classes changed) and update the versions dock."""
        st = self.state
        if self.project is not None:
            self._rows = {p.name: i for i, p in enumerate(st.paths)}
            self.view.set_project(self.project, [p.name for p in st.paths], st.index)
        self.refresh_versions()

    def _touch(self, name: str | None) -> None:
        """Update the row of image ``name`` and the totals (no table rebuild: per-image events stay O(1) widgets)."""
        if self.project is None or name is None:
            return
        row = self._rows.get(name)
        if row is not None:
            self.view.update_image(self.project, row, name)
        self.view.update_totals(self.project)

    @Slot()
    def refresh_versions(self) -> None:
        """Update the versions tree and the class-mapping notice."""
        st = self.state
        if self.project is not None:
            self.versions.set_versions(self.project.versions, self.project.current_version, Path(self.project.folder))
        else:
            self.versions.set_versions([], None, None)
        self.match = match_classes(st.model.classes, st.classes, st.class_aliases) if st.model is not None and st.classes is not None else None
        self.versions.set_notice(self.match.notice() if self.match is not None else "")

    @staticmethod
    def _move_aside(path: Path) -> Path:
        k = 1
        while (aside := path.with_name(f"{path.name}.bad{k}")).exists():
            k += 1
        os.replace(path, aside)
        return aside


def build_project_view(window, ctl: ProjectController) -> None:
    """Lay out ``ctl``'s Project and Versions docks and its menu actions in ``window`` (a
    :class:`~segstudio.gui.main_window.MainWindow` whose menus and bottom docks exist)."""
    bottom = [d for d in window.findChildren(QDockWidget) if window.dockWidgetArea(d) == Qt.DockWidgetArea.BottomDockWidgetArea]
    for title, widget, area in (
        ("Project", ctl.view, Qt.DockWidgetArea.BottomDockWidgetArea),
        ("Versions", ctl.versions, Qt.DockWidgetArea.RightDockWidgetArea),
    ):
        ctl.docks[title] = add_dock(window, title, widget, area)
    if bottom:  # the wide table shares the bottom area with the training/metrics docks, as a tab
        window.tabifyDockWidget(bottom[-1], ctl.docks["Project"])

    m_file, m_edit, m_model = window_menu(window, "File"), window_menu(window, "Edit"), window_menu(window, "Model")
    ctl.act_classes = window_action(window, "Edit classes…", ctl.edit_classes, ["Ctrl+Shift+K"], m_edit)
    ctl.act_import = window_action(window, "Import classes.json…", ctl.ask_import_classes, [], m_file)
    ctl.act_export = window_action(window, "Export classes.json…", ctl.ask_export_classes, [], m_file)
    ctl.act_reviewed = window_action(window, "Mark image reviewed", ctl.mark_reviewed, ["Ctrl+Return"], m_edit)
    ctl.act_validation = window_action(window, "Set aside for validation (never trained on)", ctl.toggle_validation, [], m_edit)
    ctl.act_validation.setCheckable(True)
    ctl.act_validation.setToolTip(
        "Every corrected image trains the next fine-tune, except the ones set aside here: they only draw the "
        "validation curve (labels/validation.txt)"
    )
    ctl.act_compare = window_action(
        window,
        "Compare versions A/B…",
        lambda: ctl.compare(ctl.versions.combo_a.currentText(), ctl.versions.combo_b.currentText()),
        ["Ctrl+Shift+B"],
        m_model,
    )


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
