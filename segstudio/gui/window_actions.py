"""The main window's menus and window-wide shortcuts (File, Edit, Tools, Model, Help): a builder that only lays
out the window, wiring each action to the state's, the canvas's or the window's methods."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from segstudio.gui.qtutil import window_action
from segstudio.gui.toolbar import make_tool_actions
from segstudio.gui.tools import TOOL_CLICK

CLASS_KEYS = [str(k) for k in range(1, 10)] + ["0"] + [f"Alt+{k}" for k in range(1, 10)] + ["Alt+0"]
"""Shortcut of class 1..20: 1..9, 0 (10), Alt+1..Alt+9 (11..19), Alt+0 (20)."""


def build_actions(window) -> None:
    """Menus and actions of ``window`` (a :class:`~segstudio.gui.main_window.MainWindow` whose state, canvas,
    controls and docks exist). Sets ``window.act_open``, ``act_save``, ``act_undo``, ``act_redo``, ``tool_actions``,
    ``act_fill_unlabelled``, ``act_clear``, ``act_outline`` and ``act_tta``."""
    mb, st, cv = window.menuBar(), window.state, window.canvas
    m_file, m_edit, m_tools, m_model = mb.addMenu("&File"), mb.addMenu("&Edit"), mb.addMenu("&Tools"), mb.addMenu("&Model")
    window.act_open = window_action(window, "Open Folder…", window.ask_open_folder, ["Ctrl+O"], m_file)
    window.act_save = window_action(window, "Save labels (accept this image)", window.save_current, ["Ctrl+S"], m_file)
    window_action(window, "Next image", lambda: window.step(1), ["Right", "PgDown"], m_file)
    window_action(window, "Previous image", lambda: window.step(-1), ["Left", "PgUp"], m_file)
    window_action(window, "Quit", window.close, ["Ctrl+Q"], m_file)
    window.act_undo = window_action(window, "Undo", cv.undo, ["Ctrl+Z"], m_edit)
    window.act_redo = window_action(window, "Redo", cv.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], m_edit)
    window.tool_actions = make_tool_actions(window, m_tools)  # toolbar.TOOL_ACTIONS: one line per tool
    window.act_fill_unlabelled = window_action(
        window, "Fill unlabelled with class", lambda: window.controls.fill_unlabelled(window.state.current_class), ["Shift+F"], m_edit
    )
    window.act_clear = window_action(window, "Clear labels", window.controls.clear_labels, ["Shift+Del"], m_edit)
    for act in (
        window_action(window, "Close polygon", cv.close_shape, ["Return", "Enter"], m_tools),
        window_action(window, "Cancel polygon / rectangle", cv.cancel_shape, ["Esc"], m_tools),
    ):  # only while the canvas has focus, so Enter/Esc still work in the docks' fields
        act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        cv.addAction(act)
    window.act_outline = window_action(window, "Outline mode", cv.set_outline, ["Shift+O"], m_tools)
    window.act_outline.setCheckable(True)
    window_action(window, "Hide/show current class", window.class_panel.toggle_current_class, ["H"], m_tools)
    window_action(window, "Smaller brush (÷1.25)", lambda: window.controls.step_brush(False), ["["], m_tools)
    window_action(window, "Bigger brush (×1.25)", lambda: window.controls.step_brush(True), ["]"], m_tools)
    window_action(window, "Toggle overlay (hold V: peek)", lambda: window.class_panel.show_overlay.toggle(), ["O"], m_tools)
    window_action(window, "Zoom to fit", cv.zoom_fit, ["Ctrl+0"], m_tools)
    window_action(window, "Zoom 1:1", window.controls.zoom_1to1, ["Ctrl+1"], m_tools)
    window_action(window, "Peek under the overlay (hold on the image)", lambda: None, ["V"], m_tools)
    for c, key in enumerate(CLASS_KEYS):
        window_action(window, f"Class {c + 1}", lambda checked=False, c=c: window.pick_class(c), [key])
    window_action(window, "Predict image", st.predict_current, ["Ctrl+P"], m_model)
    window_action(window, "Predict folder", st.predict_folder, ["Ctrl+Shift+P"], m_model)
    tta = window.act_tta = QAction("Flip test-time augmentation (about 2× slower)", window)
    tta.setCheckable(True)
    tta.setChecked(st.inference_tta)
    tta.setToolTip("Also predict each image mirrored left-right and average the two (segstudio predict --tta)")
    tta.toggled.connect(st.set_inference_tta)
    m_model.addAction(tta)
    window_action(window, "Fine-tune on saved labels", window.finetune, ["Ctrl+T"], m_model)
    window_action(window, "Run fine-tune on a cluster…", window.run_on_cluster, (), m_model)
    window_action(window, "Import trained checkpoint…", window.import_trained_checkpoint, (), m_model)
    window_action(window, "Reset click-to-segment learning (this folder)",
                  lambda: cv.tools[TOOL_CLICK].reset_adaptation(), (), m_model)
    window_action(window, "Keyboard shortcuts", window.show_shortcuts, ["F1"], mb.addMenu("&Help"))
