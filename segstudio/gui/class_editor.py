"""Class editor: add, rename, recolour, reorder and delete classes; import/export ``classes.json``.

The dialog only edits a list; :meth:`ClassEditorDialog.mapping` tells the caller how old class ids map
to new ones, so that label maps on disk and in memory can be relabelled (after the user confirms).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QScrollArea,
    QWidget,
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from segstudio.core import IGNORE_INDEX, ClassSpec, default_palette
from segstudio.gui.qtutil import color_icon
from segstudio.gui.state_models import recolour_renamed
from segstudio.io import load_classes, save_classes

log = logging.getLogger(__name__)

_ORIGIN = Qt.ItemDataRole.UserRole  # old class id of a row, or -1 for a new class
_COLOR = Qt.ItemDataRole.UserRole + 1  # (r, g, b)


class ClassEditorDialog(QDialog):
    """Edit a class list.

    Args:
        classes: the current classes.

    Rows can be renamed in place (double-click or F2), reordered by drag and drop or Up/Down, recoloured,
    added and deleted. ``Import…`` replaces the list with a ``classes.json`` (classes matched to the old
    ones by name keep their labels, others are deleted); ``Export…`` writes the edited list.
    """

    def __init__(self, classes: ClassSpec, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit classes")
        self.resize(460, 480)
        self.original = classes
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Double-click to rename; drag or Up/Down to reorder. Reordering or deleting relabels saved label maps."))
        self.list = QListWidget()
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.model().rowsMoved.connect(lambda *_: self._validate())
        lay.addWidget(self.list, 1)
        grid = QGridLayout()
        self.btn_add = QPushButton("Add")
        self.btn_delete = QPushButton("Delete")
        self.btn_color = QPushButton("Colour…")
        self.btn_up = QPushButton("Up")
        self.btn_down = QPushButton("Down")
        self.btn_import = QPushButton("Import classes.json…")
        self.btn_export = QPushButton("Export classes.json…")
        for i, (b, slot) in enumerate(
            (
                (self.btn_add, self.add_class),
                (self.btn_delete, self.delete_selected),
                (self.btn_color, self.pick_color),
                (self.btn_up, lambda: self.move_selected(-1)),
                (self.btn_down, lambda: self.move_selected(1)),
                (self.btn_import, self.ask_import),
                (self.btn_export, self.ask_export),
            )
        ):
            b.clicked.connect(slot)
            grid.addWidget(b, i // 3, i % 3)
        lay.addLayout(grid)
        # The summary and the error scroll inside a fixed height: the buttons never move as the summary grows.
        self.changes = QLabel()
        self.changes.setWordWrap(True)
        self.changes.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        box = QWidget()
        box_lay = QVBoxLayout(box)
        box_lay.setContentsMargins(0, 0, 0, 0)
        box_lay.addWidget(self.changes)
        box_lay.addWidget(self.error)
        box_lay.addStretch(1)
        self.summary_area = QScrollArea()
        self.summary_area.setWidgetResizable(True)
        self.summary_area.setFrameShape(QFrame.Shape.NoFrame)
        self.summary_area.setWidget(box)
        self.summary_area.setFixedHeight(5 * self.fontMetrics().lineSpacing() + 8)
        lay.addWidget(self.summary_area)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list, self.delete_selected, context=Qt.ShortcutContext.WidgetShortcut)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self._fill([(n, c, i) for i, (n, c) in enumerate(zip(classes.names, classes.colors))])

    # -- rows ---------------------------------------------------------------------------------
    def _fill(self, rows: list[tuple[str, tuple[int, int, int], int]]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for name, color, origin in rows:
            self.list.addItem(self._item(name, color, origin))
        self.list.blockSignals(False)
        if rows:
            self.list.setCurrentRow(0)
        self._validate()

    @staticmethod
    def _item(name: str, color, origin: int) -> QListWidgetItem:
        it = QListWidgetItem(color_icon(tuple(color)), name)
        it.setFlags(it.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsDragEnabled)
        it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsDropEnabled)
        it.setData(_ORIGIN, int(origin))
        it.setData(_COLOR, tuple(int(v) for v in color))
        return it

    def _rows(self) -> list[tuple[str, tuple[int, int, int], int]]:
        return [
            (self.list.item(i).text().strip(), tuple(self.list.item(i).data(_COLOR)), int(self.list.item(i).data(_ORIGIN)))
            for i in range(self.list.count())
        ]

    def _on_item_changed(self, _item) -> None:
        self._preview_colours()
        self._validate()

    def _preview_colours(self) -> None:
        """Show the colours the edit will be applied with: a class renamed but left in its old colour gets a new,
        contrasting one at once (:func:`~segstudio.gui.state_models.recolour_renamed`), so the
        editor never shows a colour that changes on OK."""

        try:
            edited = self.classes()
        except ValueError:
            return
        final = recolour_renamed(self.original, edited, self.mapping())
        self.list.blockSignals(True)
        for row, (a, b) in enumerate(zip(edited.colors, final.colors)):
            if tuple(a) != tuple(b):
                it = self.list.item(row)
                it.setData(_COLOR, tuple(int(v) for v in b))
                it.setIcon(color_icon(tuple(b)))
        self.list.blockSignals(False)

    def _validate(self) -> bool:
        try:
            self.classes()
        except ValueError as exc:
            self.error.setText(str(exc))
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            return False
        self.error.setText("")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)
        relabel = self.needs_relabel()
        self.changes.setText(
            ("<b>Saved label maps will be relabelled:</b> " if relabel else "No label map changes: ") + self.describe_changes()
        )
        return True

    def add_class(self, name: str | None = None, color: tuple[int, int, int] | None = None) -> None:
        """Append a new class (default name ``class N``, an unused palette colour)."""
        names = {r[0] for r in self._rows()}
        if not name:
            k = self.list.count()
            while f"class {k}" in names:
                k += 1
            name = f"class {k}"
        if color is None:
            used = {r[1] for r in self._rows()}
            color = next((c for c in default_palette(255)[1:] if c not in used), (255, 0, 255))
        self.list.addItem(self._item(name, color, -1))
        self.list.setCurrentRow(self.list.count() - 1)
        self._validate()

    def rename(self, row: int, name: str) -> None:
        """Rename the class in ``row``."""
        self.list.item(row).setText(name)

    def set_color(self, row: int, color: tuple[int, int, int]) -> None:
        """Recolour the class in ``row`` (``(r, g, b)``, 0..255)."""
        it = self.list.item(row)
        it.setData(_COLOR, tuple(int(v) for v in color))
        it.setIcon(color_icon(tuple(color)))
        self._validate()

    def pick_color(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        c = QColorDialog.getColor(QColor(*self.list.item(row).data(_COLOR)), self, "Class colour")
        if c.isValid():
            self.set_color(row, (c.red(), c.green(), c.blue()))

    def move(self, row: int, delta: int) -> None:
        """Move the class in ``row`` by ``delta`` rows (clamped)."""
        new = min(max(row + delta, 0), self.list.count() - 1)
        if new != row:
            it = self.list.takeItem(row)
            self.list.insertItem(new, it)
            self.list.setCurrentRow(new)
            self._validate()

    def move_selected(self, delta: int) -> None:
        if self.list.currentRow() >= 0:
            self.move(self.list.currentRow(), delta)

    def delete(self, row: int) -> None:
        """Delete the class in ``row`` (its pixels become unlabelled when applied)."""
        self.list.takeItem(row)
        self._validate()

    def delete_selected(self) -> None:
        if self.list.currentRow() >= 0:
            self.delete(self.list.currentRow())

    # -- import / export -------------------------------------------------------------------------
    def import_classes(self, path: str | Path) -> None:
        """Replace the list with ``path``'s classes; those named like an original class keep its labels.

        Raises:
            ValueError: the file is not a valid ``classes.json`` (the list is unchanged).
        """
        imported = load_classes(path)
        old = {n: i for i, n in enumerate(self.original.names)}
        self._fill([(n, c, old.get(n, -1)) for n, c in zip(imported.names, imported.colors)])

    def export_classes(self, path: str | Path) -> Path:
        """Write the edited list as ``classes.json`` (atomically).

        Raises:
            ValueError: the list is invalid (empty or repeated names).
        """
        return save_classes(path, self.classes())

    def ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import classes", "", "classes.json (*.json)")
        if path:
            try:
                self.import_classes(path)
            except ValueError as exc:
                QMessageBox.warning(self, "Import classes", str(exc))

    def ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export classes", "classes.json", "classes.json (*.json)")
        if path:
            try:
                self.export_classes(path)
            except (ValueError, OSError) as exc:
                QMessageBox.warning(self, "Export classes", str(exc))

    # -- result ------------------------------------------------------------------------------------
    def classes(self) -> ClassSpec:
        """The edited class list.

        Raises:
            ValueError: empty list, empty or repeated names.
        """
        rows = self._rows()
        if not rows:
            raise ValueError("keep at least one class")
        return ClassSpec(tuple(r[0] for r in rows), tuple(r[1] for r in rows))

    def mapping(self) -> np.ndarray:
        """uint8 (256,) old class id → new class id; deleted classes (and ids beyond them) → IGNORE_INDEX."""
        lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        for new, (_, _, origin) in enumerate(self._rows()):
            if origin >= 0:
                lut[origin] = new
        return lut

    def needs_relabel(self) -> bool:
        """True when an existing class changed id or was deleted (label maps must be rewritten)."""
        lut = self.mapping()
        k = self.original.num_classes
        return not np.array_equal(lut[:k], np.arange(k, dtype=np.uint8))

    def describe_changes(self) -> str:
        """A short summary of the id changes for the confirmation dialog."""
        lut = self.mapping()
        new = self.classes()
        moved = [f"{n} {i}→{lut[i]}" for i, n in enumerate(self.original.names) if lut[i] != IGNORE_INDEX and lut[i] != i]
        deleted = [n for i, n in enumerate(self.original.names) if lut[i] == IGNORE_INDEX]
        parts = []
        if moved:
            parts.append("new ids: " + ", ".join(moved))
        if deleted:
            parts.append("deleted (pixels become unlabelled): " + ", ".join(deleted))
        renamed = [f"{self.original.names[o]}→{n}" for (n, _, o) in self._rows() if o >= 0 and n != self.original.names[o]]
        if renamed:
            parts.append("renamed: " + ", ".join(renamed))
        added = [n for (n, _, o) in self._rows() if o < 0]
        if added:
            parts.append("added: " + ", ".join(added))
        parts.append(f"{new.num_classes} classes in all")
        return "; ".join(parts)
