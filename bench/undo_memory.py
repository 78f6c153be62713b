"""P4: undo-history memory after 1,000 brush strokes (32-px brush) on a 4096×4096 label map (target <= 64 MB).

Strokes: ``segstudio.core.paint.paint_stroke`` (radius 16 px = a 32-px brush) along a smooth random walk of
``POINTS`` brush centres spaced ~12 px (about 200 px of path, the length of a typical correction), with a
random class per stroke, each pushed to :class:`segstudio.core.history.History` as one undo step, exactly as
``Document.stroke`` does. Memory: ``History.nbytes`` (bytes the steps hold) and the growth of traced Python +
numpy allocations (``tracemalloc``) over the 1,000 strokes, which also counts the container overhead.

Baseline: full-copy undo (``labels.copy()`` per step, 16 MB each): measured for ``BASE_STEPS`` steps with
tracemalloc and scaled to 1,000 (16 GB cannot be allocated here). After the run every step is undone and
redone to check the history restores the label map exactly.

Env: ``SEGSTUDIO_BENCH_STROKES`` (1000, quick 200), ``SEGSTUDIO_BENCH_STROKE_POINTS`` (17).
"""

from __future__ import annotations

import os
import time
import tracemalloc

import numpy as np

SIZE = 4096
RADIUS = 16.0  # a 32-px brush
BASE_STEPS = 4


def strokes(n: int, points: int, rng: np.random.Generator):
    """``n`` smooth random-walk polylines of ``points`` (y, x) centres, ~12 px apart."""
    for _ in range(n):
        start = rng.uniform(64, SIZE - 64, size=2)
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.25, size=points))
        steps = 12.0 * np.stack([np.sin(heading), np.cos(heading)], axis=1)
        pts = np.clip(start + np.cumsum(steps, axis=0), 0, SIZE - 1)
        yield pts, int(rng.integers(0, 11))


def run(args) -> dict:
    from segstudio.core.history import History
    from segstudio.core.labels import new_label_map
    from segstudio.core.paint import paint_stroke

    n = int(os.environ.get("SEGSTUDIO_BENCH_STROKES", 200 if args.quick else 1000))
    points = int(os.environ.get("SEGSTUDIO_BENCH_STROKE_POINTS", 17))
    rng = np.random.default_rng(0)
    labels = new_label_map(SIZE, SIZE, fill=0)
    labels[: SIZE // 2] = 3  # two regions, so strokes change real pixels on both
    initial = labels.copy()

    # Baseline: full copies.
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    copies = [labels.copy() for _ in range(BASE_STEPS)]
    full_per_step = (tracemalloc.get_traced_memory()[0] - before) / BASE_STEPS
    del copies
    tracemalloc.stop()

    history = History(max_bytes=1 << 40)  # no budget: keep every step, measure what they cost
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    changed = 0
    for pts, value in strokes(n, points, rng):
        patch = paint_stroke(labels, pts, RADIUS, value)
        history.push(patch)
        changed += patch is not None
    paint_s = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    final = labels.copy()

    t0 = time.perf_counter()
    while history.undo(labels) is not None:
        pass
    undo_s = time.perf_counter() - t0
    restored = bool(np.array_equal(labels, initial))
    while history.redo(labels) is not None:
        pass
    redone = bool(np.array_equal(labels, final))

    mb = 1024 * 1024
    res = {
        "strokes": n,
        "steps_kept": changed,
        "brush_px": 2 * RADIUS,
        "path_px_per_stroke": 12 * (points - 1),
        "history_nbytes_mb": round(history.nbytes / mb, 2),
        "traced_growth_mb": round(traced / mb, 2),
        "baseline_full_copy_mb_per_step": round(full_per_step / mb, 2),
        "baseline_full_copy_mb_total": round(full_per_step * changed / mb, 1),
        "ratio_to_baseline": round(traced / (full_per_step * changed), 5),
        "ms_per_stroke": round(1000 * paint_s / n, 2),
        "ms_per_undo": round(1000 * undo_s / max(1, changed), 3),
        "undo_all_restores": restored,
        "redo_all_restores": redone,
        "target": "<= 64 MB in all (for 1000 strokes)",
    }
    print(
        f"{n} strokes ({2 * RADIUS:.0f}-px brush, ~{12 * (points - 1)} px path) on {SIZE}x{SIZE}: history holds "
        f"{res['history_nbytes_mb']} MB (traced growth {res['traced_growth_mb']} MB); full-copy undo would hold "
        f"{res['baseline_full_copy_mb_total']} MB ({res['baseline_full_copy_mb_per_step']} MB/step); "
        f"undo-all restores: {restored}, redo-all: {redone}; {res['ms_per_stroke']} ms/stroke"
    )
    return res
