"""Copy a trained checkpoint into resources/models/ as a bundled model: float16 weights, JSON card, Markdown card.

Usage:
    python scripts/export_bundled.py RUN_DIR/model.safetensors NAME --command "scripts/train_default_camvid.sh" \
        [--data-note "..."] [--card-extra JSON]

The Markdown card states the data and its attribution, classes and palette, input normalisation, the
training command, the validation metrics stored in the checkpoint, the file size and a measured CPU latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from segstudio.engine import Predictor  # noqa: E402
from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, load_checkpoint, save_checkpoint  # noqa: E402
from segstudio.io import atomic_write_bytes  # noqa: E402


def cpu_latency(path: Path, size=(360, 480), runs: int = 5) -> float:
    """Median seconds of one ``Predictor.predict`` on a ``size`` image, CPU, current torch threads."""
    pred = Predictor(load_checkpoint(path), device="cpu")
    img = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    pred.predict(img)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        pred.predict(img)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def markdown(card: dict, weights: Path, latency: float, command: str, data_note: str) -> str:
    val = card.get("metrics", {}).get("val", {})
    lines = [
        f"# {card['name']}",
        "",
        f"- **Architecture**: `{card['architecture']}` {json.dumps(card.get('model_kwargs', {}))}, "
        f"{card['num_parameters'] / 1e6:.2f} M parameters; encoder ImageNet-initialised: {card.get('encoder_pretrained')}",
        f"- **Weights**: `{weights.name}`, {weights.stat().st_size / 1e6:.2f} MB ({card['weights_dtype']}; loaded as float32)",
        f"- **Input**: RGB, any size; normalisation (x/255 − mean)/std with mean {card['normalization']['mean']}, std {card['normalization']['std']}",
        f"- **CPU latency**: {1000 * latency:.0f} ms for one 360×480 image (median of 5, torch {torch.__version__}, {torch.get_num_threads()} threads)",
        f"- **Training data**: {data_note}",
        f"- **Training**: {card.get('training', {}).get('epochs_done')} epochs, {card.get('training', {}).get('steps_done')} steps "
        f"on {card.get('training', {}).get('device')}; config `{json.dumps(card.get('training', {}).get('config', {}))}`",
        f"- **Reproduce**: `{command}`",
        "",
        "## Metrics (validation split, full 360×480 images, ignore = 255)",
        "",
        f"pixel accuracy **{100 * val.get('pixel_accuracy', float('nan')):.2f}**, "
        f"mean class accuracy **{100 * val.get('mean_class_accuracy', float('nan')):.2f}**, mIoU **{100 * val.get('miou', float('nan')):.2f}**",
        "",
        "| id | class | colour | val IoU |",
        "|---|---|---|---|",
    ]
    for c in card["classes"]:
        iou = val.get("iou", {}).get(c["name"])
        lines.append(f"| {c['id']} | {c['name']} | {tuple(c['color'])} | {'-' if iou is None else f'{100 * iou:.1f}'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("name")
    ap.add_argument("--command", required=True, help="the exact command that trained it")
    ap.add_argument("--data-note", default="", help="dataset, split and licence/attribution")
    ap.add_argument("--card-extra", default="{}", help="JSON merged into the card")
    args = ap.parse_args()
    loaded = load_checkpoint(args.checkpoint)
    card = dict(loaded.card)
    card["name"] = args.name
    card["training_command"] = args.command
    card["data_note"] = args.data_note
    card.update(json.loads(args.card_extra))
    weights = save_checkpoint(DEFAULT_MODEL_DIR, loaded.model, card, half=True, stem=args.name)
    card = json.loads(weights.with_suffix(".json").read_text())
    lat = cpu_latency(weights)
    card["cpu_latency_ms_360x480"] = round(1000 * lat, 1)
    atomic_write_bytes(weights.with_suffix(".json"), (json.dumps(card, indent=1) + "\n").encode())
    atomic_write_bytes(weights.with_suffix(".md"), markdown(card, weights, lat, args.command, args.data_note).encode())
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB), CPU latency {1000 * lat:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
