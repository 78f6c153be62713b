"""Help ▸ Keyboard shortcuts: a table generated from the window's real ``QAction`` objects.

Because the rows are read from the actions at the moment the dialog opens, the table can never
disagree with the shortcuts that actually work.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from segstudio.gui.tools import TOOL_TABLE

#: Mouse gestures of the canvas (not actions, so listed under the table): the view's, then each tool's
#: (:attr:`Tool.mouse_help <segstudio.gui.tools.base.Tool.mouse_help>`, from the tool table).
MOUSE_HELP = "Mouse: left button uses the tool · middle or right drag pans · wheel zooms at the cursor · " + " · ".join(
    cls.mouse_help for cls in TOOL_TABLE if cls.mouse_help
)


def action_shortcuts(widget: QWidget) -> list[tuple[str, str, str]]:
    """``(group, action text, shortcuts)`` for every action of ``widget`` (and its menus) with a shortcut.

    ``group`` is the title of the menu holding the action (``""`` for actions only bound to a key);
    shortcuts are in the platform's native text, several joined with ``", "``. Sorted by group, then
    the order the actions were added.
    """
    menus: dict[int, str] = {}
    if hasattr(widget, "menuBar"):
        for m_act in widget.menuBar().actions():
            menu = m_act.menu()
            if menu is not None:
                for a in menu.actions():
                    menus.setdefault(id(a), m_act.text().replace("&", ""))
    seen: set[int] = set()
    rows: list[tuple[str, str, str]] = []
    for a in widget.findChildren(QAction) + list(widget.actions()):
        if id(a) in seen or not a.shortcuts():
            continue
        seen.add(id(a))
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in a.shortcuts())
        rows.append((menus.get(id(a), ""), a.text().replace("&", "").rstrip("…"), keys))
    order = {g: i for i, g in enumerate(dict.fromkeys(r[0] for r in rows if r[0]))}
    return sorted(rows, key=lambda r: order.get(r[0], len(order)))


def duplicate_shortcuts(widget: QWidget) -> dict[str, list[str]]:
    """Key sequences bound to more than one action of ``widget``: ``{keys: [action texts]}`` (empty = none)."""
    by_key: dict[str, list[str]] = {}
    seen: set[int] = set()
    for a in widget.findChildren(QAction) + list(widget.actions()):
        if id(a) in seen:
            continue
        seen.add(id(a))
        for s in a.shortcuts():
            by_key.setdefault(s.toString(QKeySequence.SequenceFormat.PortableText), []).append(a.text())
    return {k: v for k, v in by_key.items() if len(v) > 1}


class ShortcutsDialog(QDialog):
    """Table of every keyboard shortcut of ``window`` (group, action, keys), read from its actions."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        lay = QVBoxLayout(self)
        rows = action_shortcuts(window)
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Shortcut"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                self.table.setItem(i, j, QTableWidgetItem(text))
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.table)
        note = QLabel(MOUSE_HELP)
        note.setWordWrap(True)
        note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(560, 640)
