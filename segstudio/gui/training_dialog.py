"""Fine-tune options dialog: a time budget for the recipe, or fixed steps, learning rate, crop size, loss, freezing.

The first row chooses the schedule: a budget of 1 / 3 / 10 minutes lets the fine-tune recipe
(:mod:`segstudio.engine.recipe`) choose crop, batch, loss, learning rates and steps from the data (the other
fields are then greyed out), or "Fixed steps" uses the fields as given. It starts at
:func:`segstudio.engine.finetune_config`'s value (or the config passed in), so the one-click fine-tune never
needs the dialog; "Defaults" puts the one-click values back.
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
from segstudio.engine.devices import resolve_device
from segstudio.engine.recipe import BUDGET_CHOICES_MIN, default_budget_s
from segstudio.engine.train_config import CLASS_WEIGHT_METHODS
from segstudio.engine.trainer import RECIPE_FIELDS, check_loss_config

FIXED = "Fixed steps (options below)"

LOSS_CHOICES = ("ce", "focal", "dice", "ce+0.5*dice", "ce+lovasz", "lovasz")
CLASS_WEIGHT_CHOICES = CLASS_WEIGHT_METHODS  # the trainer's own list: a new method shows up here by itself


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
        self.budget = QComboBox()
        self.budget.addItems([f"{m} min" for m in BUDGET_CHOICES_MIN] + [FIXED])
        self.budget.setToolTip(
            "Time budget of the fine-tune: the recipe measures the step time and chooses crop, batch, loss, learning "
            "rates and the number of steps to fill it. 'Fixed steps' uses the options below instead."
        )
        self.budget.currentTextChanged.connect(lambda _: self._enable())
        form.addRow("Budget", self.budget)
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
        """Show the values of ``c`` (fields left to the recipe show the plain :class:`TrainConfig` defaults)."""
        plain = TrainConfig()

        def value(name):
            v = getattr(c, name)
            return getattr(plain, name) if v is None else v

        budget_mode = c.recipe and c.max_steps is None and c.epochs is None
        if budget_mode:
            minutes = (c.budget_s if c.budget_s is not None else self._default_budget_s(c)) / 60
            best = min(BUDGET_CHOICES_MIN, key=lambda m: abs(m - minutes))
            self.budget.setCurrentText(f"{best} min")
        else:
            self.budget.setCurrentText(FIXED)
        self.max_steps.setValue(int(c.max_steps) if c.max_steps is not None else 1_000_000)
        self.epochs.setValue(int(value("epochs")))
        self.batch_size.setValue(int(value("batch_size")))
        self.lr.setValue(float(value("lr")))
        self.crop_h.setValue(int(value("crop_size")[0]))
        self.crop_w.setValue(int(value("crop_size")[1]))
        self.loss.setCurrentText(value("loss"))
        self.class_weights.setCurrentText(value("class_weights"))
        self.freeze_encoder.setChecked(bool(c.freeze_encoder))
        self.freeze_bn.setChecked(bool(value("freeze_bn")))
        self.holdout.setValue(float(c.holdout_fraction))
        self.error.setText("")
        self._enable()

    @staticmethod
    def _default_budget_s(c: TrainConfig) -> float:
        try:
            return default_budget_s(resolve_device(c.device).type)
        except ValueError:  # the configured device is absent here
            return default_budget_s("cpu")

    def budget_minutes(self) -> int | None:
        """The chosen budget in minutes, or ``None`` for fixed steps."""
        text = self.budget.currentText()
        return None if text == FIXED else int(text.split()[0])

    def _enable(self) -> None:
        fixed = self.budget_minutes() is None
        for w in (self.max_steps, self.epochs, self.batch_size, self.lr, self.crop_h, self.crop_w, self.loss,
                  self.class_weights, self.freeze_bn):
            w.setEnabled(fixed)

    def config(self) -> TrainConfig:
        """The edited :class:`TrainConfig` (other fields as in the config given to the dialog).

        With a budget: the recipe chooses every field of :data:`~segstudio.engine.trainer.RECIPE_FIELDS` within
        ``budget_s``; with "Fixed steps": the fields as shown, no recipe and no time limit.
        """
        minutes = self.budget_minutes()
        if minutes is not None:
            auto = {f: None for f in RECIPE_FIELDS}
            auto.update(
                recipe=True,
                budget_s=60.0 * minutes,
                max_steps=None,
                freeze_encoder=self.freeze_encoder.isChecked(),
                holdout_fraction=self.holdout.value(),
            )
            return replace(self._base, **auto)
        fixed = {f: None for f in RECIPE_FIELDS}
        fixed.update(
            recipe=False,
            max_steps=self.max_steps.value(),
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            lr=self.lr.value(),
            crop_size=(self.crop_h.value(), self.crop_w.value()),
            scale_range=self._base.scale_range if self._base.scale_range is not None else TrainConfig().scale_range,
            loss=self.loss.currentText().strip(),
            class_weights=self.class_weights.currentText(),
            freeze_encoder=self.freeze_encoder.isChecked(),
            freeze_bn=self.freeze_bn.isChecked(),
            holdout_fraction=self.holdout.value(),
        )
        return replace(self._base, **fixed)

    def accept(self) -> None:
        """Accept only a valid loss / class-weight combination; otherwise say what is wrong and stay open."""
        try:
            if self.budget_minutes() is None:  # with a budget the recipe picks a valid loss
                check_loss_config(self.config(), self.num_classes)
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        super().accept()
