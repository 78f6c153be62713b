"""P4: undo-history memory after 1,000 brush strokes (32-px brush) on a 4096×4096 label map (target <= 64 MB).

Strokes: ``segstudio.core.paint.paint_stroke`` (radius 16 px = a 32-px brush) along a smooth random walk of
``POINTS`` brush centres spaced ~12 px (about 200 px of path, the length of a typical correction), with a
random class per stroke, each pushed to :class:`segstudio.core.history.History` as one undo step, exactly as
``Document.stroke`` does. Memory: ``History.nbytes`` (bytes the steps hold) and the growth of traced Python +
numpy allocations (``tracemalloc``) over the 1,000 strokes, which also counts the container overhead.

Baseline: full-copy undo (``labels.copy()`` per step, 16 MB each): measured for ``BASE_STEPS`` steps with
tracemalloc and scaled to 1,000 (16 GB cannot be allocated here). After the run every step is undone and
redone to check the history restores the label map exactly.

History stores each step packed (zlib level 1 of *before* and of ``after ^ before``), so its size depends on
the label map under the strokes: ``SEGSTUDIO_BENCH_LABELS`` picks ``halves`` (default: two flat regions),
``camvid`` (a CamVid val ground-truth mask scaled to 4096x4096, nearest: real class boundaries) or ``noise``
(a random class per pixel: the incompressible worst case). Times: ``push`` (packing) and single-step
undo/redo latency (median and max over all steps).

Env: ``SEGSTUDIO_BENCH_STROKES`` (1000, quick 200), ``SEGSTUDIO_BENCH_STROKE_POINTS`` (17),
``SEGSTUDIO_BENCH_LABELS`` (halves).
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np

SIZE = 4096
RADIUS = 16.0  # a 32-px brush
BASE_STEPS = 4
CAMVID = Path(os.environ.get("SEGSTUDIO_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets" / "camvid"


RECORD_MODELS = ()
"""Bundled models whose weights these figures depend on (``python -m bench undo_memory --record`` names them)."""

def initial_labels(kind: str) -> np.ndarray:
    """The 4096x4096 uint8 label map the strokes are painted on (see the module docstring)."""
    from segstudio.core.labels import new_label_map

    if kind == "halves":
        labels = new_label_map(SIZE, SIZE, fill=0)
        labels[: SIZE // 2] = 3  # two regions, so strokes change real pixels on both
        return labels
    if kind == "camvid":
        from PIL import Image

        stem = (CAMVID / "val.txt").read_text().split()[0]
        mask = np.asarray(Image.open(next((CAMVID / "masks").glob(Path(stem).stem + ".*"))))
        rows = np.arange(SIZE) * mask.shape[0] // SIZE
        cols = np.arange(SIZE) * mask.shape[1] // SIZE
        return np.ascontiguousarray(mask[rows[:, None], cols[None, :]]).astype(np.uint8)
    if kind == "noise":
        return np.random.default_rng(1).integers(0, 11, size=(SIZE, SIZE), dtype=np.uint8)
    raise ValueError(f"SEGSTUDIO_BENCH_LABELS must be halves, camvid or noise, got {kind!r}")


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
    from segstudio.core.paint import paint_stroke
    from segstudio.core.provenance import PROV_HUMAN, PROV_MODEL, ProvenanceMap

    n = int(os.environ.get("SEGSTUDIO_BENCH_STROKES", 200 if args.quick else 1000))
    points = int(os.environ.get("SEGSTUDIO_BENCH_STROKE_POINTS", 17))
    kind = os.environ.get("SEGSTUDIO_BENCH_LABELS", "halves")
    rng = np.random.default_rng(0)
    labels = initial_labels(kind)
    initial = labels.copy()

    # Baseline: full copies.
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    copies = [labels.copy() for _ in range(BASE_STEPS)]
    full_per_step = (tracemalloc.get_traced_memory()[0] - before) / BASE_STEPS
    del copies
    tracemalloc.stop()

    history = History(max_bytes=1 << 40)  # no budget: keep every step, measure what they cost
    provenance = ProvenanceMap(labels.shape)  # a Document records every step in its provenance map too
    provenance.reset(labels, PROV_MODEL)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    changed, push_s, raw_bytes = 0, [], 0
    for pts, value in strokes(n, points, rng):
        patch = paint_stroke(labels, pts, RADIUS, value)
        t1 = time.perf_counter()
        history.push(patch)
        if patch is not None:
            provenance.record(patch, PROV_HUMAN)
        push_s.append(time.perf_counter() - t1)
        changed += patch is not None
        raw_bytes += 0 if patch is None else patch.nbytes
        del patch  # the caller's unpacked copy goes away, as in Document.stroke's caller
    paint_s = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    final = labels.copy()

    undo_s, redo_s = [], []
    while True:
        t1 = time.perf_counter()
        if history.undo(labels) is None:
            break
        undo_s.append(time.perf_counter() - t1)
    restored = bool(np.array_equal(labels, initial))
    while True:
        t1 = time.perf_counter()
        if history.redo(labels) is None:
            break
        redo_s.append(time.perf_counter() - t1)
    redone = bool(np.array_equal(labels, final))

    mb = 1024 * 1024
    ms = lambda v: round(1000 * v, 3)  # noqa: E731
    res = {
        "labels": kind,
        "strokes": n,
        "steps_kept": changed,
        "brush_px": 2 * RADIUS,
        "path_px_per_stroke": 12 * (points - 1),
        "history_nbytes_mb": round(history.nbytes / mb, 2),
        "provenance_nbytes_mb": round(provenance.nbytes / mb, 2),
        "document_undo_mb": round((history.nbytes + provenance.nbytes) / mb, 2),
        "unpacked_patches_mb": round(raw_bytes / mb, 2),
        "compression_ratio": round(raw_bytes / max(1, history.nbytes), 1),
        "traced_growth_mb": round(traced / mb, 2),
        "baseline_full_copy_mb_per_step": round(full_per_step / mb, 2),
        "baseline_full_copy_mb_total": round(full_per_step * changed / mb, 1),
        "ratio_to_baseline": round(traced / (full_per_step * changed), 5),
        "ms_per_stroke": round(1000 * paint_s / n, 2),
        "ms_per_push_median_max": [ms(statistics.median(push_s)), ms(max(push_s))],
        "ms_per_undo_median_max": [ms(statistics.median(undo_s)), ms(max(undo_s))],
        "ms_per_redo_median_max": [ms(statistics.median(redo_s)), ms(max(redo_s))],
        "undo_all_restores": restored,
        "redo_all_restores": redone,
        "target": "<= 64 MB in all (for 1000 strokes)",
    }
    print(
        f"{n} strokes ({2 * RADIUS:.0f}-px brush, ~{12 * (points - 1)} px path) on {SIZE}x{SIZE} ({kind}): history holds "
        f"{res['history_nbytes_mb']} MB packed (+ provenance steps {res['provenance_nbytes_mb']} MB = "
        f"{res['document_undo_mb']} MB per document), {res['unpacked_patches_mb']} MB unpacked "
        f"(traced growth {res['traced_growth_mb']} MB); full-copy undo would hold "
        f"{res['baseline_full_copy_mb_total']} MB ({res['baseline_full_copy_mb_per_step']} MB/step); "
        f"undo-all restores: {restored}, redo-all: {redone}; {res['ms_per_stroke']} ms/stroke; push (pack) / undo / "
        f"redo median {res['ms_per_push_median_max'][0]} / {res['ms_per_undo_median_max'][0]} / "
        f"{res['ms_per_redo_median_max'][0]} ms, max {res['ms_per_push_median_max'][1]} / "
        f"{res['ms_per_undo_median_max'][1]} / {res['ms_per_redo_median_max'][1]} ms"
    )
    return res
