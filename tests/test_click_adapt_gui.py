"""Issue 34, item 3 in the window: an object applied with the click tool adapts the click decoder in a worker, the
adapted weights are saved with the project and answer the next clicks, and Reset forgets them (pytest-qt,
offscreen, the real window and the shipped click model on two small CamVid frames)."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from segstudio.engine.click.cache import shared_click_model
from segstudio.gui.tools import TOOL_CLICK, ClickTool

from helpers import small_camvid_folder
from qt_helpers import left_click, show_window

SIZE = (240, 180)


@pytest.fixture()
def folder(tmp_path, camvid):
    return small_camvid_folder(tmp_path, camvid, 2, SIZE)


def test_applied_objects_adapt_the_decoder_kept_with_the_project_and_reset(qtbot, folder, monkeypatch):
    monkeypatch.setattr(ClickTool, "ADAPT_SECONDS", 0.5)
    win = show_window(qtbot, None, active=False)
    assert win.open_folder(folder)
    cv = win.canvas
    tool = cv.tools[TOOL_CLICK]
    f = folder / "labels" / "models" / "click_adapted.safetensors"
    try:
        win.set_tool(TOOL_CLICK)
        qtbot.waitUntil(lambda: tool.session() is not None and not cv.busy, timeout=120_000)
        h, w = win.current_doc().shape
        left_click(cv, w // 2, h // 2)
        qtbot.waitUntil(lambda: tool.mask is not None and not tool.busy, timeout=60_000)
        cv.setFocus()
        qtbot.keyClick(cv, Qt.Key.Key_Return)
        assert len(win.current_doc().history) == 1
        qtbot.waitUntil(lambda: tool.adaptations == 1 and not cv.jobs.running(ClickTool.JOB_ADAPT), timeout=120_000)
        assert f.is_file() and f.with_suffix(".json").is_file()
        guard = json.loads(f.with_suffix(".json").read_text())["guard"]
        assert len(guard["scores"]) == 1 and guard["use_adapted"]  # the object was scored before it trained
        base = shared_click_model(tool.model_path)
        assert tool.session().model is not base  # the adapted decoder answers now, on the same encoding
        assert tool.session().encoder_runs == 1
        left_click(cv, w // 2, h // 2)
        qtbot.waitUntil(lambda: tool.mask is not None and not tool.busy, timeout=60_000)
        tool.cancel()
        reset = [a for a in win.findChildren(QAction) if a.text().startswith("Reset click-to-segment learning")]
        assert len(reset) == 1
        reset[0].trigger()  # Model ▸ Reset click-to-segment learning (this folder)
        assert not f.exists() and tool.session().model is base
        assert tool.reset_adaptation() is False
    finally:
        qtbot.waitUntil(lambda: not cv.busy, timeout=120_000)
