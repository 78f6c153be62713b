"""Auto-label, then review: predict every image of the folder without saved labels, order them most
uncertain first, and walk through them from the keyboard.

Model ▸ *Predict folder and review* (Ctrl+Shift+R) runs one worker job in the state's model slot: for each
image the model's probabilities give both its label map (applied through
:meth:`~segstudio.gui.state.ProjectState.apply_prediction`, which never overwrites a pixel a person decided)
and its mean uncertainty (entropy, :mod:`segstudio.engine.uncertainty`; Settles 2009). The queue is the images
ranked by :func:`~segstudio.engine.uncertainty.rank_by_uncertainty`. While the queue is open, on the canvas:

* **Enter** accepts the image as shown: its labels are saved (every pixel) and its status becomes *reviewed*
  (*corrected* when it was edited);
* any edit marks it *corrected* (the project controller does that for every edit);
* **Space** skips it (nothing saved), **Backspace** goes back to the previous one;
* **Esc** closes the queue.

Enter, Backspace and Esc keep their tool meaning while a polygon or lasso is in progress or clicks of the
click tool are pending (Enter writes the object's mask, Backspace removes the last click, Esc drops the clicks).
While the queue is open, the click tool's prefetch encodes the queue's next image, not the file list's
(the canvas's :attr:`~segstudio.gui.canvas.Canvas.next_image_provider` is :meth:`ReviewQueue.next_path`
until the queue closes). Accepted and corrected images have saved labels, which is what fine-tuning trains on; skipped ones do not. The Project view counts
images per status.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal

from segstudio.engine.uncertainty import mean_uncertainty, rank_by_uncertainty, uncertainty_map
from segstudio.gui.jobs import MAIN
from segstudio.gui.tools import ClickTool
from segstudio.gui.workers import Job
from segstudio.io import ImageReadError, label_path_for, read_image

log = logging.getLogger(__name__)

STATUS_REVIEWED, STATUS_CORRECTED = "reviewed", "corrected"


class ReviewQueue(QObject):
    """The review queue (see the module docstring): drives the canvas through the project state.

    Args:
        state: the :class:`~segstudio.gui.state.ProjectState`.
        canvas: the :class:`~segstudio.gui.canvas.Canvas` whose keys it takes while a queue is open.
        parent: the QObject owning this controller.

    Attributes:
        queue: image paths, most uncertain first (empty: no review open).
        pos: index in ``queue`` of the image shown.
        scores: mean uncertainty in [0, 1] per queued path.
        outcome: ``{path: "reviewed" | "corrected" | "skipped"}`` for this queue.

    Signals:
        changed(): the queue, the position or an outcome changed.
    """

    changed = Signal()
    _KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space, Qt.Key.Key_Backspace, Qt.Key.Key_Escape)

    def __init__(self, state, canvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state, self.canvas = state, canvas
        self.queue: list[Path] = []
        self.pos = -1
        self.scores: dict[Path, float] = {}
        self.outcome: dict[Path, str] = {}
        self._saved_provider = None  # the canvas's next-image provider while the queue is open
        self.act_review = None  # Model ▸ Predict folder and review (the window's action, set by the window)
        canvas.installEventFilter(self)
        self.state.folderOpened.connect(lambda _f: self.close())

    @property
    def active(self) -> bool:
        return 0 <= self.pos < len(self.queue)

    def current(self) -> Path | None:
        return self.queue[self.pos] if self.active else None

    def next_path(self) -> Path | None:
        """The image Enter / Space would show: the queue's next one, or ``None`` at the end of the queue, when
        no queue is open, or when that image could not be read (the click tool's prefetch asks this while the
        queue is open)."""
        i = self.pos + 1
        if not self.active or i >= len(self.queue) or self.queue[i] in self.state.failed:
            return None
        return self.queue[i]

    def _follow_queue(self, on: bool) -> None:
        """Make the canvas's next image the queue's (``on``), or give back the provider it had before."""
        cv = self.canvas
        if on and self._saved_provider is None:
            self._saved_provider = cv.next_image_provider
            cv.next_image_provider = self.next_path
        elif not on and self._saved_provider is not None:
            if cv.next_image_provider == self.next_path:  # nobody replaced ours meanwhile
                cv.next_image_provider = self._saved_provider
            self._saved_provider = None

    # -- building the queue --------------------------------------------------------------------------
    def start(self) -> bool:
        """Predict the folder's images without saved labels (worker, model slot) and open the review queue,
        most uncertain first. False when there is no folder, no model, nothing to review or the slot is busy."""
        st = self.state
        if st.predictor is None or not st.paths:
            st.say("open a folder and load a model first")
            return False
        fits, why = st.model_fits()
        if not fits:
            st.say(why)
            return False
        st.autosave()  # a person's unsaved pixels are on disk before the run
        todo = [p for p in st.paths if not label_path_for(p).is_file()]
        if not todo:
            st.say("every image has saved labels: nothing to review")
            return False
        predictor, model = st.predictor, st.model
        images = {p: st.docs[p].image for p in todo if p in st.docs}

        def work(job: Job):
            for i, p in enumerate(todo):
                job.cancel_token.check()
                job.report(i, len(todo), f"predicting for review {p.name} ({i + 1}/{len(todo)})")
                try:
                    image = images.get(p)
                    if image is None:
                        image = read_image(p)
                    proba = predictor.predict_proba(image)
                except ImageReadError as exc:
                    log.warning("%s", exc)
                    continue
                labels = np.argmax(proba, axis=0).astype(np.uint8)
                job.emit_result(p, (labels, mean_uncertainty(uncertainty_map(proba, "entropy"))))
            return len(todo)

        scores: dict[Path, float] = {}

        def on_result(p, out) -> None:
            labels, score = out
            if st.apply_prediction(p, labels, model):
                scores[p] = score

        def on_finished(_n) -> None:
            self.open([p for p, _ in rank_by_uncertainty(scores)], scores)

        job = Job("predict", work)
        job.paths = todo
        return st.start(job, MAIN, on_result=on_result, on_finished=on_finished)

    def open(self, paths: list[Path], scores: dict[Path, float] | None = None) -> None:
        """Open a queue of ``paths`` (already ordered) and show the first."""
        self.queue = [p for p in paths if p in self.state.paths]
        self.scores = dict(scores or {})
        self.outcome = {}
        self.pos = -1
        if not self.queue:
            self._follow_queue(False)
            self.state.say("nothing to review")
            self.changed.emit()
            return
        self._follow_queue(True)  # before the first image is shown: its prefetch already follows the queue
        self._show(0)

    def close(self) -> None:
        """Leave review mode (Esc, or another folder opened)."""
        self._follow_queue(False)
        if self.queue:
            self.queue, self.pos = [], -1
            self.changed.emit()

    # -- keys ------------------------------------------------------------------------------------------
    def accept(self) -> bool:
        """Enter: save the shown image's labels (every pixel) and mark it *reviewed*, or *corrected* when it was
        edited; then the next image. False when the save failed (the image stays)."""
        doc = self.state.current_doc()
        if not self.active or doc is None or doc.path != self.current():
            return False
        edited = doc.edits > 0
        if not self.state.save_doc(doc, accept=True, explicit=True):
            return False
        status = STATUS_CORRECTED if edited else STATUS_REVIEWED
        if self.state.book is not None:
            self.state.book.set_image_status(doc.path, status)
        self.outcome[doc.path] = status
        self.state.documentChanged.emit(doc)
        self._show(self.pos + 1)
        return True

    def skip(self) -> None:
        """Space: the next image; nothing is saved for this one (unless a person edited it: autosave keeps
        their pixels, as on any image change)."""
        if self.active:
            self.outcome.setdefault(self.current(), "skipped")
            self._show(self.pos + 1)

    def back(self) -> None:
        """Backspace: the previous image of the queue."""
        if self.active and self.pos > 0:
            self._show(self.pos - 1)

    def _show(self, pos: int) -> None:
        if pos >= len(self.queue):
            counts = {k: sum(v == k for v in self.outcome.values()) for k in ("reviewed", "corrected", "skipped")}
            self.state.say("review done: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
            self.queue, self.pos = [], -1
            self._follow_queue(False)
            self.changed.emit()
            return
        self.pos = pos
        path = self.queue[pos]
        row = self.state.paths.index(path)
        if row != self.state.index:
            self.state.set_index(row)  # the image list follows the state
        self.canvas.setFocus()
        score = self.scores.get(path)
        self.state.say(
            f"review {pos + 1}/{len(self.queue)}: {path.name}"
            + (f" (uncertainty {score:.3f})" if score is not None else "")
            + " — Enter accept · Space skip · Backspace back · Esc stop"
        )
        self.changed.emit()

    def eventFilter(self, obj, event) -> bool:
        t = event.type()
        if not self.active or t not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        key = event.key()
        if key not in self._KEYS or event.modifiers() not in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier):
            return False
        cv = self.canvas
        if key != Qt.Key.Key_Space and (cv.shape_points or (isinstance(cv.active_tool, ClickTool) and cv.active_tool.clicks)):
            return False  # Enter / Backspace / Esc finish or edit the polygon or the clicked object in progress
        if t == QEvent.Type.ShortcutOverride:
            event.accept()  # the key comes to us as a KeyPress, not to the Enter/Esc shortcuts
            return True
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept()
        elif key == Qt.Key.Key_Space:
            self.skip()
        elif key == Qt.Key.Key_Backspace:
            self.back()
        else:
            self.close()
            self.state.say("review stopped")
        return True
