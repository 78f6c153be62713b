"""The training side of :class:`~segstudio.gui.state.ProjectState`: fine-tune, train a new version, import a
trained checkpoint.

``ProjectState`` owns the one :class:`TrainController` (a private collaborator like
:class:`~segstudio.gui.state_predict.PredictController`): it changes the state only through ``ProjectState``'s
public methods, starts its jobs on the state's one runner (:meth:`ProjectState.start
<segstudio.gui.state.ProjectState.start>`) and announces through the owner's signals (``trainingStarted``,
``versionCancelled``); widgets and controllers keep calling :meth:`ProjectState.finetune`,
:meth:`ProjectState.train_version`... .
"""

from __future__ import annotations

import time
from pathlib import Path

from segstudio.engine import Cancelled, LoadedModel, TrainConfig, load_checkpoint, next_version_dir
from segstudio.gui.jobs import MAIN
from segstudio.gui.workers import Job
from segstudio.io import find_samples
from segstudio.io.project import mark_version_cancelled


class TrainController:
    """Trains new model versions for its :class:`~segstudio.gui.state.ProjectState` (see the module docstring).

    Args:
        state: the owning project state.
    """

    def __init__(self, state) -> None:
        self.st = state

    def saved_sample_count(self) -> int:
        """Autosave, then count the open folder's images with saved labels (0 after telling the user to save some)."""
        st = self.st
        st.autosave()
        try:
            samples, _ = find_samples(st.folder)
        except FileNotFoundError:
            samples = []
        if not samples:
            st.prompts.info("Save corrected labels for at least one image first.")
        return len(samples)

    def finetune(self) -> bool:
        """Train the current model on every image with saved labels, as a new version ``labels/models/vNNN``."""
        st = self.st
        if st.folder is None or st.model is None:
            return False
        if st.read_only:
            st.say("a read-only folder cannot hold a fine-tuned version: reopen it with a separate labels folder")
            return False
        n = st.saved_sample_count()
        return bool(n) and self.train_version(n, init=st.model.path, config=st.finetune_config)

    def train_version(self, n_images: int, what: str = "fine-tune", extra_card: dict | None = None, **train_kwargs) -> bool:
        """Train in a worker on the folder's saved labels as a new version ``labels/models/vNNN``.

        The one path of the one-click fine-tune and of Model ▸ New model…: progress bar and Cancel, live curves
        (``trainingStarted``), then the new model is used and the current image re-predicted. A cancelled run
        that left a checkpoint is marked cancelled (:func:`~segstudio.io.project.mark_version_cancelled`).

        Args:
            n_images: images with saved labels (for the status message).
            what: the job's wording in the status bar (``"fine-tune"``, ``"new lraspp"``...).
            extra_card: model-card fields on top of ``name`` (``"<folder>/vNNN"``).
            train_kwargs: :func:`~segstudio.engine.train_on_folder` arguments (``init`` or ``model_name`` +
                ``model_kwargs``, ``config``).
        """
        st = self.st
        if st.job is not None and st.job.name != "predict":
            st.say(f"busy: {st.job.name} is running")
            return False
        out_dir = next_version_dir(st.folder)
        folder = st.folder
        card = {"name": f"{folder.name}/{out_dir.name}", **(extra_card or {})}
        train = st.train_fn

        budget_s = self.expected_budget_s(train_kwargs.get("config"))  # the status bar shows time until steps are planned

        def work(job: Job):
            last, first_total, t0 = {}, [], time.perf_counter()

            def cb(event: str, info: dict) -> None:
                job.emit_result(event, dict(info))  # live curves in the training dock
                if event == "step":
                    last.update(info)
                    total = info["total_steps"]
                    first_total[:1] = first_total[:1] or [total]
                    text = (f"{what} {out_dir.name}: epoch {info['epoch'] + 1} step {info['step']}/{info['steps_per_epoch']}"
                            f" loss {info['loss']:.3f}")
                    if budget_s and total == first_total[0]:  # a budget run before its steps are planned: time
                        job.report(int(min(time.perf_counter() - t0, budget_s)), int(budget_s), text)
                    else:
                        job.report(info["global_step"], total, text)

            try:
                path = train(folder, out_dir, callbacks=[cb], cancel=job.cancel_token, extra_card=card, **train_kwargs)
            except Cancelled:
                info = {"steps_done": last.get("global_step"), "total_steps": last.get("total_steps")}
                if mark_version_cancelled(out_dir, info) is not None:
                    job.cancelled_dir = out_dir
                raise
            return load_checkpoint(path)

        job = Job("fine-tune", work)  # one kind for the training dock's Cancel
        job.cancelled_dir = None
        job.budget_s = self.expected_budget_s(train_kwargs.get("config"))  # the training dock shows it until steps are planned

        def on_finished(loaded) -> None:
            self._on_trained(loaded, out_dir, n_images, what)

        def on_done() -> None:
            if job.cancelled_dir is not None:
                st.add_model_entry(f"{folder.name}/{out_dir.name} (cancelled)", out_dir / "model.safetensors", folder=folder)
                st.versionCancelled.emit(out_dir)
                st.say(f"{what} cancelled; {out_dir.name} is kept as a cancelled version (its last good checkpoint)")

        def begin() -> bool:
            return st.start(job, MAIN, on_finished=on_finished, on_done=on_done, on_ready=lambda j: st.trainingStarted.emit(j, out_dir))

        running = st.job
        if running is not None and running.name == "predict":  # training supersedes a prediction in flight
            running.cancel()
            st.run_after_main_job(begin)
            st.say(f"{what} starts once the running prediction has stopped")
            return True
        return begin()

    def expected_budget_s(self, config: TrainConfig | None) -> float | None:
        """The time budget (seconds) a fine-tune with ``config`` runs under: its ``budget_s``, else the recipe's
        default for the device (:func:`~segstudio.engine.recipe.default_budget_s`) when no step or epoch count
        replaces it; ``None`` for a run without a budget."""
        st = self.st
        if config is None:
            return None
        if config.budget_s is not None:
            return float(config.budget_s)
        if config.recipe and config.max_steps is None and config.epochs is None:
            from segstudio.engine.distributed import current, device_for
            from segstudio.engine.recipe import default_budget_s

            try:
                kind = device_for(current(), config.device or st.device).type
            except (RuntimeError, ValueError):
                kind = "cpu"
            return float(default_budget_s(kind))
        return None

    def _on_trained(self, loaded: LoadedModel, out_dir: Path, n: int, what: str) -> None:
        st = self.st
        st.add_model_entry(f"{st.folder.name}/{out_dir.name}", loaded, folder=st.folder)
        st.set_model(loaded, f"{st.folder.name}/{out_dir.name}")
        done = "fine-tuned" if what == "fine-tune" else f"{what} trained"
        st.say(f"{done} on {n} labelled image(s): new model {out_dir.name}")

    def import_checkpoint(self, path: str | Path) -> bool:
        """Copy a (cluster) run's model into ``labels/models/vNNN`` in a worker, then switch to it."""
        st = self.st
        from segstudio.engine.cluster import import_checkpoint

        folder = st.folder
        job = Job("import checkpoint", lambda job: load_checkpoint(import_checkpoint(path, folder)))

        def on_finished(loaded: LoadedModel) -> None:
            st.set_model(loaded, loaded.card.get("name") or loaded.display_name)
            st.say(f"imported {loaded.card.get('imported_from')} as {loaded.path.parent.name}")

        return st.start(job, MAIN, on_finished=on_finished)
