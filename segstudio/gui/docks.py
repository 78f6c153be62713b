"""Side panels: image list, class legend with overlay controls, model panel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

import numpy as np

from segstudio.core import ClassSpec
from segstudio.gui.qtutil import color_icon, rgb_to_qimage
from segstudio.gui.workers import Job
from segstudio.io import ImageReadError, label_path_for, read_image

THUMB = 72


class FileList(QListWidget):
    """Images of the open folder with thumbnails; a ✓ marks images with saved labels, a ⚠ images that could
    not be read or predicted (the tooltip says why)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setUniformItemSizes(True)
        # Keys go to the window's shortcuts (Right/Left/PgUp/PgDown), not to list navigation.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.paths: list[Path] = []
        self.failed: dict[int, str] = {}
        self.labelled: set[int] = set()

    def bind(self, state) -> None:
        """Observe ``state`` (:class:`~segstudio.gui.state.ProjectState`): its folder, saves and failures; a row
        picked here shows that image (``state.set_index``)."""
        self.currentRowChanged.connect(state.set_index)

        def opened(_folder) -> None:
            self.set_paths(state.paths, {p for p in state.paths if label_path_for(p).is_file()})
            state.start(self.thumbnail_job(state.paths), "thumbnails", on_result=self.on_thumbnail)

        def row_of(path) -> int:
            return state.paths.index(path) if path in state.paths else -1

        state.folderOpened.connect(opened)
        state.labelsSaved.connect(lambda p: self.set_labelled(row_of(p), True))
        state.imageFailed.connect(lambda p, why: self.set_failed(row_of(p), why))
        state.documentChanged.connect(lambda _doc: self.show_row(state.index))

    def show_row(self, row: int) -> None:
        """Highlight ``row`` without emitting ``currentRowChanged`` (the state already shows it)."""
        if 0 <= row < self.count() and self.currentRow() != row:
            self.blockSignals(True)
            self.setCurrentRow(row)
            self.blockSignals(False)

    def set_paths(self, paths: list[Path], labelled: set[Path]) -> None:
        self.blockSignals(True)
        self.clear()
        self.paths = list(paths)
        self.failed = {}
        self.labelled = {i for i, p in enumerate(paths) if p in labelled}
        for p in paths:
            item = QListWidgetItem(self._text(p, p in labelled))
            item.setToolTip(str(p))
            self.addItem(item)
        self.blockSignals(False)

    @staticmethod
    def _text(path: Path, labelled: bool, failed: bool = False) -> str:
        return f"{'⚠ ' if failed else ''}{'✓ ' if labelled else ''}{path.name}"

    def set_labelled(self, index: int, labelled: bool) -> None:
        if 0 <= index < self.count():
            (self.labelled.add if labelled else self.labelled.discard)(index)
            self.item(index).setText(self._text(self.paths[index], labelled, index in self.failed))

    def set_failed(self, index: int, why: str) -> None:
        """Mark image ``index`` as unreadable / not predicted (``why`` in its tooltip)."""
        if 0 <= index < self.count():
            self.failed[index] = why
            item = self.item(index)
            item.setText(self._text(self.paths[index], index in self.labelled, True))
            item.setToolTip(f"{self.paths[index]}\n⚠ {why}")

    def set_thumbnail(self, index: int, image: QImage) -> None:
        if 0 <= index < self.count():
            self.item(index).setIcon(QIcon(QPixmap.fromImage(image)))

    def on_thumbnail(self, index: int, out) -> None:
        """A result of :meth:`thumbnail_job`: a ``QImage``, or the reason (str) the image could not be read."""
        if isinstance(out, str):
            self.set_failed(index, out)
        else:
            self.set_thumbnail(index, out)

    @staticmethod
    def thumbnail_job(paths: list[Path]) -> Job:
        """A worker job emitting ``(row, QImage thumbnail)`` per readable image, ``(row, why)`` per unreadable one."""

        def work(job: Job) -> None:
            for i, p in enumerate(paths):
                job.cancel_token.check()
                try:
                    img = read_image(p)
                except ImageReadError as exc:
                    job.emit_result(i, str(exc))
                    continue
                s = max(1, max(img.shape[:2]) // THUMB)
                job.emit_result(i, rgb_to_qimage(np.ascontiguousarray(img[::s, ::s])))

        return Job("thumbnails", work)


PALETTE_ROWS = 20
"""The class palette shows this many classes without scrolling."""


class ClassPanel(QWidget):
    """Class legend (click picks the paint class; the checkbox shows/hides a class) + overlay opacity
    and visibility.

    Signals: classPicked(int), opacityChanged(float 0..1), overlayToggled(bool),
    classVisibilityChanged(int class_id, bool visible).
    """

    classPicked = Signal(int)
    opacityChanged = Signal(float)
    overlayToggled = Signal(bool)
    classVisibilityChanged = Signal(int, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.legend = QListWidget()
        self.legend.currentRowChanged.connect(lambda r: r >= 0 and self.classPicked.emit(r))
        self.hidden: set[int] = set()  # class ids whose checkbox is off
        self.legend.itemChanged.connect(self._on_item_changed)
        lay.addWidget(self.legend)
        self.show_overlay = QCheckBox("Show overlay (O)")
        self.show_overlay.setChecked(True)
        self.show_overlay.toggled.connect(self.overlayToggled)
        lay.addWidget(self.show_overlay)
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.valueChanged.connect(lambda v: self.opacityChanged.emit(v / 100.0))
        row.addWidget(self.opacity)
        lay.addLayout(row)

    def bind(self, state) -> None:
        """Observe ``state``'s classes and current class (the selected row follows it)."""
        state.classesChanged.connect(self.set_classes)
        state.currentClassChanged.connect(self.select_class)

    def select_class(self, c: int) -> None:
        """Select row ``c`` (the class painted with) without emitting ``classPicked``."""
        if self.legend.currentRow() != c:
            self.legend.blockSignals(True)
            self.legend.setCurrentRow(c)
            self.legend.blockSignals(False)

    def set_classes(self, classes: ClassSpec) -> None:
        """Show ``classes``. Hidden classes are shown again first: their ids may mean other classes now."""
        for c in sorted(self.hidden):
            self.hidden.discard(c)
            self.classVisibilityChanged.emit(c, True)
        cur = max(self.legend.currentRow(), 0)
        self.legend.blockSignals(True)
        self.legend.clear()
        for i, (name, color) in enumerate(zip(classes.names, classes.colors)):
            key = str(i + 1) if i < 9 else "0" if i == 9 else f"Alt+{(i - 9) % 10}" if i < 20 else ""
            item = QListWidgetItem(color_icon(color), f"{key:>5}  {name}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if i in self.hidden else Qt.CheckState.Checked)
            item.setToolTip("checkbox: show/hide this class in the overlay (H: current class)")
            self.legend.addItem(item)
        self.legend.setCurrentRow(min(cur, classes.num_classes - 1))
        self.legend.blockSignals(False)
        rows = min(classes.num_classes, PALETTE_ROWS)  # every class visible; scroll only past PALETTE_ROWS
        row_h = max(self.legend.sizeHintForRow(0), 18) if classes.num_classes else 18
        # ... but never a minimum that pushes the window past the screen (issue 31): at most a third of its height
        screen = self.screen() or QGuiApplication.primaryScreen()
        cap = screen.availableGeometry().height() // 3 if screen is not None else 10**6
        self.legend.setMinimumHeight(min(rows * row_h + 2 * self.legend.frameWidth() + 4, max(cap, 3 * row_h)))

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        """Tick or untick a class's checkbox (emits ``classVisibilityChanged`` when it changes)."""
        item = self.legend.item(class_id)
        if item is not None:
            item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)

    def toggle_current_class(self) -> None:
        """Show/hide the class selected in the legend (the H shortcut)."""
        c = self.legend.currentRow()
        if c >= 0:
            self.set_class_visible(c, c in self.hidden)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        c = self.legend.row(item)
        visible = item.checkState() == Qt.CheckState.Checked
        if visible == (c not in self.hidden):
            return  # text/icon change, not the checkbox
        (self.hidden.discard if visible else self.hidden.add)(c)
        self.classVisibilityChanged.emit(c, visible)


class ModelPanel(QWidget):
    """Model in use, device picker, predict and fine-tune buttons."""

    def __init__(self, devices: list[str], parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.model_combo = QComboBox()
        form.addRow("Model", self.model_combo)
        self.device_combo = QComboBox()
        self.device_combo.addItems(devices)
        form.addRow("Device", self.device_combo)
        lay.addLayout(form)
        self.info = QLabel()
        self.info.setWordWrap(True)
        lay.addWidget(self.info)
        self.predict_image = QPushButton("Predict image")
        self.predict_folder = QPushButton("Predict folder")
        self.save = QPushButton("Save labels")
        self.finetune = QPushButton("Fine-tune on saved labels")
        for b in (self.predict_image, self.predict_folder, self.save, self.finetune):
            lay.addWidget(b)
        lay.addStretch(1)

    def bind(self, state) -> None:
        """Observe ``state``'s model picker entries and model in use; the controls call its methods
        (Save is the window's: it accepts the image)."""
        self._state = state
        state.modelsChanged.connect(self.show_models)
        state.modelChanged.connect(self.show_model)
        self.model_combo.activated.connect(state.pick_model)
        self.device_combo.currentTextChanged.connect(state.set_device)
        self.predict_image.clicked.connect(state.predict_current)
        self.predict_folder.clicked.connect(state.predict_folder)
        self.finetune.clicked.connect(state.finetune)
        state.set_device(self.device_combo.currentText())

    def show_models(self) -> None:
        """Rebuild the picker from the state's entries (labels + tooltips), selecting the model in use."""
        st, combo = self._state, self.model_combo
        combo.blockSignals(True)
        combo.clear()
        for i, e in enumerate(st.models):
            combo.addItem(e.label)
            if e.tooltip:
                combo.setItemData(i, e.tooltip, Qt.ItemDataRole.ToolTipRole)
        idx = st.find_model(st.model_label) if st.model is not None else None
        combo.setCurrentIndex(-1 if idx is None else idx)
        combo.blockSignals(False)

    def show_model(self, model, label: str) -> None:
        """Select ``label`` and describe ``model`` (a :class:`~segstudio.engine.LoadedModel`, or ``None``)."""
        idx = self._state.find_model(label) if model is not None else None
        self.model_combo.setCurrentIndex(-1 if idx is None else idx)
        if model is None:
            self.info.setText("no model: label by hand, or pick one")
            return
        metrics = model.card.get("metrics") or {}
        miou = (metrics.get("val") or {}).get("miou")
        # a model shipped on train+val has no val figure of its own, only its recipe's (trained on train only)
        recipe = (metrics.get("val_recipe") or {}).get("miou")
        self.info.setText(
            f"{model.card['architecture']} · {len(model.card['classes'])} classes"
            + (f" · val mIoU {100 * miou:.1f}" if miou is not None else "")
            + (f" · recipe val mIoU {100 * recipe:.1f} (trained on train only)" if miou is None and recipe is not None else "")
        )
