"""CPU latency of the default model on one 360×480 image, against the weights it replaced, in the same run.

``python -m bench latency [--record]`` (``--record`` writes ``docs/records/cpu-latency.json``).

The bundled default model (``Predictor.predict`` of one 360×480 RGB image, CPU, the current torch threads) and the
weights it replaced (read from git: the bundled file at ``PREVIOUS_COMMIT``, the same architecture) are timed
alternately, ``ROUNDS`` rounds of one call each after a warm-up, and reported as medians. On a shared machine the
absolute milliseconds depend on the load at the moment; the same-run ratio is what compares the two.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = "resources/models/camvid_deeplabv3plus_mobilenetv2"
PREVIOUS_COMMIT = "7c65c39^"
"""The commit before issue 18 shipped the train+val weights: its bundled default model is the one they replaced."""
ROUNDS = 15
SIZE = (360, 480)


def _previous_weights(tmp: Path) -> Path | None:
    """The replaced default model (weights + card) extracted from git into ``tmp``; ``None`` when git lacks it."""
    out = tmp / "previous.safetensors"
    try:
        for suffix in (".safetensors", ".json"):
            blob = subprocess.run(["git", "show", f"{PREVIOUS_COMMIT}:{DEFAULT}{suffix}"], cwd=REPO,
                                  capture_output=True, check=True).stdout
            out.with_suffix(suffix).write_bytes(blob)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out


def run(args) -> dict:
    """Time the current and the replaced default model alternately; with ``--record`` write the record."""
    import numpy as np
    import torch

    from bench._record import model_entry, write_record
    from segstudio.engine import Predictor, load_checkpoint

    rounds = 5 if getattr(args, "quick", False) else ROUNDS
    img = np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"current": REPO / f"{DEFAULT}.safetensors"}
        prev = _previous_weights(Path(tmp))
        if prev is not None:
            paths["previous"] = prev
        preds = {k: Predictor(load_checkpoint(p), device="cpu") for k, p in paths.items()}
        for p in preds.values():
            p.predict(img)  # warm-up (folding, allocator)
        times = {k: [] for k in preds}
        for i in range(rounds):
            order = list(preds) if i % 2 == 0 else list(reversed(preds))
            for k in order:
                t = time.perf_counter()
                preds[k].predict(img)
                times[k].append(1000 * (time.perf_counter() - t))
        models = [model_entry(f"camvid_deeplabv3plus_mobilenetv2 ({k})", p) for k, p in paths.items()]
    res = {"size": list(SIZE), "rounds": rounds, "threads": torch.get_num_threads(),
           "median_ms": {k: round(statistics.median(v), 1) for k, v in times.items()},
           "all_ms": {k: [round(x, 1) for x in v] for k, v in times.items()}}
    if "previous" in res["median_ms"]:
        res["ratio_current_to_previous"] = round(res["median_ms"]["current"] / res["median_ms"]["previous"], 2)
    print(f"median ms: {res['median_ms']}" + (f", ratio {res.get('ratio_current_to_previous')}" if prev else ""), flush=True)
    if getattr(args, "record", False):
        path = write_record("cpu-latency", res, script="python -m bench latency", models=models,
                            notes=getattr(args, "notes", "") or "")
        print(f"wrote {path}")
    return res
