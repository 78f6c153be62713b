"""Fine-tune options dialog: steps, epochs, learning rate, crop size, loss, freezing.

Every field starts at :func:`segstudio.engine.finetune_config`'s value (or the config passed in), so the
one-click fine-tune never needs the dialog; "Defaults" puts the one-click values back.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
)

from segstudio.engine import TrainConfig, finetune_config
from segstudio.engine.trainer import check_loss_config

LOSS_CHOICES = ("ce", "focal", "dice", "ce+0.5*dice", "ce+lovasz", "lovasz")
CLASS_WEIGHT_CHOICES = ("none", "median", "inverse")


class TrainingDialog(QDialog):
    """Edit a :class:`TrainConfig` for the fine-tune.

    Args:
        config: starting values (default: :func:`finetune_config`).
        num_classes: K, to check the loss spec before accepting.
    After ``exec()`` returns ``Accepted``, :meth:`config` gives the edited copy (the input is not modified).
    """

    def __init__(self, config: TrainConfig | None = None, num_classes: int = 2, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune options")
        self._base = config or finetune_config()
        self.num_classes = num_classes
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.max_steps = QSpinBox()
        self.max_steps.setRange(1, 1_000_000)
        self.max_steps.setToolTip("Training stops after this many optimizer steps (or after the epochs, if sooner)")
        form.addRow("Steps", self.max_steps)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100_000)
        form.addRow("Max epochs", self.epochs)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 256)
        form.addRow("Batch size", self.batch_size)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        form.addRow("Learning rate", self.lr)
        crop = QHBoxLayout()
        self.crop_h, self.crop_w = QSpinBox(), QSpinBox()
        for sb in (self.crop_h, self.crop_w):
            sb.setRange(32, 4096)
            sb.setSingleStep(32)
            sb.setSuffix(" px")
        crop.addWidget(self.crop_h)
        crop.addWidget(QLabel("×"))
        crop.addWidget(self.crop_w)
        form.addRow("Crop (h × w)", crop)
        self.loss = QComboBox()
        self.loss.setEditable(True)  # any spec get_loss understands, e.g. "ce+0.3*dice"
        self.loss.addItems(LOSS_CHOICES)
        form.addRow("Loss", self.loss)
        self.class_weights = QComboBox()
        self.class_weights.addItems(CLASS_WEIGHT_CHOICES)
        form.addRow("Class weights", self.class_weights)
        self.freeze_encoder = QCheckBox("Freeze encoder (train decoder/head only)")
        form.addRow(self.freeze_encoder)
        self.freeze_bn = QCheckBox("Freeze BatchNorm statistics")
        form.addRow(self.freeze_bn)
        self.holdout = QDoubleSpinBox()
        self.holdout.setRange(0.0, 0.5)
        self.holdout.setSingleStep(0.05)
        self.holdout.setToolTip("Fraction of saved images held out for the validation curve (with 5 or more)")
        form.addRow("Held-out fraction", self.holdout)
        lay.addLayout(form)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Fine-tune")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(lambda: self.load(finetune_config()))
        lay.addWidget(self.buttons)
        self.load(self._base)

    def load(self, c: TrainConfig) -> None:
        """Show the values of ``c``."""
        self.max_steps.setValue(int(c.max_steps) if c.max_steps is not None else 1_000_000)
        self.epochs.setValue(int(c.epochs))
        self.batch_size.setValue(int(c.batch_size))
        self.lr.setValue(float(c.lr))
        self.crop_h.setValue(int(c.crop_size[0]))
        self.crop_w.setValue(int(c.crop_size[1]))
        self.loss.setCurrentText(c.loss)
        self.class_weights.setCurrentText(c.class_weights)
        self.freeze_encoder.setChecked(bool(c.freeze_encoder))
        self.freeze_bn.setChecked(bool(c.freeze_bn))
        self.holdout.setValue(float(c.holdout_fraction))
        self.error.setText("")

    def config(self) -> TrainConfig:
        """The edited :class:`TrainConfig` (other fields as in the config given to the dialog)."""
        return replace(
            self._base,
            max_steps=self.max_steps.value(),
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            lr=self.lr.value(),
            crop_size=(self.crop_h.value(), self.crop_w.value()),
            loss=self.loss.currentText().strip(),
            class_weights=self.class_weights.currentText(),
            freeze_encoder=self.freeze_encoder.isChecked(),
            freeze_bn=self.freeze_bn.isChecked(),
            holdout_fraction=self.holdout.value(),
        )

    def accept(self) -> None:
        """Accept only a valid loss / class-weight combination; otherwise say what is wrong and stay open."""
        try:
            check_loss_config(self.config(), self.num_classes)
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        super().accept()
