"""The prediction side of :class:`~segstudio.gui.state.ProjectState`: predicting images and applying results.

:class:`PredictController` runs the model on the current image or the folder (one worker job through
:meth:`ProjectState.start <segstudio.gui.state.ProjectState.start>`), and applies a prediction to a document
by the labeller's rules (see :mod:`segstudio.gui.state`): only when the model is still the one in use and
its classes map onto the project's by name (:func:`model_fits`, :func:`~segstudio.core.class_mapping.class_lut`),
only on pixels no person decided or accepted, as one undoable step on an edited image (written to that
image's crash journal), else the image is marked stale with the reason.

``ProjectState`` owns the one ``PredictController`` (a private collaborator, not a second owner of the
state): it reads and changes the state only on ``ProjectState``'s behalf, emits no signal itself (it calls
``ProjectState``'s methods, which emit), and nothing but ``ProjectState`` calls it; widgets and controllers
keep calling :meth:`ProjectState.predict_current`, :meth:`ProjectState.apply_prediction`... .
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from segstudio.core import ClassSpec, Document
from segstudio.core.document import SOURCE_NONE, SOURCE_PREDICTED, SOURCE_SAVED
from segstudio.core.history import make_patch
from segstudio.core.labels import IGNORE_INDEX, validate_label_map
from segstudio.core.provenance import PROV_MODEL, PROV_NONE
from segstudio.engine import Cancelled, LoadedModel
from segstudio.gui.jobs import tile_reporter
from segstudio.gui.workers import Job
from segstudio.io import label_path_for
from segstudio.core.class_mapping import match_classes

log = logging.getLogger(__name__)


class PredictionFailure:
    """Result a predict worker emits for an image it could not predict (``message`` says why)."""

    def __init__(self, message: str) -> None:
        self.message = message


def model_fits(
    model: LoadedModel | None, classes: ClassSpec | None, model_label: str = "", aliases: dict[str, str] | None = None
) -> tuple[bool, str]:
    """Whether ``model``'s classes map onto the project's ``classes`` by name (following the project's renames),
    and why not.

    Args:
        model: the model (``None``: no model in use).
        classes: the project's classes (``None``: any model fits).
        model_label: the model's picker label, for the message.
        aliases: the project's renames, ``{former name: current name}`` (:attr:`ProjectState.class_aliases`).

    Returns:
        ``(True, "")`` when the class lists are the same or share at least one name, else ``(False, why)``
        with a sentence for the status bar.
    """
    if model is None:
        return False, "no model in use: pick one in the Model dock"
    if classes is None:
        return True, ""
    m = match_classes(model.classes, classes, aliases)
    if m.same or m.matched:
        return True, ""
    shown = ", ".join(model.classes.names[:5]) + ("…" if model.classes.num_classes > 5 else "")
    return False, (
        f"{model_label or model.display_name} predicts {shown}, none of the project's classes "
        f"({', '.join(classes.names[:5])}): its prediction is not shown. Pick a model made for these "
        "classes, or fine-tune (which gives the model the project's classes)."
    )


class PredictController:
    """Predicts images and applies predictions for its :class:`~segstudio.gui.state.ProjectState` (see the
    module docstring).

    Args:
        state: the owner; read for the folder, documents, classes, model and predictor, and called to start
            the job, mark images stale or failed and tell the user.
    """

    def __init__(self, state: ProjectState) -> None:  # noqa: F821 (the owner; importing it would make a circle)
        self._state = state
        self._pending: list[tuple] = []  # predictions that arrived during a stroke (applied when it ends)

    def needs_prediction(self, doc: Document) -> bool:
        """See :meth:`ProjectState.needs_prediction <segstudio.gui.state.ProjectState.needs_prediction>`."""
        st = self._state
        if st.predictor is None:
            return False
        undecided = doc.source == SOURCE_NONE or (doc.dirty and (doc.provenance.map == PROV_NONE).any())
        if not undecided and doc.path not in st.stale:
            return False
        return st.model_fits()[0]

    def folder_todo(self) -> list[Path]:
        """The images Predict folder predicts: without saved labels, stale, or edited and unsaved."""
        st = self._state
        return [
            p for p in st.paths
            if not label_path_for(p).is_file() or p in st.stale or (p in st.docs and st.docs[p].dirty)
        ]

    def predict_paths(self, paths: list[Path]) -> bool:
        """See :meth:`ProjectState.predict_paths <segstudio.gui.state.ProjectState.predict_paths>`."""
        st = self._state
        if st.predictor is None or not paths:
            return False
        fits, why = st.model_fits()
        if not fits:
            for p in paths:
                if p in st.docs and st.has_unaccepted_prediction(st.docs[p]):
                    st.set_stale(p, why)
            st.say(why)
            return False
        predictor, model = st.predictor, st.model
        images = {p: st.docs[p].image for p in paths if p in st.docs}
        paths = list(paths)

        def work(job: Job):
            # The engine's folder pipeline (segstudio.engine.predict_folder, the same as `segstudio predict`):
            # open documents' images are passed as arrays, the others decoded on its prefetch thread.
            from segstudio.engine.predict_folder import predict_images

            ok, failed, current = 0, 0, 0

            def on_tile(done: int, total: int) -> None:  # per-tile progress of the image being predicted
                tile_reporter(job, paths[current].name, current, len(paths))(done, total)

            job.report(0, len(paths), f"predicting {paths[0].name} (1/{len(paths)})")
            with predictor.tile_progress(on_tile):
                for res in predict_images(predictor, [images.get(p, p) for p in paths], cancel=job.cancel_token):
                    p = paths[res.index]
                    current = min(res.index + 1, len(paths) - 1)
                    job.report(res.index + 1, len(paths), f"predicted {p.name} ({res.index + 1}/{len(paths)})")
                    if res.error is not None:  # one bad image never stops the others; it is counted and marked
                        if isinstance(res.error, Cancelled):
                            raise res.error
                        log.warning("predicting %s failed: %s", p, res.error)
                        failed += 1
                        job.emit_result(p, PredictionFailure(str(res.error)))
                        continue
                    ok += 1
                    job.emit_result(p, res.labels)
            return ok, failed

        job = Job("predict", work)
        job.paths = paths
        job.rejected = []

        def on_result(p, out) -> None:
            if isinstance(out, PredictionFailure):
                st.mark_failed(p, f"{p.name}: not predicted ({out.message})")
            elif not st.apply_prediction(p, out, model):
                job.rejected.append(p)

        def on_finished(out) -> None:
            ok, failed = out
            text = f"predicted {ok}" + (f", failed {failed}" if failed else "") + f" of {len(paths)} image(s)"
            if job.rejected:
                text += f"; {len(job.rejected)} not applied: {st.stale.get(job.rejected[0], 'classes do not fit')}"
            st.say(text)

        return st.start(job, on_result=on_result, on_finished=on_finished)  # the MAIN slot

    def apply(self, path: Path, labels: np.ndarray, model: LoadedModel | None) -> Document | bool:
        """Apply ``model``'s prediction ``labels`` (uint8 (H, W), model ids) to image ``path``'s document.

        Returns:
            The document whose labels were filled (the owner then tells its observers), True when the result
            was put aside until the stroke in progress ends (:meth:`flush_pending`), False when it was not
            applied (another folder's image, an unreadable one, or a model / classes that do not fit: the
            image is marked stale with the reason).
        """
        st = self._state
        if path not in st.paths:
            return False  # another folder's result
        doc = st.docs.get(path)
        if doc is not None and doc is st.current_doc() and st.is_editing():
            self._pending.append((path, labels, model))  # never under a stroke in progress
            return True
        if model is not st.model:
            if doc is not None:
                st.set_stale(path, "predicted by a model no longer in use")
            return False
        fits, why = st.model_fits(model)
        if not fits:
            if doc is not None:
                st.set_stale(path, why)
            st.say(why)
            return False
        mapped = labels if model.classes.names == st.classes.names else st.model_lut(model)[labels]
        if doc is None:
            doc = st.load_doc(path)
            if doc is None:
                return False
        elif doc.source == SOURCE_SAVED and not doc.dirty and path != st.paths[st.index] and path not in st.stale:
            return False  # a folder run leaves other images' saved labels alone
        try:
            validate_label_map(mapped, st.classes.num_classes, doc.shape)
        except ValueError as exc:
            st.set_stale(path, f"prediction not usable: {exc}")
            return False
        keep = st.human_mask(doc)
        new = np.where(keep, doc.labels, mapped).astype(np.uint8)
        if doc.dirty:  # unsaved edits: fill the other pixels as one undoable step (edits, history and dirty stay)
            doc.apply_patch(make_patch(doc.labels, 0, 0, new), PROV_MODEL)
        else:
            prov = doc.provenance.map.copy()
            doc.set_labels(new, SOURCE_PREDICTED if (~keep).any() else doc.source)
            doc.provenance.map = np.where(keep, prov, np.where(new != IGNORE_INDEX, PROV_MODEL, PROV_NONE)).astype(np.uint8)
        if (~keep).any() and doc.source == SOURCE_NONE:
            doc.source = SOURCE_PREDICTED
        st.set_stale(path, "")
        st.failed.pop(path, None)
        return doc

    def take_pending(self) -> list[tuple]:
        """The ``(path, labels, model)`` predictions put aside during a stroke, oldest first (the list empties)."""
        pending, self._pending = self._pending, []
        return pending
