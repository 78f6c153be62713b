"""The questions the app asks the user, in one replaceable object.

:class:`Prompts` wraps the modal dialogs that :class:`~segstudio.gui.state.ProjectState` and the window
need (warnings, yes/no questions, picking a model for a folder, a read-only folder, unsaved edits on quit).
Tests and headless runs replace single methods (``state.prompts.ask_yes_no = lambda *a: True``) instead of
patching Qt; every method returns plain Python values.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

READ_ONLY_SEPARATE = "separate"
"""Answer of :meth:`Prompts.read_only_folder`: keep labels in a separate, writable folder."""
READ_ONLY_VIEW = "view"
"""Answer of :meth:`Prompts.read_only_folder`: open for viewing; edits stay in memory until saved elsewhere."""
QUIT_SAVE_ELSEWHERE = "save elsewhere"
QUIT_DISCARD = "discard"
QUIT_CANCEL = "cancel"


class Prompts:
    """Modal questions, parented to ``parent`` (the main window).

    Args:
        parent: the dialogs' parent widget (``None`` is allowed).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    def warning(self, text: str) -> None:
        """A warning the user must see (not for routine status messages)."""
        QMessageBox.warning(self.parent, "SegStudio", text)

    def info(self, text: str) -> None:
        QMessageBox.information(self.parent, "SegStudio", text)

    def error(self, text: str) -> None:
        QMessageBox.critical(self.parent, "SegStudio", text)

    def ask_yes_no(self, title: str, text: str, default_yes: bool = False) -> bool:
        """Yes/No question; True for Yes."""
        yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
        return QMessageBox.question(self.parent, title, text, yes | no, yes if default_yes else no) == yes

    def ask_recover(self, image_name: str, edits: int, torn: bool) -> bool:
        """Restore the unsaved edits a crash left in ``image_name``'s journal? True to restore."""
        extra = "\nThe edit in progress when SegStudio stopped was incomplete and is left out." if torn else ""
        return self.ask_yes_no(
            "SegStudio — recover unsaved edits",
            f"SegStudio stopped before the labels of {image_name} were saved.\n"
            f"{edits} finished edit(s) were recorded. Restore them?{extra}\n\n"
            "Choose No to open the labels as last saved (the recorded edits are kept aside in labels/.journal).",
            default_yes=True,
        )

    def choose_model(self, folder: Path, labels: list[str], why: str) -> int | None:
        """Pick the model for a newly opened ``folder`` among ``labels`` (the model picker's entries).

        Returns the chosen index, or ``None`` to open the folder without a model.
        """
        items = list(labels) + ["(no model — label by hand)"]
        item, ok = QInputDialog.getItem(
            self.parent, "SegStudio — model for this folder", f"{why}\n\nWhich model should predict {folder.name}?", items, 0, False
        )
        if not ok or item == items[-1]:
            return None
        return items.index(item)

    def read_only_folder(self, folder: Path) -> str:
        """``folder`` cannot be written: :data:`READ_ONLY_SEPARATE` or :data:`READ_ONLY_VIEW`."""
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("SegStudio — read-only folder")
        box.setText(
            f"{folder} cannot be written: labels could not be saved beside the images.\n\n"
            "Keep the labels (and the project file and model versions) in a separate folder you choose, "
            "or open it just for viewing (edits stay in memory; on quit you can still save them elsewhere)?"
        )
        sep = box.addButton("Separate labels folder…", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("View only", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return READ_ONLY_SEPARATE if box.clickedButton() is sep else READ_ONLY_VIEW

    def pick_folder(self, title: str, start: Path | None = None) -> Path | None:
        """A folder chosen by the user, or ``None``."""
        folder = QFileDialog.getExistingDirectory(self.parent, title, str(start or Path.home()))
        return Path(folder) if folder else None

    def unsaved_on_quit(self, count: int, why: str) -> str:
        """``count`` images have edits that could not be saved (``why``) and their folder is being closed (quit, or
        another folder opened): one of ``QUIT_*``."""
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("SegStudio — unsaved edits")
        box.setText(
            f"The edits of {count} image(s) are not saved: {why}\n\nSave them to another folder before this folder is closed?"
        )
        save = box.addButton("Save elsewhere…", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard edits", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return QUIT_SAVE_ELSEWHERE if clicked is save else QUIT_DISCARD if clicked is discard else QUIT_CANCEL
