"""The rest of the labelling loop on top of :class:`~segstudio.gui.main_window.MainWindow`.

:class:`LabellingLoop` adds (and owns) the training dock with live curves, the fine-tune options dialog,
the uncertainty heat-map layer and "Correct next" list, the metrics dock, the CRF / morphology preview and
Help ▸ Device. The window stays thin: it creates one ``LabellingLoop`` and calls
:meth:`LabellingLoop.watch_training` when it starts a fine-tune. Every computation runs in worker jobs
(:mod:`segstudio.gui.workers`), each kind in its own slot so a new request replaces a stale one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QDialog, QDockWidget

from segstudio.engine.uncertainty import mean_uncertainty, rank_by_uncertainty
from segstudio.gui.device_dialog import DeviceDialog
from segstudio.gui.metrics_dock import MetricsDock, evaluate_corrected
from segstudio.gui.postprocess_preview import PostprocessPanel, PostprocessPreview
from segstudio.gui.qtutil import add_dock, window_action, window_menu
from segstudio.gui.relay import on_gui
from segstudio.gui.training_dialog import TrainingDialog
from segstudio.gui.training_panel import TrainingPanel
from segstudio.gui.uncertainty import CorrectNextPanel, UncertaintyLayer, image_uncertainty
from segstudio.gui.workers import Job
from segstudio.io import ImageReadError, find_samples, label_path_for, read_image

log = logging.getLogger(__name__)


class LabellingLoop(QObject):
    """Training view, active learning, metrics, post-processing preview and device check.

    Args:
        state: the :class:`~segstudio.gui.state.ProjectState`.
        canvas: the :class:`~segstudio.gui.canvas.Canvas` (heat-map and refine preview are drawn on it).
        parent: the QObject owning this controller. The window lays out its docks and menus with
            :func:`build_loop_view`.

    Attributes:
        training_panel, correct_next, metrics, postprocess_panel: the dock widgets.
        preview: :class:`PostprocessPreview`.
        heatmap: :class:`UncertaintyLayer` on the canvas's scene.
        jobs: running worker jobs by kind (``"heatmap"``, ``"rank"``, ``"metrics"``).
        umaps: cache ``{(path, predictor id, method): uint8 (H, W) uncertainty}``.
        device_dialog: the last Help ▸ Device dialog.
    """

    KINDS = ("heatmap", "rank", "metrics")

    def __init__(self, state, canvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state, self.canvas = state, canvas
        self.umaps: dict[tuple, np.ndarray] = {}
        self.method = "entropy"
        self.device_dialog: DeviceDialog | None = None
        self._training_dir: Path | None = None
        self.place_dock = lambda dock: None  # the window's layout: put a dock beside its neighbours before showing it

        self.training_panel = TrainingPanel()
        self.correct_next = CorrectNextPanel()
        self.metrics = MetricsDock()
        self.postprocess_panel = PostprocessPanel()
        self.docks: dict[str, QDockWidget] = {}  # filled by build_loop_view (the window's layout)

        self.heatmap = UncertaintyLayer()
        canvas.scene().addItem(self.heatmap)
        self.preview = PostprocessPreview(state, canvas, self.postprocess_panel, self)

        self.training_panel.cancelRequested.connect(self._cancel_training)
        self.training_panel.optionsRequested.connect(self.finetune_with_options)
        self.training_panel.useCheckpointRequested.connect(self._use_checkpoint)
        self.correct_next.rankRequested.connect(self.rank_unlabelled)
        self.correct_next.cancelRequested.connect(lambda: self._cancel("rank"))
        self.correct_next.imageActivated.connect(self.go_to)
        self.correct_next.method.currentTextChanged.connect(self._set_method)
        self.metrics.recomputeRequested.connect(lambda: self.compute_metrics())
        self.metrics.imageActivated.connect(self.go_to)
        self.state.modelChanged.connect(self._on_model_changed)
        self.state.folderOpened.connect(self._on_folder_opened)
        self.state.trainingStarted.connect(self.watch_training)
        canvas.edited.connect(self._on_edited)
        self.state.indexChanged.connect(self._on_image_changed)

    # -- jobs ----------------------------------------------------------------------------------
    @property
    def jobs(self) -> dict[str, Job]:
        """This loop's running jobs by kind (they run in the state's job runner)."""
        return {k: j for k, j in self.state.jobs.items() if k in self.KINDS}

    def _run(self, kind: str, fn, on_result=None, on_finished=None, on_progress=None, on_done=None) -> Job:
        """Start ``fn`` as job ``kind`` in the state's job runner (a still-running job of that kind is cancelled).

        A failure reaches the status bar and the log through the runner."""
        job = Job(kind, fn)
        self.state.start(job, kind, on_result=on_result, on_finished=on_finished, on_progress=on_progress, on_done=on_done)
        return job

    def _cancel(self, kind: str) -> None:
        self.state.runner.cancel(kind)

    def busy(self) -> bool:
        """True while any loop job (or a refine preview) runs."""
        return bool(self.jobs) or self.preview.job is not None

    def eventFilter(self, obj, event) -> bool:
        """On the window's Close event (the filter is installed on the window only), cancel the device check (the
        loop's other jobs run in the state's job runner, which cancels them once the window agreed to close; the
        window then waits for their threads)."""
        if event.type() == QEvent.Type.Close:
            if self.device_dialog is not None and self.device_dialog.job is not None:
                self.device_dialog.job.cancel()
        return False

    # -- training ------------------------------------------------------------------------------
    def watch_training(self, job: Job, out_dir: Path) -> None:
        """Show fine-tune ``job`` (writing ``out_dir``) live; its worker forwards trainer callbacks as
        ``job.emit_result(event, info)``. After it finishes the dock collapses (a cancelled or failed run keeps
        it, with its message and "Use last checkpoint") and the metrics are recomputed."""
        self._training_dir = Path(out_dir)
        self.training_panel.start(self._training_dir.name, getattr(job, "budget_s", None))
        self.docks["Training"].show()
        self.docks["Training"].raise_()
        job.result.connect(self._on_train_event)
        job.cancelled.connect(on_gui(lambda: self.training_panel.finish("cancelled"), self))
        job.failed.connect(on_gui(lambda msg: self.training_panel.finish("failed", msg), self))
        job.finished.connect(self._on_trained)

    def _on_train_event(self, event, info) -> None:
        if isinstance(event, str) and isinstance(info, dict):
            self.training_panel.on_event(event, info)

    def _on_trained(self, _loaded) -> None:
        name = self._training_dir.name if self._training_dir else ""
        self.training_panel.finish("done", f"Fine-tune {name} finished; the model in use is now {name}.")
        self.docks["Training"].hide()  # the canvas gets its space back (View ▸ Training shows the curves again)
        self.umaps.clear()
        if self.state.folder is not None:
            self.compute_metrics(show=False)  # ready for Ctrl+M; the canvas gets its space back
        if self.act_heatmap.isChecked():
            self.refresh_heatmap()

    def _cancel_training(self) -> None:
        if self.state.job is not None and self.state.job.name == "fine-tune":
            self.state.runner.cancel()

    def _use_checkpoint(self, path: str) -> None:
        from segstudio.engine import CheckpointError, load_checkpoint

        try:
            loaded = load_checkpoint(path)
        except (CheckpointError, ValueError) as exc:
            self.state.say(str(exc))
            return
        folder = self.state.folder
        label = f"{folder.name}/{Path(path).parent.name} (cancelled)" if folder else Path(path).parent.name
        self.state.set_model(loaded, label)
        self.state.say(f"using the last checkpoint of the cancelled run: {label}")
        self.training_panel.use_checkpoint.hide()

    def finetune_with_options(self) -> bool:
        """Model ▸ Fine-tune with options…: edit the fine-tune config, then fine-tune with it.

        The chosen options become the window's ``finetune_config`` (the one-click path uses them next time).
        """
        k = self.state.classes.num_classes if self.state.classes is not None else 2
        dlg = TrainingDialog(self.state.finetune_config, k, self.canvas.window())
        self._dialog = dlg  # tests reach the open dialog here
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return False
        self.state.finetune_config = dlg.config()
        return bool(self.state.finetune())

    # -- uncertainty -----------------------------------------------------------------------------
    def _set_method(self, method: str) -> None:
        self.method = method
        if self.act_heatmap.isChecked():
            self.refresh_heatmap()
        if "rank" in self.jobs or self.correct_next.ranking:
            self.rank_unlabelled(method)  # replaces a ranking by the other measure

    def _key(self, path: Path) -> tuple:
        return (path, id(self.state.predictor), self.method)

    def set_heatmap_visible(self, on: bool) -> None:
        """Tools ▸ Uncertainty heat-map (U): show / hide the layer, computing it when needed."""
        if self.act_heatmap.isChecked() != bool(on):
            self.act_heatmap.setChecked(bool(on))
        self.heatmap.setVisible(bool(on))
        if on:
            self.refresh_heatmap()

    def refresh_heatmap(self) -> None:
        """(Re)compute the current image's uncertainty map in a worker, or take it from the cache."""
        doc, predictor = self.state.current_doc(), self.state.predictor
        if doc is None or predictor is None:
            self.heatmap.set_map(None, None)
            return
        key = self._key(doc.path)
        if key in self.umaps:
            self.heatmap.set_map(doc.path, self.umaps[key], doc.shape)
            return
        self.heatmap.set_map(None, None)
        image, method, path = doc.image, self.method, doc.path

        def work(job: Job):
            job.report(0, 1, f"uncertainty of {path.name}…")
            return key, image_uncertainty(predictor, image, method)

        self._run("heatmap", work, on_finished=self._on_heatmap)

    def _on_heatmap(self, out) -> None:
        key, u = out
        self.umaps[key] = u
        doc = self.state.current_doc()
        if doc is not None and self._key(doc.path) == key:
            self.heatmap.set_map(doc.path, u, doc.shape)
            self.state.say(f"mean {key[2]} of {doc.path.name}: {100 * mean_uncertainty(u / 255.0):.1f} %")

    def show_correct_next(self) -> None:
        """Tools ▸ Correct next: show the dock and rank the unlabelled images if not ranked yet."""
        self.docks["Correct next"].show()
        self.docks["Correct next"].raise_()
        if not self.correct_next.ranking and "rank" not in self.jobs:
            self.rank_unlabelled(self.method)

    def rank_unlabelled(self, method: str | None = None) -> bool:
        """Rank the folder's images without saved labels by mean uncertainty (worker); False if nothing to do."""
        st = self.state
        if st.predictor is None or not st.paths:
            self.correct_next.status.setText("Open a folder and load a model first.")
            return False
        method = method or self.method
        self.method = method
        todo = [p for p in st.paths if not label_path_for(p).is_file()]
        predictor = st.predictor
        images = {p: st.docs[p].image for p in todo if p in st.docs}
        cached = {p: self.umaps[(p, id(predictor), method)] for p in todo if (p, id(predictor), method) in self.umaps}

        def work(job: Job):
            scores = {}
            for i, p in enumerate(todo):
                job.cancel_token.check()
                job.report(i, len(todo), f"uncertainty {i + 1}/{len(todo)}: {p.name}")
                u = cached.get(p)
                if u is None:
                    image = images.get(p)
                    if image is None:
                        try:
                            image = read_image(p)
                        except ImageReadError as exc:
                            log.warning("%s", exc)
                            continue
                    u = image_uncertainty(predictor, image, method)
                    job.emit_result((p, id(predictor), method), u)
                scores[p] = mean_uncertainty(u) / 255.0
            return rank_by_uncertainty(scores), method

        self.correct_next.set_busy(True, f"ranking {len(todo)} unlabelled image(s) by {method}…")
        self._run(
            "rank",
            work,
            on_result=lambda key, u: self.umaps.__setitem__(key, u),
            on_finished=lambda out: self.correct_next.set_ranking(*out),
            on_progress=lambda d, t, s: self.correct_next.status.setText(s),
            on_done=lambda: self.correct_next.set_busy(False),
        )
        return True

    def go_to(self, path) -> None:
        """Show image ``path`` of the open folder (from the Correct-next or metrics lists)."""
        if path in self.state.paths:
            row = self.state.paths.index(path)
            if row != self.state.index:
                self.state.set_index(row)  # the image list follows the state
            self.canvas.setFocus()

    # -- metrics ---------------------------------------------------------------------------------
    def compute_metrics(self, show: bool = True) -> bool:
        """Evaluate the current model on the folder's corrected images in a worker; False if impossible.

        With ``show`` (Ctrl+M, Recompute) the Metrics tab is shown and brought to the front; after a fine-tune the
        figures are computed without taking the canvas's space."""
        st = self.state
        if show:
            self.docks["Metrics"].show()
            self.docks["Metrics"].raise_()
        if st.predictor is None or st.folder is None or st.classes is None:
            self.metrics.set_busy(False, "Open a folder and load a model first.")
            return False
        st.autosave()
        predictor, paths, classes, card = st.predictor, list(st.paths), st.classes, dict(st.model.card)
        lut = st.model_lut()  # the model's classes onto the project's, through renames; a new class: none yet
        images = {p: d.image for p, d in st.docs.items()}
        self.metrics.set_busy(True, "measuring the model on the corrected images…")

        def work(job: Job):
            return evaluate_corrected(predictor, paths, classes, card, job, images, lut=lut)

        job = Job("metrics", work)
        job.failed.connect(on_gui(self.metrics.summary.setText, self))
        self.state.start(
            job,
            "metrics",
            on_finished=self.metrics.set_result,
            on_progress=lambda d, t, s: self.metrics.summary.setText(s),
            on_done=lambda: self.metrics.set_busy(False),
        )
        return True

    # -- post-processing -------------------------------------------------------------------------
    def show_refine(self) -> None:
        """Tools ▸ Refine labels…: show the Refine dock (as a tab beside Versions, when that dock exists)."""
        refine = self.docks["Refine"]
        self.place_dock(refine)
        refine.show()
        refine.raise_()

    # -- device ----------------------------------------------------------------------------------
    def show_device(self, measure: bool = True) -> DeviceDialog:
        """Help ▸ Device: open the dialog (non-modal) and start measuring the predict speed."""
        doc = self.state.current_doc()
        image = doc.image if doc is not None else self._sample_image()
        if self.device_dialog is not None and self.device_dialog.job is None:
            self.device_dialog.deleteLater()
        self.device_dialog = DeviceDialog(self.state.predictor, image, parent=self.canvas.window(), state=self.state)
        self.device_dialog.show()
        if measure:
            self.device_dialog.measure()
        return self.device_dialog

    @staticmethod
    def _sample_image() -> np.ndarray | None:
        from segstudio.engine.checkpoint import SAMPLES_DIR as root
        for p in sorted(root.glob("*.png")):
            try:
                return read_image(p)
            except ImageReadError:
                continue
        return None

    # -- window events ---------------------------------------------------------------------------
    def _on_model_changed(self, _model, _label: str) -> None:
        if self.act_heatmap.isChecked():
            self.refresh_heatmap()
        if self.correct_next.ranking:
            self.correct_next.status.setText("The model changed: press Rank unlabelled for a fresh ranking.")

    def _on_image_changed(self, _row: int) -> None:
        self.preview.discard()
        for p, _ in list(self.correct_next.ranking):  # labels saved (e.g. autosave on leaving an image)
            if label_path_for(p).is_file():
                self.correct_next.remove(p)
        if self.act_heatmap.isChecked():
            self.refresh_heatmap()
        else:
            self.heatmap.set_map(None, None)

    def _on_folder_opened(self, _folder) -> None:
        """Nothing of the previous folder stays: training curves, metrics, ranking and heat-maps are reset."""
        for kind in self.KINDS:
            self._cancel(kind)
        self.umaps.clear()
        self._training_dir = None
        self.training_panel.reset_view()
        self.metrics.clear()  # the previous folder's numbers and class axes go
        self.correct_next.set_ranking([], self.method)
        self.correct_next.status.setText("Press Rank to order this folder's unlabelled images.")
        self.heatmap.set_map(None, None)

    def _on_edited(self) -> None:
        doc = self.state.current_doc()
        if doc is not None and label_path_for(doc.path).is_file():
            self.correct_next.remove(doc.path)

    def saved_image_count(self) -> int:
        """Images with saved labels in the open folder (0 without one)."""
        try:
            return len(find_samples(self.state.folder)[0]) if self.state.folder else 0
        except FileNotFoundError:
            return 0


def build_loop_view(window, loop: LabellingLoop) -> None:
    """Lay out ``loop``'s docks and menu actions in ``window`` (a :class:`~segstudio.gui.main_window.MainWindow`
    whose menus, image list and canvas exist) and wire the window's image list and Close event to it."""
    for title, widget, area in (
        ("Training", loop.training_panel, Qt.DockWidgetArea.BottomDockWidgetArea),
        ("Metrics", loop.metrics, Qt.DockWidgetArea.BottomDockWidgetArea),
        ("Correct next", loop.correct_next, Qt.DockWidgetArea.LeftDockWidgetArea),
        ("Refine", loop.postprocess_panel, Qt.DockWidgetArea.RightDockWidgetArea),
    ):
        loop.docks[title] = add_dock(window, title, widget, area)
    window.tabifyDockWidget(loop.docks["Training"], loop.docks["Metrics"])
    loop.docks["Training"].raise_()
    for name in ("Refine", "Correct next"):
        loop.docks[name].hide()

    def beside_versions(dock: QDockWidget) -> None:  # the Refine dock as a tab beside Versions, when that dock shows
        versions = window.findChild(QDockWidget, "Versions")
        if (
            versions is not None
            and versions.isVisible()
            and window.dockWidgetArea(versions) == Qt.DockWidgetArea.RightDockWidgetArea
            and versions not in window.tabifiedDockWidgets(dock)
        ):
            window.tabifyDockWidget(versions, dock)

    loop.place_dock = beside_versions
    m_model, m_tools, m_help = window_menu(window, "&Model"), window_menu(window, "&Tools"), window_menu(window, "&Help")
    loop.act_finetune_options = window_action(window, "Fine-tune with options…", loop.finetune_with_options, ["Ctrl+Shift+T"], m_model)
    loop.act_metrics = window_action(window, "Metrics on corrected images", lambda: loop.compute_metrics(), ["Ctrl+M"], m_model)
    loop.act_refine = window_action(window, "Refine labels (CRF / morphology)…", loop.show_refine, ["Ctrl+R"], m_tools)
    loop.act_heatmap = window_action(window, "Uncertainty heat-map", loop.set_heatmap_visible, ["U"], m_tools)
    loop.act_heatmap.setCheckable(True)
    loop.act_correct_next = window_action(window, "Correct next (rank by uncertainty)", loop.show_correct_next, ["Ctrl+U"], m_tools)
    loop.act_device = window_action(window, "Device…", lambda: loop.show_device(), [], m_help)
    window.installEventFilter(loop)
