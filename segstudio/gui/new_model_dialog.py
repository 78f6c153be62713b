"""Model ▸ New model…: train any registered architecture + encoder from scratch on the corrected labels,
and the bundled models (``resources/models``, installed as ``segstudio/resources/models``) in the model picker.

:class:`NewModelDialog` picks the architecture (every name in :func:`segstudio.models.list_models`, with the
paper it implements), the encoder (for encoder-based nets, each marked with whether its ImageNet weights are
on disk) and whether to start the encoder from those weights; a read-only summary shows the project's
classes, the parameter count of the chosen configuration (built on the ``meta`` device in a worker, debounced,
so even a ResNet-101 never stalls the GUI thread) and the training budget (the window's ``finetune_config``).

:class:`NewModelController` adds the menu action and trains the choice through the window's one training path
(:meth:`~segstudio.gui.main_window.MainWindow.train_version`: worker job, progress, Cancel, live curves, a new
``labels/models/vNNN``, then the new model is used and the current image re-predicted). It also lists the
bundled models in the picker, loaded lazily on pick like the folder's versions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QMenu,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from segstudio.core import ClassSpec
from segstudio.engine import TrainConfig
from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR
from segstudio.gui.relay import on_gui
from segstudio.gui.workers import Job, start_job
from segstudio.io import find_samples
from segstudio.models import count_parameters, get_spec, list_models  # noqa: F401  (count_parameters re-exported)
from segstudio.models.encoders import imagenet_weights_on_disk  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

ARCH_TITLES = {
    "deeplabv1": "DeepLab v1",
    "deeplabv2": "DeepLab v2",
    "deeplabv3": "DeepLab v3",
    "deeplabv3plus": "DeepLab v3+",
    "fcn32s": "FCN-32s",
    "fcn16s": "FCN-16s",
    "fcn8s": "FCN-8s",
    "gcn": "GCN (large kernel)",
    "ksac": "KSAC",
    "lraspp": "LR-ASPP",
    "parsenet": "ParseNet",
    "pspnet": "PSPNet",
    "segnet": "SegNet",
    "segnet_basic": "SegNet-Basic (from scratch)",
    "simple_cnn": "Simple CNN (baseline)",
    "unet": "U-Net",
}
"""Readable names of the registered architectures (a name missing here is shown as is)."""

ENCODER_TITLES = {
    "mobilenet_v2": "MobileNetV2",
    "resnet18": "ResNet-18",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "vgg16": "VGG-16",
    "vgg16_bn": "VGG-16-BN",
}
"""Readable names of the encoders of :mod:`segstudio.models.encoders`."""

_DATASET_TITLES = {"camvid": "CamVid", "isbi2012": "ISBI-2012", "voc": "PASCAL VOC", "cityscapes": "Cityscapes"}


def arch_title(name: str) -> str:
    """Readable name of architecture ``name`` (e.g. ``"DeepLab v3+"``)."""
    return ARCH_TITLES.get(name, name)


def encoder_title(name: str) -> str:
    """Readable name of encoder ``name`` (e.g. ``"ResNet-50"``)."""
    return ENCODER_TITLES.get(name, name)


def format_count(n: int) -> str:
    """``2716987`` → ``"2.72 M"``; below a million, thousands (``"188 k"``)."""
    return f"{n / 1e6:.2f} M" if n >= 1_000_000 else f"{n / 1e3:.0f} k"


def bundled_label(card: dict, stem: str = "") -> str:
    """Model-picker text of a bundled model from its card, e.g. ``"bundled: CamVid DeepLab v3+ (MobileNetV2)"``.

    The data set is the first ``_``-separated word of the card's ``name`` (else of ``stem``).
    """
    name = str(card.get("name") or stem)
    dataset = name.split("_")[0]
    text = f"bundled: {_DATASET_TITLES.get(dataset.lower(), dataset)} {arch_title(str(card.get('architecture', '?')))}"
    encoder = (card.get("model_kwargs") or {}).get("encoder")
    return f"{text} ({encoder_title(encoder)})" if encoder else text


def bundled_models(folder: str | Path = DEFAULT_MODEL_DIR) -> list[tuple[str, Path, dict]]:
    """The bundled models of ``folder``: ``(picker label, weights path, card)`` per ``*.safetensors`` with a
    readable ``.json`` card beside it, sorted by file name. Only the cards are read (cheap)."""
    found = []
    for weights in sorted(Path(folder).glob("*.safetensors")):
        try:
            card = json.loads(weights.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("bundled model %s has no readable card: %s", weights.name, exc)
            continue
        if isinstance(card, dict) and "architecture" in card:
            found.append((bundled_label(card, weights.stem), weights, card))
    return found


class NewModelDialog(QDialog):
    """Choose a new model (architecture, encoder, ImageNet initialisation) for the project's classes.

    Args:
        classes: the project's classes (the new model's outputs).
        config: the training budget shown in the summary (the window's ``finetune_config``, BatchNorm trained).
        images: images with saved labels it will train on.
    After ``Accepted``: :meth:`architecture` and :meth:`model_kwargs` give the choice.

    Attributes:
        arch_combo, encoder_combo, pretrained, summary: the widgets (tests drive them).
        param_count: parameters of the current choice, ``None`` while counting.
    """

    _counts: dict[tuple, int] = {}  # (architecture, encoder, classes) -> parameters, shared by every dialog

    def __init__(self, classes: ClassSpec, config: TrainConfig, images: int = 0, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New model")
        self.classes = classes
        self.config = config
        self.images = images
        self.param_count: int | None = None
        self._job_key: tuple | None = None
        self._thread_parent = parent if parent is not None else QCoreApplication.instance()

        lay = QVBoxLayout(self)
        intro = QLabel(
            "Train a new model from scratch on the images whose corrected labels are saved, "
            "for this project's classes. It becomes a new version of the folder's models."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.arch_combo = QComboBox()
        for name in list_models():
            spec = get_spec(name)
            self.arch_combo.addItem(f"{arch_title(name)}  —  {name}", name)
            self.arch_combo.setItemData(self.arch_combo.count() - 1, spec.paper, Qt.ItemDataRole.ToolTipRole)
        form.addRow("Architecture", self.arch_combo)
        self.encoder_combo = QComboBox()
        form.addRow("Encoder", self.encoder_combo)
        self.pretrained = QCheckBox("Start the encoder from ImageNet weights")
        form.addRow("", self.pretrained)
        lay.addLayout(form)

        box = QGroupBox("Summary")
        self.summary_form = QFormLayout(box)
        self.summary = {}
        for key, title in (
            ("paper", "Paper"),
            ("classes", "Classes"),
            ("init", "Initialisation"),
            ("params", "Parameters"),
            ("data", "Data"),
            ("budget", "Training"),
        ):
            label = QLabel()
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if key in ("paper", "classes", "init", "budget"):  # up to two lines: the dialog keeps its size
                label.setMinimumHeight(2 * label.fontMetrics().lineSpacing() + 2)
            self.summary[key] = label
            self.summary_form.addRow(f"{title}:", label)
        self.paper = self.summary["paper"]
        lay.addWidget(box)

        lay.addStretch(1)  # any spare height goes above the buttons
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        lay.addWidget(line)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Train new model")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self._count_parameters)

        names = ", ".join(classes.names)
        self.summary["classes"].setText(f"{classes.num_classes}: {names if len(names) <= 150 else names[:148] + '…'}")
        self.summary["classes"].setToolTip("\n".join(f"{i}: {n}" for i, n in enumerate(classes.names)))
        self.summary["data"].setText(
            f"{images} image(s) with saved labels" if images else "no saved labels yet: save some corrected labels first"
        )
        self.summary["budget"].setText(self._budget_text(config))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(images > 0)

        self.arch_combo.currentIndexChanged.connect(self._on_arch_changed)
        self.encoder_combo.currentIndexChanged.connect(self._on_encoder_changed)
        self.pretrained.toggled.connect(self._update_init)
        default = self.arch_combo.findData("deeplabv3plus")
        self.arch_combo.setCurrentIndex(max(default, 0))
        self._on_arch_changed()
        width = 640  # wrapped labels: size the height for this width (sizeHint guesses a narrower one)
        self.resize(width, max(lay.heightForWidth(width), lay.minimumSize().height()))

    # -- the choice --------------------------------------------------------------------------------
    def architecture(self) -> str:
        """Registry name of the chosen architecture."""
        return self.arch_combo.currentData()

    def encoder(self) -> str | None:
        """The chosen encoder, ``None`` for an architecture without one or when "none" (its own layers) is
        picked for an architecture whose encoder is optional (U-Net)."""
        return self.encoder_combo.currentData() if self.encoder_combo.isEnabled() else None

    def model_kwargs(self) -> dict:
        """Builder arguments for :func:`segstudio.engine.train_on_folder`: ``{"encoder", "pretrained"}`` for an
        encoder-based architecture, ``{}`` otherwise (its own layers, random init)."""
        enc = self.encoder()
        if enc is None:
            return {}
        return {"encoder": enc, "pretrained": self.pretrained.isEnabled() and self.pretrained.isChecked()}

    # -- reactions ---------------------------------------------------------------------------------
    def _on_arch_changed(self, _index: int = -1) -> None:
        spec = get_spec(self.architecture())
        self.paper.setText(spec.paper)
        self.encoder_combo.blockSignals(True)
        self.encoder_combo.clear()
        if spec.encoders:
            if spec.default_encoder is None:  # the encoder is optional (U-Net): its own layers by default
                self.encoder_combo.addItem("none — its own layers (the paper's), random init", None)
            for enc in spec.encoders:
                note = "ImageNet weights on disk" if imagenet_weights_on_disk(enc) else "random init — no weights offline"
                self.encoder_combo.addItem(f"{encoder_title(enc)}  —  {note}", enc)
            self.encoder_combo.setCurrentIndex(max(self.encoder_combo.findData(spec.default_encoder), 0))
            self.encoder_combo.setEnabled(True)
        else:
            self.encoder_combo.addItem("none — its own layers", None)
            self.encoder_combo.setEnabled(False)
        self.encoder_combo.blockSignals(False)
        self._on_encoder_changed()

    def _on_encoder_changed(self, _index: int = -1) -> None:
        enc = self.encoder()
        available = enc is not None and imagenet_weights_on_disk(enc)
        self.pretrained.blockSignals(True)
        self.pretrained.setEnabled(available)
        self.pretrained.setChecked(available)
        self.pretrained.blockSignals(False)
        if enc is None:
            self.pretrained.setToolTip(
                "Its own layers start from random weights; pick an encoder for ImageNet weights"
                if get_spec(self.architecture()).encoders else "This architecture has no ImageNet encoder"
            )
        elif not available:
            self.pretrained.setToolTip(f"{encoder_title(enc)}'s ImageNet weights are not on disk (offline)")
        else:
            self.pretrained.setToolTip("")
        self._update_init()
        self._schedule_count()

    def _update_init(self, _checked: bool = False) -> None:
        enc = self.encoder()
        if enc is None:
            text = (
                "random init (its own layers; pick an encoder for ImageNet weights)"
                if get_spec(self.architecture()).encoders else "random init (this architecture has no ImageNet encoder)"
            )
        elif self.pretrained.isEnabled() and self.pretrained.isChecked():
            text = f"encoder: {encoder_title(enc)} ImageNet weights; decoder and classifier: random init"
        elif not self.pretrained.isEnabled():
            text = f"random init — no {encoder_title(enc)} ImageNet weights on disk (offline)"
        else:
            text = "random init (ImageNet weights not used)"
        self.summary["init"].setText(text)

    @staticmethod
    def _budget_text(config: TrainConfig) -> str:
        tail = "BatchNorm trained (a new model). Model ▸ Fine-tune with options… sets the budget."
        if config.recipe and config.max_steps is None and config.epochs is None:  # the recipe within a time budget
            when = f"{config.budget_s / 60:g}-min budget" if config.budget_s else "the device's default budget"
            return f"the fine-tune recipe within {when} (crop, batch, loss, learning rates chosen from the data); {tail}"

        def val(v, fmt=str):
            return "auto" if v is None else fmt(v)  # None: left to the recipe

        steps = f"{config.max_steps} steps" if config.max_steps else f"{val(config.epochs)} epochs"
        cap = f" (at most {config.epochs} epochs)" if config.max_steps and config.epochs else ""
        crop = val(config.crop_size, lambda c: "×".join(str(v) for v in c))
        return (
            f"{steps}{cap}, batch {val(config.batch_size)}, {crop} crops, lr {val(config.lr, lambda x: f'{x:g}')}, "
            f"loss {val(config.loss)}; {tail}"
        )

    # -- parameter count (worker) --------------------------------------------------------------------
    def _key(self) -> tuple:
        return (self.architecture(), self.encoder(), self.classes.num_classes)

    def _schedule_count(self) -> None:
        key = self._key()
        if key in self._counts:
            self._show_count(key, self._counts[key])
            return
        self.param_count = None
        self.summary["params"].setText("counting…")
        self._debounce.start()

    def _count_parameters(self) -> None:
        key = self._key()
        if key in self._counts:
            self._show_count(key, self._counts[key])
            return
        if self._job_key is not None:  # one count at a time; the newest choice is counted when it ends
            return
        arch, enc, k = key
        kwargs = {"encoder": enc} if enc is not None else {}
        self._job_key = key
        job = Job("count parameters", lambda job: (key, count_parameters(arch, k, kwargs)))
        job.finished.connect(on_gui(self._on_counted, self))
        job.failed.connect(on_gui(self._on_count_failed, self))
        # The job and its thread outlive a closed dialog: start_job holds the job until its thread has
        # finished; the thread is owned by the window (or the application).
        start_job(job, self._thread_parent)

    def _on_counted(self, result) -> None:
        key, n = result
        self._counts[key] = n
        self._job_key = None
        if key == self._key():
            self._show_count(key, n)
        else:
            self._count_parameters()

    def _on_count_failed(self, message: str) -> None:
        self._job_key = None
        self.summary["params"].setText(f"unknown ({message})")

    def _show_count(self, key: tuple, n: int) -> None:
        self.param_count = n
        self.summary["params"].setText(f"{format_count(n)} ({n:,})")


class NewModelController(QObject):
    """Model ▸ New model… and the bundled models in the model picker.

    Args:
        state: the :class:`~segstudio.gui.state.ProjectState` (models, folder, training).
        menu: the Model menu the action goes in (before "Run fine-tune on a cluster…").
        dialog_parent: the widget the dialog and its messages open over.

    Attributes:
        act_new_model: the menu action.
        dialog: the last :class:`NewModelDialog` (tests reach it here).
    """

    def __init__(self, state, menu: QMenu, dialog_parent: QWidget | None = None) -> None:
        super().__init__(dialog_parent)
        self.state, self.dialog_parent = state, dialog_parent
        self.dialog: NewModelDialog | None = None
        self.act_new_model = QAction("New model…", self)
        self.act_new_model.setStatusTip("Train any architecture + encoder from scratch on the saved labels")
        self.act_new_model.triggered.connect(lambda: self.show_dialog())
        before = next((a for a in menu.actions() if a.text().startswith("Run fine-tune on a cluster")), None)
        menu.insertAction(before, self.act_new_model) if before is not None else menu.addAction(self.act_new_model)
        self.add_bundled_models()

    def add_bundled_models(self, folder: str | Path = DEFAULT_MODEL_DIR) -> int:
        """Put the bundled models of ``folder`` in the picker (weights path; loaded when picked).

        A bundled model already in the picker (the start model) keeps its entry. Returns the number added.
        """
        st = self.state
        listed = {}
        for i, e in enumerate(st.models):
            path = e.entry if isinstance(e.entry, Path) else getattr(e.entry, "path", None)
            if path is not None:
                listed[Path(path).resolve()] = i
        added = 0
        for label, path, card in bundled_models(folder):
            tip = f"{label[len('bundled: '):]}: {card.get('architecture')} {card.get('model_kwargs', {})}\n{path}"
            idx = listed.get(path.resolve())
            if idx is None:
                if st.find_model(label) is not None:
                    continue
                st.add_model_entry(label, path, tip)
                added += 1
            else:
                st.models[idx].tooltip = tip
        st.modelsChanged.emit()
        return added

    def _saved_images(self) -> int:
        try:
            return len(find_samples(self.state.folder)[0]) if self.state.folder is not None else 0
        except FileNotFoundError:
            return 0

    def show_dialog(self) -> NewModelDialog | None:
        """Model ▸ New model…: open the dialog (window-modal, non-blocking); OK starts :meth:`train`.

        Returns the dialog, or ``None`` without an open folder.
        """
        parent, st = self.dialog_parent, self.state
        if st.folder is None or st.classes is None:
            QMessageBox.information(parent, "SegStudio", "Open an image folder and save some corrected labels first.")
            return None
        st.autosave()  # the summary counts what is saved now
        dlg = NewModelDialog(st.classes, self._config(), self._saved_images(), parent)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(lambda: self.train(dlg.architecture(), dlg.model_kwargs()))
        self.dialog = dlg
        dlg.open()
        return dlg

    def _config(self) -> TrainConfig:
        # The window's budget; BatchNorm statistics are learnt (frozen ones only make sense for a trained model).
        return replace(self.state.finetune_config, freeze_bn=False)

    def train(self, architecture: str, model_kwargs: dict | None = None) -> bool:
        """Train a new ``architecture`` (builder arguments ``model_kwargs``, e.g. ``{"encoder": "resnet18",
        "pretrained": False}``) on the saved labels as the next version; False when it cannot start."""
        st = self.state
        if st.folder is None:
            return False
        if st.job is not None:
            st.say(f"busy: {st.job.name} is running")
            return False
        n = st.saved_sample_count()
        if not n:
            return False
        kwargs = dict(model_kwargs or {})
        what = f"new {architecture}" + (f" + {kwargs['encoder']}" if kwargs.get("encoder") else "")
        return st.train_version(
            n,
            what=what,
            extra_card={"origin": "new model"},
            model_name=architecture,
            model_kwargs=kwargs,
            init=None,
            config=self._config(),
        )
