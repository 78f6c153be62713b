"""Issue 19: the click tool encodes the shown image in a worker and prefetches the next one (pytest-qt,
offscreen, the real window and the shipped click model on three small CamVid frames): opening the next image
with the click tool on needs no new encode, a click there gives a mask, a file replaced on disk is encoded
anew (never served from the cache), and a window whose click tool was never switched on encodes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from segstudio.gui.tools import TOOL_CLICK, ClickTool, image_key

from helpers import small_camvid_folder
from qt_helpers import left_click, show_window

SIZE = (240, 180)  # (W, H): a quarter of CamVid's side, so each encode is short on a CPU


@pytest.fixture()
def folder(tmp_path, camvid):
    return small_camvid_folder(tmp_path, camvid, 3, SIZE)


def _encoding(cv) -> bool:
    return any(cv.jobs.running(n) for n in list(cv.jobs._jobs) if n.startswith("click:encode") or n == ClickTool.JOB_PREFETCH)


def test_next_image_is_prefetched_and_served_from_the_cache(qtbot, folder):
    win = show_window(qtbot, None, active=False)  # no model: no predictions compete with the encodes
    assert win.open_folder(folder)
    cv = win.canvas
    tool = cv.tools[TOOL_CLICK]
    assert isinstance(tool, ClickTool)
    try:
        # never switched on: moving through the images encodes nothing
        win.step(1)
        win.step(-1)
        assert win.index == 0 and tool.encodes == 0 and not cv.busy

        win.set_tool(TOOL_CLICK)
        # the shown image, then the next one (f1.png) in the background
        qtbot.waitUntil(lambda: tool.encodes == 2 and not cv.busy, timeout=120_000)
        assert tool.session() is not None
        h, w = win.current_doc().shape
        left_click(cv, w // 2, h // 2)
        qtbot.waitUntil(lambda: tool.mask is not None and not tool.busy, timeout=60_000)

        win.step(1)  # → f1.png, prefetched: its encoding is there at once, no encode job started for it
        doc1 = win.current_doc()
        assert doc1.path.name == "f1.png"
        assert tool.session(doc1) is not None and tool.hits == 1 and tool.encodes == 2
        assert not any(n.startswith("click:encode") for n in cv.jobs._jobs)
        left_click(cv, w // 2, h // 2)
        qtbot.waitUntil(lambda: tool.mask is not None and not tool.busy, timeout=60_000)
        assert tool.mask.shape == doc1.shape and tool.mask.any(), "a click on the prefetched image gives a mask"
        assert tool.encodes in (2, 3)  # 3 once f2.png's prefetch has ended; never an encode of f1.png

        # f2.png was prefetched meanwhile; now the file is replaced: its cached encoding must not be served
        qtbot.waitUntil(lambda: tool.encodes == 3 and not _encoding(cv), timeout=120_000)
        tool.cancel()
        f2 = folder / "f2.png"
        replaced = np.ascontiguousarray(np.asarray(Image.open(f2).convert("RGB"))[:, ::-1])
        Image.fromarray(replaced).save(f2)
        win.step(1)
        doc2 = win.current_doc()
        assert doc2.path == f2 and np.array_equal(doc2.image, replaced)
        assert tool.session(doc2) is None and tool.hits == 1, "a replaced file is encoded anew"
        qtbot.waitUntil(lambda: tool.session(doc2) is not None and not cv.busy, timeout=120_000)
        assert tool.encodes == 4 and tool.cache_key(doc2) == image_key(f2, replaced)
        assert len(tool.encodings) <= ClickTool.CACHE
    finally:
        qtbot.waitUntil(lambda: not cv.busy, timeout=120_000)


def test_moving_to_the_image_being_prefetched_waits_for_it(qtbot, folder, monkeypatch):
    """Next pressed while the next image's prefetch still runs: no second encode of the same image starts;
    the prefetch's result becomes the shown image's encoding, and a click made meanwhile is answered."""
    import threading

    from PySide6.QtCore import QThread

    from segstudio.gui.tools import click as tools

    gate = threading.Event()
    shared = tools.shared_click_model

    def gated(path=None):  # holds the prefetch worker until the test opens the gate
        if QThread.currentThread().objectName() == f"segstudio-{ClickTool.JOB_PREFETCH}":
            assert gate.wait(120)
        return shared(path)

    monkeypatch.setattr(tools, "shared_click_model", gated)
    win = show_window(qtbot, None, active=False)
    assert win.open_folder(folder)
    cv = win.canvas
    tool = cv.tools[TOOL_CLICK]
    try:
        win.set_tool(TOOL_CLICK)
        # (the f0 encode job's "done" arrives after its result, which already started the prefetch)
        qtbot.waitUntil(lambda: tool.encodes == 1 and cv.jobs.running(ClickTool.JOB_PREFETCH)
                        and not any(n.startswith("click:encode") for n in cv.jobs._jobs), timeout=120_000)
        win.step(1)
        doc1 = win.current_doc()
        assert tool.session(doc1) is None and not any(n.startswith("click:encode") for n in cv.jobs._jobs)
        h, w = doc1.shape
        left_click(cv, w // 2, h // 2)  # before the encoding is there
        assert len(tool.clicks) == 1 and tool.mask is None
        gate.set()
        qtbot.waitUntil(lambda: tool.mask is not None and not tool.busy, timeout=120_000)
        assert tool.session(doc1) is not None and tool.mask.shape == doc1.shape
        qtbot.waitUntil(lambda: not cv.busy, timeout=120_000)
        assert tool.encodes == 3  # f0, f1 (the prefetch, once), then f2 prefetched
    finally:
        gate.set()
        qtbot.waitUntil(lambda: not cv.busy, timeout=120_000)


def test_review_queue_prefetches_the_queues_next_image(qtbot, folder):
    """While the review queue is open, "next" is the queue's next image, not the file list's: with a queue
    f1, f0, f2 the click tool encodes f1 and prefetches f0 (the file list would say f2); Enter with an object
    clicked writes its mask (the image stays), Enter again accepts and shows f0 from the cache, Space then
    shows f2, prefetched meanwhile; closing the queue gives the canvas back the file-list order."""
    win = show_window(qtbot, None, active=False)
    assert win.open_folder(folder)
    cv, rq = win.canvas, win.review
    tool = cv.tools[TOOL_CLICK]
    f0, f1, f2 = (folder / f"f{i}.png" for i in range(3))
    try:
        rq.open([f1, f0, f2])
        assert rq.active and win.current_doc().path == f1
        assert cv.next_image_path() == f0 and win.state.next_path() == f2
        win.set_tool(TOOL_CLICK)
        qtbot.waitUntil(lambda: tool.encodes == 2 and not cv.busy, timeout=120_000)
        assert {k[0] for k in tool.encodings} == {str(f1), str(f0)}, "the queue's next image is prefetched, not f2"

        doc1 = win.current_doc()
        h, w = doc1.shape
        left_click(cv, w // 2, h // 2)
        qtbot.waitUntil(lambda: tool.mask is not None and not tool.busy, timeout=60_000)
        cv.setFocus()
        before = doc1.labels.copy()
        qtbot.keyClick(cv, Qt.Key.Key_Return)  # clicks pending: Enter writes the object, the review stays here
        assert win.current_doc() is doc1 and not tool.clicks and doc1.edits > 0
        assert (doc1.labels != before).any()
        qtbot.keyClick(cv, Qt.Key.Key_Return)  # now Enter accepts (corrected) and moves on to f0
        assert rq.outcome[f1] == "corrected"
        doc0 = win.current_doc()
        assert doc0.path == f0
        assert tool.session(doc0) is not None and tool.hits == 1 and tool.encodes == 2
        assert not any(n.startswith("click:encode") for n in cv.jobs._jobs)

        assert cv.next_image_path() == f2  # the queue's next (the file list's would be f1, already cached)
        qtbot.waitUntil(lambda: tool.encodes == 3 and not _encoding(cv), timeout=120_000)
        qtbot.keyClick(cv, Qt.Key.Key_Space)  # skip → f2, prefetched
        doc2 = win.current_doc()
        assert doc2.path == f2 and tool.session(doc2) is not None and tool.hits == 2 and tool.encodes == 3
        assert cv.next_image_path() is None  # the end of the queue

        qtbot.keyClick(cv, Qt.Key.Key_Space)  # the queue ends: the file list's order again
        assert not rq.active and cv.next_image_provider == win.state.next_path
        win.step(-1)
        assert win.current_doc().path == f1 and cv.next_image_path() == f2
    finally:
        qtbot.waitUntil(lambda: not cv.busy, timeout=120_000)
