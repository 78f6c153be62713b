"""GUI responsiveness while the click model learns from the user's objects (issue 34, item 3): gaps of a 10 ms
heartbeat timer on the GUI thread while the click tool adapts its decoder in a worker (offscreen Qt, CPU, the
shipped click model), the method of ``python -m bench gui_heartbeat``.

Data: 3 CamVid val frames from ``../shared/datasets/camvid`` copied into a temporary project folder. The click tool
is switched on and the shown image encoded; then, for each of ``--objects`` (default 4) ground-truth objects of
the shown image (the largest first), the object is applied as the tool's Enter does (its mask written as one undo
step) and an adaptation job runs (:attr:`ClickTool.ADAPT_SECONDS` s each; a job that starts while one runs is
queued, as in the app). Phases: ``idle`` (nothing running: this machine's timer jitter under its load) and
``adapt`` (from the first Enter until the last adaptation job has ended). Goal (issue 34): p99 gap <= 100 ms while
adapting.

Usage: ``python -m bench click_heartbeat [--quick] [--record]``
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

from bench.gui_heartbeat import STALL_MS, Heartbeat, _stats  # noqa: E402

RECORD_MODELS = ("interactive/clicknet_mobilenetv2",)
"""The shipped click model, whose weights these figures depend on (``--record`` names it)."""


def run(args) -> dict:
    from PySide6.QtWidgets import QApplication

    import segstudio.gui.main_window as mw
    from segstudio.engine.click.protocol import object_masks
    from segstudio.engine.click.session import default_click_model_path
    from segstudio.gui.tools import TOOL_CLICK
    from segstudio.io import read_index_png

    quick = bool(getattr(args, "quick", False))
    n_objects = 2 if quick else 4
    app = QApplication.instance() or QApplication([])
    camvid = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"
    if not (camvid / "val.txt").is_file():
        raise SystemExit(f"{camvid}: CamVid is needed for this benchmark")
    work = Path(tempfile.mkdtemp(prefix="segstudio-click-heartbeat-"))
    try:
        names = (camvid / "val.txt").read_text().split()[:3]
        for n in names:
            shutil.copy(camvid / "images" / f"{n}.png", work / f"{n}.png")
        win = mw.MainWindow(None)
        hb = Heartbeat(app, mw)
        win.show()
        ticks, timer, pump_until = hb.ticks, hb.timer, hb.pump_until

        win.open_folder(work)
        cv = win.canvas
        tool = cv.tools[TOOL_CLICK]
        win.set_tool(TOOL_CLICK)
        pump_until(lambda: tool.session() is not None and not cv.busy, 300)
        pump_until(lambda: False, 1.0)
        doc = win.current_doc()
        labels = read_index_png(camvid / "masks" / f"{doc.path.stem}.png")
        objs = sorted(object_masks(labels), key=lambda o: -int(o[1].sum()))[:n_objects]
        timer.start()
        results: dict = {}
        ticks.clear()
        pump_until(lambda: False, 2.0 if quick else 5.0)
        results["idle"] = _stats(ticks)

        from segstudio.engine.click.protocol import next_click

        ticks.clear()
        t0 = time.perf_counter()
        for _, gt in objs:  # as Enter does: the object's mask becomes labels, then the decoder adapts
            c = next_click(gt, np.zeros_like(gt))
            tool.clicks, tool._doc, tool.mask = [c], doc, gt.copy()
            patch = tool.commit()
            assert patch is not None, "the object was not applied"
            pump_until(lambda: False, 0.3)  # the person moves on to the next object meanwhile
        pump_until(lambda: not cv.jobs.running(tool.JOB_ADAPT) and not tool._adapt_again, 600)
        results["adapt"] = {**_stats(ticks), "seconds": round(time.perf_counter() - t0, 1), "objects": len(objs),
                            "adaptation_jobs": tool.adaptations, "adapt_seconds_per_job": tool.ADAPT_SECONDS}
        timer.stop()
        win.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["click_model"] = str(default_click_model_path().name)
    for phase in ("idle", "adapt"):
        r = results[phase]
        print(f"{phase:6s} gaps p50 {r.get('p50_ms')} ms  p99 {r.get('p99_ms')} ms  max {r.get('max_ms')} ms  "
              f">{STALL_MS} ms: {r.get(f'gaps_over_{STALL_MS}ms')}")
    a = results["adapt"]
    print(f"adapt: {a['objects']} objects applied, {a['adaptation_jobs']} adaptation jobs, {a['seconds']} s")
    return results
