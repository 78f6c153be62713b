"""The saving side of :class:`~segstudio.gui.state.ProjectState`: label files, read-only folders, crash journal.

:class:`SaveController` writes a document's labels (atomic, :func:`~segstudio.io.save_labels`) by the
labeller's rules (see :mod:`segstudio.gui.state`): an explicit save (Ctrl+S, Mark reviewed) accepts the whole
image; an autosave (leaving an image, fine-tuning, closing) writes only the pixels a person decided or
accepted before, the rest as unlabelled (:func:`labels_to_save`). It detects a read-only folder at open
(labels then go to a separate, writable folder, or are kept in memory), reports a save that cannot happen
once per reason instead of a dialog per image, and offers to save unsaved edits elsewhere on leaving the
folder. It keeps each edited image's crash journal (:class:`~segstudio.io.journal.Journal`, with the
provenance of its base beside it) and offers recovery when an image with a journal left by a crash is opened.

``ProjectState`` owns the one ``SaveController`` (a private collaborator, not a second owner of the state):
it reads and changes the state only on ``ProjectState``'s behalf, emits no signal itself (it calls
``ProjectState``'s methods, which emit, and tells it what was written), and nothing but ``ProjectState``
calls it; widgets and controllers keep calling :meth:`ProjectState.save_doc`, :meth:`ProjectState.autosave`... .
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from segstudio.core import Document
from segstudio.core.document import SOURCE_PREDICTED, SOURCE_SAVED
from segstudio.core.labels import IGNORE_INDEX, validate_label_map
from segstudio.core.provenance import PROV_HUMAN, PROV_MODEL, PROV_NONE, validate_provenance
from segstudio.gui.prompts import QUIT_CANCEL, QUIT_DISCARD, READ_ONLY_SEPARATE
from segstudio.io import label_path_for, read_index_png, save_labels
from segstudio.io.journal import Journal, JournalError, replay, replay_provenance
from segstudio.io.labels import write_index_png
from segstudio.io.project import folder_writable, make_work_folder

log = logging.getLogger(__name__)


def journal_provenance(journal: Journal) -> Path:
    """Provenance (uint8 PNG) of a journal's base record, beside it: recovery tells a person's pixels from a model's."""
    return journal.path.with_suffix(".prov.png")


def labels_to_save(doc: Document, keep: np.ndarray, accept: bool) -> tuple[np.ndarray, np.ndarray]:
    """The label map and provenance to write for ``doc``.

    Args:
        doc: the document.
        keep: bool (H, W), the pixels a person decided or accepted (:meth:`ProjectState.human_mask`).
        accept: the user accepts the whole image: every pixel is written as it is.

    Returns:
        ``(labels, provenance)``, uint8 (H, W) each: without ``accept``, the pixels outside ``keep`` are
        :data:`~segstudio.core.labels.IGNORE_INDEX` with provenance ``PROV_NONE``.
    """
    if accept:
        return doc.labels, doc.provenance.map
    labels = np.where(keep, doc.labels, IGNORE_INDEX).astype(np.uint8)
    prov = np.where(keep, doc.provenance.map, PROV_NONE).astype(np.uint8)
    return labels, prov


class SaveController:
    """Saves labels and keeps the crash journals for its :class:`~segstudio.gui.state.ProjectState` (see the
    module docstring).

    Args:
        state: the owner; read for the folder, documents and accepted pixels, and called to ask the user
            (``prompts``), tell the user (``say``) and save each document (``save_doc``).
    """

    def __init__(self, state: ProjectState) -> None:  # noqa: F821 (the owner; importing it would make a circle)
        self._state = state
        self._journals: dict[Path, Journal] = {}
        self.error_shown: str | None = None  # the last save failure told to the user (once per reason)

    def reset(self) -> None:
        """Forget the previous folder's journals and save failures (a folder is being opened)."""
        self._journals = {}
        self.error_shown = None

    # -- folders ------------------------------------------------------------------------------------
    def label_folder(self, folder: Path, paths: list[Path]) -> tuple[Path, list[Path], bool]:
        """Where the labels of ``folder``'s images go: ``(folder, paths, read_only)``.

        A writable folder holds its own labels. For a read-only one the user picks a separate labels folder
        (the images are linked there: the returned folder and paths are that folder's), or views it read-only
        (``read_only`` True: saves are kept in memory and offered elsewhere on leaving).
        """
        if folder_writable(folder):
            return folder, paths, False
        st = self._state
        if st.prompts.read_only_folder(folder) != READ_ONLY_SEPARATE:
            return folder, paths, True
        target = st.prompts.pick_folder(f"Separate labels folder for {folder.name}", Path.home())
        if target is None:
            return folder, paths, True
        try:
            return target, make_work_folder(paths, target), False
        except (OSError, ValueError) as exc:
            st.prompts.warning(f"Cannot use {target} for labels: {exc}\nOpening {folder.name} for viewing only.")
            return folder, paths, True

    def leave_folder(self) -> bool:
        """See :meth:`ProjectState.leave_folder <segstudio.gui.state.ProjectState.leave_folder>`."""
        st = self._state
        st.autosave()
        unsaved = [d for d in st.docs.values() if d.dirty]
        if not unsaved:
            return True
        choice = st.prompts.unsaved_on_quit(len(unsaved), self.error_shown or "the folder cannot be written")
        if choice == QUIT_CANCEL:
            return False
        if choice == QUIT_DISCARD:
            for d in unsaved:
                d.dirty = False
            return True
        target = st.prompts.pick_folder("Save the edited labels in…", st.folder)
        if target is None or not self.save_elsewhere(target):
            return False
        return True

    def save_elsewhere(self, target: Path) -> bool:
        """See :meth:`ProjectState.save_elsewhere <segstudio.gui.state.ProjectState.save_elsewhere>`."""
        st = self._state
        docs = [d for d in st.docs.values() if d.dirty]
        try:
            new_paths = make_work_folder([d.path for d in docs], target)
            for d, p in zip(docs, new_paths):
                labels, _ = labels_to_save(d, st.human_mask(d), accept=False)
                save_labels(p, labels, d.classes)
                d.dirty = False
        except (OSError, ValueError) as exc:
            st.prompts.error(f"Could not save into {target}: {exc}")
            return False
        st.say(f"saved the labels of {len(docs)} image(s) into {target}")
        return True

    # -- saving -------------------------------------------------------------------------------------
    def save(self, doc: Document, accept: bool, explicit: bool) -> tuple[bool, bool]:
        """Save ``doc`` (see :meth:`ProjectState.save_doc <segstudio.gui.state.ProjectState.save_doc>`).

        Returns:
            ``(ok, written)``: ``ok`` False when the labels could not be saved (the user was told);
            ``written`` True when a label file was written (the owner then emits ``labelsSaved``).
        """
        st = self._state
        if st.read_only:
            st.say(f"{st.source_folder} is read-only: labels of {doc.path.name} are kept in memory (save elsewhere on quit)")
            self.error_shown = "the folder is read-only"
            return False, False
        labels, prov = labels_to_save(doc, st.human_mask(doc), accept)
        lp = label_path_for(doc.path)
        if not accept and not (labels != IGNORE_INDEX).any() and not (prov != PROV_NONE).any() and not lp.is_file():
            doc.dirty = False  # nothing a person decided: nothing to save (an unreviewed prediction stays one)
            self.clear_journal(doc.path)
            return True, False
        try:
            save_labels(doc.path, labels, doc.classes)
        except (OSError, ValueError) as exc:
            text = f"Could not save labels of {doc.path.name}: {exc}\nYour edits are still open."
            if explicit:
                st.prompts.error(text)
            elif self.error_shown != str(exc):
                st.say(text.replace("\n", " "))
            self.error_shown = str(exc)
            return False, False
        if accept:
            st.accept_all(doc)
        doc.dirty = False
        if accept or not st.has_unaccepted_prediction(doc):
            doc.source = SOURCE_SAVED
        if st.book is not None:
            st.book.on_saved(doc, prov)  # provenance file, status, segstudio.json
        self.clear_journal(doc.path)  # saved: the journal has done its job
        st.say(f"saved {lp}" + ("" if accept else " (only the pixels you labelled)"))
        return True, True

    def autosave(self) -> None:
        """See :meth:`ProjectState.autosave <segstudio.gui.state.ProjectState.autosave>`."""
        st = self._state
        for doc in list(st.docs.values()):
            if doc.dirty:
                st.save_doc(doc, accept=False)
        if st.book is not None:
            st.book.save()

    # -- journal (crash safety) ----------------------------------------------------------------------
    def journal_edit(self, doc: Document) -> None:
        """Append ``doc``'s edit just finished to its journal (fsynced): the current pixels and provenance of the box
        the last undo-stack patch touched (for an undo, the last redo-stack patch), so replay is exact for strokes,
        fills, undo and redo; the whole map for a first edit or one after the history was cleared (a relabel)."""
        if not doc.dirty:
            return
        journal = self._journals.setdefault(doc.path, Journal(doc.path))
        patches = [p for p in doc.history.last_steps() if p is not None]
        try:
            if not journal.started or len(doc.history) <= 1 or not patches:
                self._start_journal(journal, doc)
            else:
                for p in patches:  # with who decided each pixel: a confirming stroke changes no value
                    journal.append_patch(p.y0, p.x0, doc.labels[p.slices], doc.provenance.map[p.slices])
        except OSError as exc:
            self._state.say(f"edits of {doc.path.name} are not crash-protected (journal: {exc})")

    def journal_snapshot(self, doc: Document) -> None:
        """Restart an edited ``doc``'s journal from its whole label map and provenance (fsynced).

        For a change that is not a person's edit, e.g. a prediction filling an edited image's undecided
        pixels: a patch after the base would be recovered as a person's pixels, a new base keeps each
        pixel's origin (recovery restores the filled pixels as the model's). Nothing for an unedited ``doc``.
        """
        if not doc.dirty:
            return
        journal = self._journals.setdefault(doc.path, Journal(doc.path))
        try:
            self._start_journal(journal, doc)
        except OSError as exc:
            self._state.say(f"edits of {doc.path.name} are not crash-protected (journal: {exc})")

    @staticmethod
    def _start_journal(journal: Journal, doc: Document) -> None:
        journal.start(doc.labels)
        write_index_png(journal_provenance(journal), doc.provenance.map)  # who made the base's pixels

    def clear_journal(self, path: Path) -> None:
        """Delete image ``path``'s journal and its base provenance (its labels are saved, or nothing is to save)."""
        journal = self._journals.pop(path, Journal(path))
        journal.clear()
        journal_provenance(journal).unlink(missing_ok=True)

    def offer_recovery(self, doc: Document) -> None:
        """Offer the edits a crash left in ``doc``'s journal (just loaded); restore them when the user agrees.

        An unusable journal, or one the user declines, is set aside (kept, never deleted).
        """
        st = self._state
        journal = Journal(doc.path)
        if not journal.exists():
            return
        contents = journal.read()
        try:
            labels = replay(contents, doc.shape)
            validate_label_map(labels, doc.classes.num_classes)
        except (JournalError, ValueError) as exc:
            kept = journal.set_aside()
            st.say(f"unsaved edits of {doc.path.name} found but not usable ({exc}); kept in {kept}")
            return
        if not st.prompts.ask_recover(doc.path.name, contents.num_edits, contents.torn):
            kept = journal.set_aside()
            st.say(f"recorded edits of {doc.path.name} not restored; kept in {kept}")
            return
        base_prov = None
        try:
            base_prov = validate_provenance(read_index_png(journal_provenance(journal)), doc.shape)
        except (OSError, ValueError):
            pass  # an older journal without provenance: every recovered pixel counts as the person's
        doc.set_labels(labels, SOURCE_SAVED)
        if base_prov is not None and contents.prov_patches:  # who decided each pixel, edit by edit
            try:
                doc.provenance.load(replay_provenance(contents, base_prov))
            except (JournalError, ValueError):
                doc.provenance.load(np.where(labels != contents.base, np.uint8(PROV_HUMAN), base_prov).astype(np.uint8))
        elif base_prov is not None:  # an older journal: pixels changed after the base are a person's
            doc.provenance.load(np.where(labels != contents.base, np.uint8(PROV_HUMAN), base_prov).astype(np.uint8))
        if base_prov is not None:
            if (doc.provenance.map == PROV_MODEL).any():
                doc.source = SOURCE_PREDICTED
        doc.dirty = True
        try:
            journal.resume(contents)
            self._journals[doc.path] = journal
        except OSError as exc:
            st.say(f"edits of {doc.path.name} are not crash-protected (journal: {exc})")
        st.say(f"restored {contents.num_edits} unsaved edit(s) of {doc.path.name}; save to keep them")
