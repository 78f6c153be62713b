"""``ProjectState``: the one owner (and only writer) of the open project's state in the GUI.

The state of the open project — folder, image paths, documents, classes, current class, model picker
entries, model + predictor, background jobs — lives here and nowhere else. Every change goes through a
method of :class:`ProjectState`, which emits a signal for it; the window, the canvas, the docks and the
controllers observe those signals and call methods, and none keeps a second copy that could go stale
(napari's ``Viewer`` events, Qt's model/view idea).

The labeller's rules it enforces (issue 17):

* **Only what a person touched or accepted becomes a training label.** Each pixel's origin is the
  document's provenance map (:mod:`segstudio.core.provenance`). Pixels painted by a person (or refined
  with CRF on their request) are saved; an *explicit* save (Ctrl+S, Mark reviewed) accepts the whole
  image; pixels read back from a label file were accepted before. Leaving an image autosaves only those
  pixels: an unreviewed prediction stays a prediction (its pixels are written as unlabelled).
* **A prediction never overwrites a person's pixels**, and is applied only when the model's classes map
  onto the project's by name; otherwise the image's overlay is marked *stale* and the user is told why.
* **A model change marks predictions stale** (the current image is re-predicted when its classes fit);
  **a class edit** relabels saved labels and shown predictions alike and carries through the model's class
  mapping: a renamed class keeps its id's lineage (:attr:`ProjectState.class_aliases`, kept in the project file,
  so the model's predictions of the old name still show and save as the renamed class), a new class maps to
  nothing until a fine-tune trains it, a deleted class's predictions become unlabelled with a notice on the
  canvas and the status bar (``classNotice``); the current class moves with the edit, and a renamed class
  gets a new, contrasting colour.
* **Opening a folder** picks that folder's own classes and model (its project file, its versions, the
  bundled model whose classes fit, else it asks) — nothing of the previous folder is inherited.
* **A read-only folder** is detected at open (labels can go to a separate, writable folder); saves that
  cannot happen are reported once, never as a dialog per image change; unsaved edits are offered a
  save elsewhere on quit.
* **One job runner** (:class:`~segstudio.gui.jobs.JobRunner`, owned here: :meth:`ProjectState.start`) starts every
  background job, the canvas tools' included (slots :data:`~segstudio.gui.jobs.TOOL_SLOT`); a job's failure
  always reaches the status bar and the log (``jobFailed``), never a success message.

Private collaborators, owned by ``ProjectState`` and called by nothing else, hold its saving, prediction and
training sides (:mod:`~segstudio.gui.state_save`, :mod:`~segstudio.gui.state_predict`,
:mod:`~segstudio.gui.state_train`) and its folder opening (:mod:`~segstudio.gui.state_folder`); they use its
public methods, and ``ProjectState`` stays the only owner and the only writer's entry point.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from segstudio.core import ClassSpec, Document
from segstudio.core.document import SOURCE_NONE, SOURCE_SAVED, DocumentEvent
from segstudio.core.labels import IGNORE_INDEX
from segstudio.core.provenance import PROV_CRF, PROV_HUMAN, PROV_MODEL, PROV_NONE
from segstudio.engine import (
    LoadedModel,
    Predictor,
    TrainConfig,
    finetune_config,
    list_versions,
    load_checkpoint,
    train_on_folder,
)
from segstudio.gui.jobs import MAIN, JobRunner
from segstudio.gui.prompts import Prompts
from segstudio.gui.state_folder import choose_classes_and_model
from segstudio.gui.state_models import (  # noqa: F401  (ModelEntry, contrasting_color: re-exported)
    ModelEntry, card_classes, class_notice_text, contrasting_color, recolour_renamed,
)
from segstudio.gui.state_predict import PredictController, model_fits
from segstudio.gui.state_save import SaveController
from segstudio.gui.state_train import TrainController
from segstudio.gui.workers import Job
from segstudio.io import (
    ImageReadError,
    label_path_for,
    list_images,
    read_image,
    read_index_png,
)
from segstudio.core.class_mapping import class_lut, follow_class_edit
from segstudio.io.project import (
    STATUS_CORRECTED,
    STATUS_REVIEWED,
    version_status,
)

log = logging.getLogger(__name__)

class ProjectState(QObject):
    """The open project's state and every change to it (see the module docstring).

    Args:
        parent: the main window (owner of the job threads and the dialogs' parent).
        prompts: the user questions (:class:`~segstudio.gui.prompts.Prompts`).

    Attributes (read them; change them only through the methods):
        folder: the open image folder (the separate labels folder of a read-only one), or ``None``.
        source_folder: the folder the user opened (differs from ``folder`` for a read-only folder).
        paths: its image files, in list order.
        index: row of the image shown (-1 before one is).
        docs: open documents by image path.
        classes: the project's classes (``None`` before a folder or model gives them).
        current_class: the class id painted with.
        models: the model picker's entries (:class:`ModelEntry`).
        model, model_label: the model in use and its picker label.
        predictor: :class:`~segstudio.engine.Predictor` of ``model`` on ``device``.
        finetune_config: the one-click fine-tune recipe (the window's; tests shorten it).
        read_only: True when labels cannot be saved (a read-only folder opened for viewing).
        stale: ``{image path: why}`` of images whose shown prediction is out of date.
        failed: ``{image path: why}`` of images that could not be read or predicted.
        jobs: running jobs by slot (:data:`MAIN` = the model work; others replace their predecessor).
        book: the project bookkeeper (:class:`~segstudio.gui.project_view.ProjectController`), called on
            open / load / predict / save; ``None`` until the window sets it.

    Signals:
        folderOpened(Path): a folder was opened (docks reset themselves).
        classesChanged(ClassSpec), currentClassChanged(int), modelsChanged(), modelChanged(object model, str label),
        documentChanged(object doc or None): the document shown changed or its labels were replaced, indexChanged(int):
            :meth:`set_index` showed that row (after loading and starting its prediction),
        labelsChanged(Path): labels of an open document were replaced (prediction, reset, relabel),
        labelsSaved(Path), staleChanged(Path, str why or ''), imageFailed(Path, str why),
        message(str): status bar text, jobStarted(str slot, str name), jobProgress(int, int, str),
        jobFinished(str slot, str name), jobFailed(str name, str message), jobCancelled(str name),
        trainingStarted(object job, Path out_dir), versionCancelled(Path out_dir),
        classNotice(str): what the model in use predicts that the project has no class for (deleted classes:
            shown unlabelled), '' when everything maps; shown on the canvas and in the status bar.
    """

    folderOpened = Signal(object)
    classesChanged = Signal(object)
    currentClassChanged = Signal(int)
    modelsChanged = Signal()
    modelChanged = Signal(object, str)
    documentChanged = Signal(object)
    indexChanged = Signal(int)
    labelsChanged = Signal(object)
    labelsSaved = Signal(object)
    staleChanged = Signal(object, str)
    imageFailed = Signal(object, str)
    message = Signal(str)
    jobStarted = Signal(str, str)
    jobProgress = Signal(int, int, str)
    jobFinished = Signal(str, str)
    jobFailed = Signal(str, str)
    jobCancelled = Signal(str)
    trainingStarted = Signal(object, object)
    versionCancelled = Signal(object)
    classNotice = Signal(str)

    def __init__(self, parent: QObject | None = None, prompts: Prompts | None = None) -> None:
        super().__init__(parent)
        self.prompts = prompts or Prompts(parent)
        self.folder: Path | None = None
        self.source_folder: Path | None = None
        self.paths: list[Path] = []
        self.index = -1
        self.docs: dict[Path, Document] = {}
        self.classes: ClassSpec | None = None
        self.current_class = 0
        self.models: list[ModelEntry] = []
        self.model: LoadedModel | None = None
        self.model_label = ""
        self.predictor: Predictor | None = None
        self.device = "auto"
        self.inference_scale: float | str = "auto"  # Predictor(scale=...): shrink photos much larger than the training images
        self.inference_tta = False  # Predictor(tta=...): horizontal-flip test-time augmentation (about 2x slower)
        self.on_notice = None  # the Predictor's fallback notices (thread-safe signal emit)
        self.finetune_config: TrainConfig = finetune_config()
        self.read_only = False
        self.stale: dict[Path, str] = {}
        self.failed: dict[Path, str] = {}
        self.accepted: dict[Path, np.ndarray] = {}  # bool (H, W): pixels a person accepted (saved on disk)
        self.class_aliases: dict[str, str] = {}  # the project's renames, former name -> current (Project.class_aliases)
        self.class_notice = ""
        self.runner = JobRunner(self, self.say, self._after_main_job)  # the one job runner (gui/jobs.py)
        for name in ("jobStarted", "jobProgress", "jobFinished", "jobFailed", "jobCancelled"):  # the runner's, re-emitted
            getattr(self.runner, name).connect(getattr(self, name))
        self.book = None
        self.train_fn = train_on_folder  # the window routes it through its module (tests spy on it there)
        self.is_editing = lambda: False  # the window: True while a mouse stroke is in progress on the canvas
        self._predicting = PredictController(self)  # the prediction side (private collaborator)
        self._saving = SaveController(self)  # the saving side (private collaborator)
        self._training = TrainController(self)  # the training side (private collaborator)
        self._after_job = None
        self._opened_before = False
        self.start_row = 0

    # -- basics ------------------------------------------------------------------------------------
    @property
    def job(self) -> Job | None:
        """The running model job (predict, fine-tune, import), or ``None``."""
        return self.jobs.get(MAIN)

    def current_doc(self) -> Document | None:
        """The document shown, or ``None``."""
        return self.docs.get(self.paths[self.index]) if 0 <= self.index < len(self.paths) else None

    def say(self, text: str) -> None:
        """Status-bar message (also logged)."""
        log.info("%s", text)
        self.message.emit(text)

    # -- the one job runner (gui/jobs.py) -------------------------------------------------------------
    @property
    def jobs(self) -> dict[str, Job]:
        """Running jobs by slot (the runner's)."""
        return self.runner.jobs

    def start(self, job: Job, slot: str = MAIN, **callbacks) -> bool:
        """Run ``job`` on the window's one job runner (:meth:`JobRunner.start <segstudio.gui.jobs.JobRunner.start>`;
        ``cancel``, ``cancel_all`` and ``report_failure`` are the runner's too: :attr:`runner`)."""
        return self.runner.start(job, slot, **callbacks)

    def _after_main_job(self, finished: Job) -> None:
        after, self._after_job = self._after_job, None
        if after is not None:
            after()
            return
        # The user may have moved to an image that needs a prediction while the worker was busy
        # (not one this very job just tried, e.g. with classes that do not map: no retry loop).
        doc = self.current_doc()
        if doc is not None and doc.path not in getattr(finished, "paths", ()) and self.needs_prediction(doc):
            self.predict_paths([doc.path])

    # -- classes ------------------------------------------------------------------------------------
    def set_classes(self, classes: ClassSpec) -> None:
        """Make ``classes`` the project's classes (no relabelling; see :meth:`apply_class_edit`)."""
        self.classes = classes
        for doc in self.docs.values():
            doc.classes = classes
        self.classesChanged.emit(classes)
        self.set_current_class(min(self.current_class, classes.num_classes - 1))
        self.update_class_notice()

    def set_current_class(self, c: int) -> None:
        """Paint with class ``c`` (clamped to the classes); always emits ``currentClassChanged``."""
        k = self.classes.num_classes if self.classes is not None else 1
        self.current_class = int(min(max(int(c), 0), k - 1))
        self.currentClassChanged.emit(self.current_class)

    def apply_class_edit(self, classes: ClassSpec, lut: np.ndarray, relabel: bool, relabel_files) -> str:
        """Switch to ``classes`` (``lut``: uint8 (256,) old id → new id), following the labeller's rules.

        Args:
            classes: the new class list.
            lut: old id → new id, :data:`IGNORE_INDEX` for deleted classes.
            relabel: ids changed or classes were deleted (saved label maps must be rewritten).
            relabel_files: ``callable()`` rewriting the saved label files (or classes.json) on disk; may raise
                ``OSError``/``ValueError`` (then nothing in memory changes).

        Returns:
            A summary of what happened to the open images (for the status bar).

        Raises:
            OSError, ValueError: from ``relabel_files``.
        """
        old = self.classes
        self.autosave()  # a person's unsaved pixels go to disk with the old ids, then get relabelled with the rest
        if old is not None:
            classes = recolour_renamed(old, classes, lut)
        relabel_files(classes)
        dropped = 0
        for doc in self.docs.values():
            if relabel:
                doc.relabel(classes, lut)
            else:
                doc.classes = classes
            # Predicted pixels follow the edit with the ids' lineage (a renamed class keeps its predictions); those
            # of a deleted class are unlabelled now, and nobody decided them.
            gone = (doc.provenance.map == PROV_MODEL) & (doc.labels == IGNORE_INDEX)
            if gone.any():
                dropped += int(gone.sum())
                doc.provenance.map[gone] = PROV_NONE
                if not (doc.labels != IGNORE_INDEX).any():
                    doc.source = SOURCE_NONE
            self.labelsChanged.emit(doc.path)
        if old is not None:
            self.class_aliases = follow_class_edit(self.class_aliases, old, classes, lut)
        cur = self.current_class
        new_cur = int(lut[cur]) if relabel and cur < 256 else cur
        self.classes = classes
        self.classesChanged.emit(classes)
        self.set_current_class(0 if new_cur == IGNORE_INDEX or new_cur >= classes.num_classes else new_cur)
        self.documentChanged.emit(self.current_doc())
        note = f"; {dropped} predicted pixel(s) of deleted classes are unlabelled now" if dropped else ""
        self.update_class_notice()
        self._repredict_current_if_needed()
        return note

    # -- models -------------------------------------------------------------------------------------
    def add_model_entry(self, label: str, entry: LoadedModel | Path, tooltip: str = "", folder: Path | None = None) -> int:
        """Add a picker row (or replace the one with the same label); returns its index."""
        classes = entry.classes if isinstance(entry, LoadedModel) else card_classes(Path(entry))
        for i, e in enumerate(self.models):
            if e.label == label:
                self.models[i] = ModelEntry(label, entry, classes, tooltip or e.tooltip, folder if folder is not None else e.folder)
                self.modelsChanged.emit()
                return i
        self.models.append(ModelEntry(label, entry, classes, tooltip, folder))
        self.modelsChanged.emit()
        return len(self.models) - 1

    def find_model(self, label: str) -> int | None:
        return next((i for i, e in enumerate(self.models) if e.label == label), None)

    def pick_model(self, idx: int) -> bool:
        """Use picker row ``idx`` (loading its weights if needed); False with a message when unusable."""
        if not 0 <= idx < len(self.models):
            return False
        e = self.models[idx]
        if not isinstance(e.entry, LoadedModel):
            try:
                e.entry = load_checkpoint(e.entry)
            except (ValueError, OSError) as exc:
                self.prompts.warning(str(exc))
                self.modelChanged.emit(self.model, self.model_label)  # the picker goes back to the model in use
                return False
        self.set_model(e.entry, e.label)
        return True

    def set_model(self, model: LoadedModel, label: str | None = None) -> None:
        """Use ``model`` for prediction (added to the picker).

        The project's classes stay those of the open folder; only without any (no folder, none saved) do
        they come from the model. Every prediction shown becomes stale: the current image is re-predicted
        when the model's classes fit, else marked stale with the reason.
        """
        label = label or model.display_name
        self.add_model_entry(label, model)
        changed = model is not self.model
        self.model, self.model_label = model, label
        if self.classes is None or (self.folder is None and not self.docs):
            self.set_classes(model.classes)
        self.make_predictor()
        self.modelChanged.emit(model, label)
        self.update_class_notice()
        if not changed:
            return
        for doc in self.docs.values():
            if self.has_unaccepted_prediction(doc):
                self.set_stale(doc.path, f"predicted by an earlier model; {label} is in use now")
        fits, why = self.model_fits()
        if not fits:
            self.say(why)
        self._repredict_current_if_needed()

    def _repredict_current_if_needed(self) -> None:
        """Predict the current image now (or after the running job) when its overlay needs a new prediction."""
        doc = self.current_doc()
        if doc is not None and self.needs_prediction(doc):
            if self.job is None:
                self.predict_paths([doc.path])
            else:
                self._after_job = self.predict_current

    def set_predictor(self, predictor: Predictor | None) -> None:
        """Use ``predictor`` (e.g. one with other tiling settings) for the model in use."""
        self.predictor = predictor

    def set_device(self, device: str) -> None:
        self.device = device or "auto"
        self.make_predictor()

    def make_predictor(self) -> None:
        if self.model is not None:
            # lazy: BN folding and the device move (~0.2 s) happen on the worker's first prediction, not here
            self.predictor = Predictor(
                self.model, device=self.device, on_notice=self.on_notice, lazy=True, scale=self.inference_scale,
                tta=self.inference_tta,
            )

    def set_inference_scale(self, scale: float | str) -> None:
        """Resize images by ``scale`` (a number in (0, 4], or ``"auto"``: from the model card's training image
        size) before predicting; see :meth:`segstudio.engine.Predictor.scale_for`. Later predictions use it.

        Raises:
            ValueError: a bad scale (nothing changes).
        """
        from segstudio.engine.predictor import parse_scale

        self.inference_scale = parse_scale(scale)
        self.make_predictor()
        self.say(f"inference scale {self.inference_scale}: press Ctrl+P to predict again")

    def set_inference_tta(self, on: bool) -> None:
        """Turn horizontal-flip test-time augmentation on or off for later predictions (each image is also
        predicted mirrored and the two logit maps averaged, about 2× the model time; see
        :meth:`segstudio.engine.Predictor._run_model`)."""
        self.inference_tta = bool(on)
        self.make_predictor()
        self.say(f"flip test-time augmentation {'on' if self.inference_tta else 'off'}: press Ctrl+P to predict again")

    def model_fits(self, model: LoadedModel | None = None) -> tuple[bool, str]:
        """Whether ``model``'s (default: the model in use) classes map onto the project's by name, and why not
        (:func:`~segstudio.gui.state_predict.model_fits`)."""
        model = model or self.model
        return model_fits(model, self.classes, self.model_label, self.class_aliases)

    def model_lut(self, model: LoadedModel | None = None) -> np.ndarray:
        """uint8 (256,): ``model``'s (default: the model in use) class id → the project's class id, by name and
        through the project's renames (:attr:`class_aliases`: a renamed class keeps its predictions); a class
        the project does not have (deleted, or never there) → :data:`IGNORE_INDEX`."""
        model = model or self.model
        if model is None or self.classes is None:
            return np.full(256, IGNORE_INDEX, dtype=np.uint8)
        return class_lut(model.classes, self.classes, self.class_aliases)

    def update_class_notice(self) -> str:
        """Recompute :attr:`class_notice` (the model's classes that map to no project class) and emit
        ``classNotice`` when it changed; returns it."""
        text = ""
        if self.model is not None and self.classes is not None:
            text = class_notice_text(self.model.classes, self.model_lut(), self.model_label or self.model.display_name)
        if text != self.class_notice:
            self.class_notice = text
            self.classNotice.emit(text)
            if text:
                self.say(text)
        return text

    # -- folders ------------------------------------------------------------------------------------
    def open_folder(self, folder: str | Path) -> bool:
        """Open the images of ``folder`` with that folder's own classes and model (see the module docstring)."""
        folder = Path(folder)
        try:
            paths = list_images(folder)
        except OSError as exc:  # not a folder, no permission...
            self.prompts.warning(str(exc))
            return False
        if not paths:
            self.prompts.info(f"No images (png, jpg, tif, …) in {folder}")
            return False
        if self.job is not None and self.job.name == "fine-tune":
            self.prompts.info(f"A fine-tune of {self.folder.name} is running: cancel it or wait before opening another folder.")
            return False
        if not self.leave_folder():
            return False
        source = folder
        folder, paths, read_only = self._saving.label_folder(folder, paths)  # a read-only folder: labels elsewhere?
        if self.job is not None:
            self.runner.cancel(MAIN)  # predictions of the previous folder
        self.folder, self.source_folder, self.paths, self.docs, self.index = folder, source, paths, {}, -1
        self.read_only = read_only
        self.stale, self.failed, self.accepted = {}, {}, {}
        self.documentChanged.emit(None)  # the previous folder's image goes now (a model question may follow)
        self._saving.reset()
        self._after_job = None
        self.models = [e for e in self.models if e.folder is None]  # the previous folder's versions go
        for v in list_versions(folder):
            label = f"{folder.name}/{v.name}" + (" (cancelled)" if version_status(v) == "cancelled" else "")
            self.models.append(ModelEntry(label, v / "model.safetensors", card_classes(v / "model.safetensors"), "", folder))
        self.modelsChanged.emit()
        start = self.book.open(folder, paths) if self.book is not None else 0
        idx = self.find_model(self.model_label) if self.model is not None else None
        if self.book is not None and idx is not None and self.models[idx].folder is None:
            self.book.record_model(self.model, self.model_label)  # a parent of the folder's versions, maybe
        classes, model_idx = choose_classes_and_model(self, folder, self._opened_before)
        if classes is None:  # nothing in the folder names them: the chosen model's, else the one in use
            chosen = self.models[model_idx].classes if model_idx is not None else None
            classes = chosen or (self.model.classes if self.model else ClassSpec(("background", "foreground")))
        self.set_classes(classes)  # before the model, so that its fit is judged against this folder's classes
        if model_idx is not None and self.models[model_idx].entry is not self.model:
            self.pick_model(model_idx)
        elif self.model is not None:
            self.modelChanged.emit(self.model, self.model_label)  # recorded in the new project
        self._opened_before = True
        self.folderOpened.emit(folder)
        if read_only:
            self.say(f"{source} is read-only: labels cannot be saved there (view only; on quit you can save edits elsewhere)")
        self.start_row = start  # the window shows it through its image list (set_index)
        return True

    def clear_model(self) -> None:
        """Use no model (the user declined to pick one): emits ``modelChanged(None, '')``."""
        self.model, self.model_label, self.predictor = None, "", None
        self.modelChanged.emit(None, "")

    def leave_folder(self) -> bool:
        """Save what can be saved before another folder (or quitting); False when the user cancels."""
        return self._saving.leave_folder()

    def save_elsewhere(self, target: Path) -> bool:
        """Save every edited document's labels into ``target`` (images linked there); False on failure."""
        return self._saving.save_elsewhere(target)

    # -- documents ----------------------------------------------------------------------------------
    def set_index(self, index: int) -> None:
        """Show image ``index``: autosave, load its document, predict it when it needs it."""
        if not 0 <= index < len(self.paths):
            return
        self.autosave()
        self.index = index
        doc = self.load_doc(self.paths[index])
        self.documentChanged.emit(doc)
        if doc is not None and self.needs_prediction(doc) and self.job is None:
            self.predict_paths([doc.path])
        self.indexChanged.emit(index)

    def next_path(self) -> Path | None:
        """The image Next (Right, PgDown) would show: the one after :attr:`index` in the list, or ``None``
        at the end, before an image is shown, or when that image could not be read."""
        i = self.index + 1
        if self.index < 0 or i >= len(self.paths) or self.paths[i] in self.failed:
            return None
        return self.paths[i]

    def needs_prediction(self, doc: Document) -> bool:
        """Never predicted, or a stale prediction, or edited but with pixels nobody decided — and a model whose
        classes fit. (A prediction only fills pixels no person decided, so edits are never at risk.)"""
        return self._predicting.needs_prediction(doc)

    def load_doc(self, path: Path) -> Document | None:
        if path in self.docs:
            return self.docs[path]
        try:
            image = read_image(path)
        except ImageReadError as exc:
            self.mark_failed(path, str(exc))
            return None
        try:
            doc = Document(path, image, self.classes)
        except ValueError as exc:
            self.mark_failed(path, f"{path.name}: {exc}")
            return None
        lp = label_path_for(path)
        if lp.is_file():
            try:
                doc.set_labels(read_index_png(lp), SOURCE_SAVED)
            except (ValueError, OSError) as exc:
                self.say(f"saved labels not usable ({exc}); they stay on disk untouched")
        if self.book is not None:
            self.book.on_doc_loaded(doc)  # saved provenance
        if doc.source == SOURCE_SAVED:
            self.accepted[path] = doc.provenance.map != PROV_NONE
        self.docs[path] = doc
        self._saving.offer_recovery(doc)
        doc.subscribe(self._on_doc_event)  # after recovery: replaying the journal is not a new edit
        return doc

    def mark_failed(self, path: Path, why: str) -> None:
        """Record that ``path`` could not be read or predicted (``why``): status bar and ``imageFailed``."""
        self.failed[path] = why
        self.say(why)
        self.imageFailed.emit(path, why)

    def set_stale(self, path: Path, why: str) -> None:
        """Mark ``path``'s shown prediction out of date because ``why`` ('' clears it); emits ``staleChanged``."""
        if why:
            self.stale[path] = why
        else:
            self.stale.pop(path, None)
        self.staleChanged.emit(path, why)

    def has_unaccepted_prediction(self, doc: Document) -> bool:
        """True if ``doc`` has model pixels no person accepted yet (an explicit save accepts them)."""
        guess = doc.provenance.map == PROV_MODEL
        acc = self.accepted.get(doc.path)
        if acc is not None:
            guess &= ~acc
        return bool(guess.any())

    def accept_all(self, doc: Document) -> None:
        """Every pixel of ``doc`` is accepted by a person (an explicit save: Ctrl+S, Mark reviewed)."""
        self.accepted[doc.path] = np.ones(doc.shape, bool)

    def human_mask(self, doc: Document) -> np.ndarray:
        """bool (H, W): pixels a person decided (painted, erased, CRF they asked for) or accepted (saved)."""
        mask = (doc.provenance.map == PROV_HUMAN) | (doc.provenance.map == PROV_CRF)
        acc = self.accepted.get(doc.path)
        return mask | acc if acc is not None else mask

    # -- journal (crash safety) ----------------------------------------------------------------------
    def _on_doc_event(self, event: DocumentEvent) -> None:
        """A person's edit (or undo / redo) of an open document goes to its crash journal (fsynced) before anyone
        else hears of it: the box it touched, or the whole map for a first edit (``SaveController.journal_edit``)."""
        if event.by_person:
            self._saving.journal_edit(event.doc)

    # -- prediction ---------------------------------------------------------------------------------
    def predict_paths(self, paths: list[Path]) -> bool:
        """Predict ``paths`` in a worker; results fill the pixels no person decided (see :meth:`apply_prediction`).

        Unreadable images and failed predictions are counted and marked (``imageFailed``); the closing
        message says ``"predicted N, failed M"``.
        """
        return self._predicting.predict_paths(paths)

    def apply_prediction(self, path: Path, labels: np.ndarray, model: LoadedModel | None) -> bool:
        """Show ``model``'s prediction ``labels`` (uint8 (H, W), model ids) for image ``path``.

        Applied only when ``model`` is still the model in use and its classes map onto the project's (by
        name); pixels a person decided or accepted keep their labels; on an edited image the other pixels are
        filled as one undoable step, written to its crash journal. Otherwise the image is marked stale, with
        the reason. Returns True when applied (or put aside until the stroke in progress ends).
        """
        doc = self._predicting.apply(path, labels, model)
        if not isinstance(doc, Document):
            return doc  # True: put aside until the stroke ends; False: not applied (stale, with the reason)
        self._saving.journal_snapshot(doc)  # an edited image: the filled pixels are crash-safe too, as the model's
        if self.book is not None:
            self.book.on_predicted(doc)
        self.labelsChanged.emit(path)
        if doc is self.current_doc():
            self.documentChanged.emit(doc)
        return True

    def flush_pending(self) -> None:
        """Apply the predictions that arrived while a stroke was in progress (call when it ended)."""
        for path, labels, model in self._predicting.take_pending():
            self.apply_prediction(path, labels, model)

    def predict_current(self) -> bool:
        """Ctrl+P: predict the image shown; pixels a person decided keep their labels."""
        doc = self.current_doc()
        if doc is None:
            return False
        return self.predict_paths([doc.path])

    def predict_folder(self) -> bool:
        """Predict every image without saved labels, with a stale prediction, or edited and unsaved."""
        todo = self._predicting.folder_todo()
        if not todo:
            self.say("every image has saved labels")
        return self.predict_paths(todo)

    # -- saving -------------------------------------------------------------------------------------
    def save_doc(self, doc: Document, accept: bool = False, explicit: bool = False) -> bool:
        """Save ``doc``'s labels (atomic) with their provenance.

        Args:
            accept: the user accepts the whole image (Ctrl+S, Mark reviewed): every pixel is saved. Otherwise
                (autosave) only pixels a person decided or accepted before are; the rest is saved unlabelled.
            explicit: the user asked for this save: a failure is shown in a dialog (an autosave failure goes to
                the status bar, once per reason).
        """
        ok, written = self._saving.save(doc, accept, explicit)
        if written:
            self.labelsSaved.emit(doc.path)
        return ok

    def save_current(self, accept: bool = True) -> bool:
        """Ctrl+S: save the image shown. With ``accept`` the person accepts it as shown: every pixel is saved and
        its status becomes *reviewed* (an unedited prediction accepted) or *corrected* (it was edited), as the
        review queue's Enter does."""
        doc = self.current_doc()
        had_labels = doc is not None and doc.source != SOURCE_NONE
        ok = doc is not None and self.save_doc(doc, accept=accept, explicit=True)
        if ok and accept and had_labels and self.book is not None:
            self.book.set_image_status(doc.path, STATUS_CORRECTED if doc.edits else STATUS_REVIEWED)
        if doc is not None:
            self.documentChanged.emit(doc)
        return ok

    def autosave(self) -> None:
        """Save every edited document (leaving an image, fine-tuning, closing): only a person's pixels."""
        self._saving.autosave()

    # -- training -----------------------------------------------------------------------------------
    def saved_sample_count(self) -> int:
        """Autosave, then count the open folder's images with saved labels (0 after telling the user to save some)."""
        return self._training.saved_sample_count()

    def finetune(self) -> bool:
        """Train the current model on every image with saved labels, as a new version ``labels/models/vNNN``."""
        return self._training.finetune()

    def train_version(self, n_images: int, what: str = "fine-tune", extra_card: dict | None = None, **train_kwargs) -> bool:
        """Train in a worker on the folder's saved labels as a new version (see
        :meth:`TrainController.train_version <segstudio.gui.state_train.TrainController.train_version>`)."""
        return self._training.train_version(n_images, what, extra_card, **train_kwargs)

    def expected_budget_s(self, config: TrainConfig | None) -> float | None:
        """The time budget (seconds) a fine-tune with ``config`` runs under, ``None`` for a run without one."""
        return self._training.expected_budget_s(config)

    def import_checkpoint(self, path: str | Path) -> bool:
        """Copy a (cluster) run's model into ``labels/models/vNNN`` in a worker, then switch to it."""
        return self._training.import_checkpoint(path)

    def run_after_main_job(self, fn) -> None:
        """Run ``fn()`` once the running :data:`MAIN` job has ended (instead of the usual follow-up prediction)."""
        self._after_job = fn

    # -- closing ------------------------------------------------------------------------------------
    def can_close(self) -> bool:
        """Ask before quitting during a fine-tune, and about edits that could not be saved; False = stay open."""
        job = self.job
        if job is not None and job.name == "fine-tune":
            if not self.prompts.ask_yes_no(
                "SegStudio — fine-tune running",
                "A fine-tune is running. Quit and cancel it? (Its last good checkpoint is kept and marked as cancelled.)",
            ):
                return False
        if not self.leave_folder():
            return False
        self.runner.cancel_all()
        return True
