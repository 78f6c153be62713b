"""Model ▸ Run fine-tune on a cluster…: the exact ``torchrun`` command and a dataset manifest to copy.

The dialog writes ``<folder>/labels/cluster/manifest.json`` (every labelled image, the same held-out split the
one-click fine-tune would use) and shows the ``torchrun ... -m segstudio train`` line that runs the same
fine-tune (:class:`~segstudio.engine.TrainConfig`, starting checkpoint) on N GPUs × M nodes. Paths under the
image folder are rewritten to where the folder lives on the cluster. The result comes back with
Model ▸ Import trained checkpoint… (:func:`segstudio.engine.cluster.import_checkpoint`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from segstudio.engine import TrainConfig
from segstudio.engine.checkpoint import default_checkpoint
from segstudio.engine.cluster import format_command, manifest_for_folder, torchrun_command
from segstudio.io.layout import ProjectLayout


def open_cluster_dialog(parent, state):
    """Model ▸ Run fine-tune on a cluster…: the torchrun command + dataset manifest of the open folder's fine-tune.

    Args:
        parent: the main window.
        state: its :class:`~segstudio.gui.state.ProjectState` (folder, model, fine-tune recipe; saved first).

    Returns the (non-modal) :class:`ClusterDialog`, or ``None`` without an open folder.
    """
    if state.folder is None:
        QMessageBox.information(parent, "SegStudio", "Open an image folder with saved labels first.")
        return None
    state.autosave()
    dialog = ClusterDialog(state.folder, state.model.path if state.model else None, state.finetune_config, parent)
    dialog.open()
    return dialog


def import_trained_checkpoint(parent, state, path: str | Path | None = None) -> bool:
    """Model ▸ Import trained checkpoint…: copy a (cluster) run's model into ``labels/models/vNNN`` and switch to it
    (a worker job of ``state``); asks for the file when ``path`` is not given. False when nothing starts."""
    if state.folder is None:
        QMessageBox.information(parent, "SegStudio", "Open the image folder the model was trained for first.")
        return False
    if not path:
        path, _ = QFileDialog.getOpenFileName(parent, "Import trained checkpoint", str(state.folder), "SegStudio checkpoint (*.safetensors)")
        if not path:
            return False
    return state.import_checkpoint(path)


def default_manifest_path(folder: Path) -> Path:
    """``<folder>/labels/cluster/manifest.json``."""
    return ProjectLayout(folder).cluster_dir / "manifest.json"


class ClusterDialog(QDialog):
    """Shows the torchrun command and the manifest path for running a fine-tune of ``folder`` on a cluster.

    Args:
        folder: the image folder with saved labels.
        init: checkpoint the fine-tune starts from (``None`` or the bundled default → ``"default"``).
        config: the fine-tune's options (the GUI's one-click fine-tune config); the global batch can be changed.
        parent: parent widget.

    Attributes:
        manifest_path: where the manifest was last written (``None`` when writing failed, see :attr:`error`).

    Raises nothing: a failure (no labelled images, a batch that does not divide) is shown in the dialog.
    """

    def __init__(self, folder: Path, init: str | Path | None, config: TrainConfig, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run fine-tune on a cluster")
        self.resize(780, 540)
        self.folder = Path(folder)
        if init is None or Path(init).resolve() == default_checkpoint().resolve():
            init = "default"
        self.init = init
        self.config = config
        self.manifest_path: Path | None = None

        self.nproc = QSpinBox(minimum=1, maximum=64, value=1)
        self.nproc.setToolTip("processes per node: one per GPU")
        self.nnodes = QSpinBox(minimum=1, maximum=4096, value=1)
        self.endpoint = QLineEdit()
        self.endpoint.setPlaceholderText("node0.cluster:29400 (needed for several nodes)")
        self.batch = QSpinBox(minimum=1, maximum=65536, value=config.batch_size or 8)  # None: the recipe's (8 shown)
        self.batch.setToolTip("global batch: images per step over all processes (each loads batch / processes)")
        self.remote = QLineEdit(self.folder.as_posix())
        self.remote.setToolTip("where this image folder (with labels/) is on the cluster")
        self.output = QLineEdit()
        self.output.setPlaceholderText("run folder on the cluster (default <folder>/labels/cluster/run)")
        form = QFormLayout()
        form.addRow("GPUs (processes) per node", self.nproc)
        form.addRow("Nodes", self.nnodes)
        form.addRow("Rendezvous endpoint", self.endpoint)
        form.addRow("Global batch size", self.batch)
        form.addRow("Folder on the cluster", self.remote)
        form.addRow("Run folder", self.output)

        self.manifest_edit = QLineEdit(readOnly=True)
        self.copy_manifest = QPushButton("Copy path")
        self.save_manifest_button = QPushButton("Save manifest as…")
        row = QHBoxLayout()
        row.addWidget(self.manifest_edit, 1)
        row.addWidget(self.copy_manifest)
        row.addWidget(self.save_manifest_button)
        self.manifest_info = QLabel()

        self.command = QPlainTextEdit(readOnly=True)
        self.command.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.command.setMinimumHeight(120)
        self.copy_command = QPushButton("Copy command")
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        hint = QLabel(
            "Copy the image folder (with labels/) to the cluster, run the command on every node (SLURM: srun "
            "it once per node), then Model ▸ Import trained checkpoint… with the run folder's model.safetensors."
        )
        hint.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(QLabel("Dataset manifest"))
        lay.addLayout(row)
        lay.addWidget(self.manifest_info)
        lay.addWidget(QLabel("torchrun command"))
        lay.addWidget(self.command, 1)
        lay.addWidget(self.copy_command)
        lay.addWidget(self.error)
        lay.addWidget(hint)
        lay.addWidget(buttons)

        for w in (self.nproc, self.nnodes, self.batch):
            w.valueChanged.connect(self.update_command)
        for w in (self.endpoint, self.remote, self.output):
            w.textChanged.connect(self.update_command)
        self.copy_command.clicked.connect(lambda: QApplication.clipboard().setText(self.command.toPlainText()))
        self.copy_manifest.clicked.connect(lambda: QApplication.clipboard().setText(self.manifest_edit.text()))
        self.save_manifest_button.clicked.connect(self._ask_save_manifest)
        self.save_manifest(default_manifest_path(self.folder))

    # -- manifest ---------------------------------------------------------------------------
    def save_manifest(self, path: str | Path) -> Path | None:
        """Write the manifest to ``path`` (held-out split as ``config.holdout_fraction``); returns it, or ``None``."""
        try:
            self.manifest_path = manifest_for_folder(self.folder, path, self.config.holdout_fraction)
        except (OSError, ValueError) as exc:  # FileNotFoundError: nothing labelled yet
            self.manifest_path = None
            self.manifest_info.setText("")
            self.error.setText(str(exc))
            self.command.setPlainText("")
            return None
        import json

        splits = json.loads(self.manifest_path.read_text(encoding="utf-8"))["splits"]
        self.manifest_edit.setText(str(self.manifest_path))
        self.manifest_info.setText(
            f"{len(splits['train'])} training and {len(splits.get('val', []))} validation image(s); "
            "paths relative to the manifest"
        )
        self.update_command()
        return self.manifest_path

    def _ask_save_manifest(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save dataset manifest", str(self.manifest_path or default_manifest_path(self.folder)), "JSON (*.json)"
        )
        if path:
            self.save_manifest(path)

    # -- command ----------------------------------------------------------------------------
    def _on_cluster(self, path: Path) -> str:
        """``path`` as seen on the cluster: under the image folder → under the cluster folder."""
        remote = self.remote.text().strip() or self.folder.as_posix()
        try:
            rel = Path(path).resolve().relative_to(self.folder.resolve())
        except ValueError:
            return Path(path).as_posix()
        return str(PurePosixPath(remote) / rel.as_posix())

    def argv(self) -> list[str]:
        """The command as an argv list.

        Raises:
            ValueError: see :func:`segstudio.engine.cluster.torchrun_command`; no manifest written.
        """
        if self.manifest_path is None:
            raise ValueError("no manifest: save corrected labels for at least one image first")
        config = dataclasses.replace(self.config, batch_size=self.batch.value())
        init = self.init if self.init == "default" else self._on_cluster(Path(self.init))
        output = self.output.text().strip() or self._on_cluster(ProjectLayout(self.folder).cluster_dir / "run")
        return torchrun_command(
            self._on_cluster(self.manifest_path),
            output,
            config,
            init=init,
            nproc_per_node=self.nproc.value(),
            nnodes=self.nnodes.value(),
            rdzv_endpoint=self.endpoint.text().strip() or None,
        )

    def update_command(self) -> None:
        """Rebuild the command text (or show why it cannot be built)."""
        self.endpoint.setEnabled(self.nnodes.value() > 1)
        try:
            text = format_command(self.argv())
        except ValueError as exc:
            self.command.setPlainText("")
            self.error.setText(str(exc))
            self.copy_command.setEnabled(False)
            return
        self.error.setText("")
        self.command.setPlainText(text)
        self.copy_command.setEnabled(True)

    def command_text(self) -> str:
        """The command line shown (empty while it cannot be built)."""
        return self.command.toPlainText()
