"""Copy a trained checkpoint into resources/models/ as a bundled model: float16 weights, JSON card, Markdown card.

Usage:
    python scripts/export_bundled.py RUN_DIR/model.safetensors NAME --command "scripts/train_default_camvid.sh" \
        [--data-note "..."] [--card-extra JSON] [--recipe-val EVAL.json] [--ablation RESULTS.json] [--notes NOTES.md]

The Markdown card states the data and its attribution, classes and palette, input normalisation, the
training command, the validation metrics stored in the checkpoint, the file size and a measured CPU latency.
A model trained on train+val has no validation figure of its own: ``--recipe-val`` gives the ``segstudio evaluate``
result of the same recipe trained on train only (stored as ``metrics.val_recipe`` and labelled so in the card),
``--ablation`` a ``scripts/camvid_recipe.py`` results JSON rendered as the card's ablation table, and ``--notes``
a Markdown file appended as the card's notes (so regenerating the card keeps them).
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


def _input_size(card: dict) -> tuple[int, int]:
    """(H, W) of the first training image (the size latency is measured at); 360×480 when unknown."""
    from segstudio.io import find_samples, read_image

    try:
        samples, _ = find_samples(card["training_data"]["path"], "train")
        return tuple(read_image(samples[0].image).shape[:2])
    except (KeyError, OSError, ValueError, IndexError):
        return (360, 480)


def _test_metrics(checkpoint: Path) -> dict | None:
    """``test_metrics.json`` written by ``segstudio evaluate --split test`` beside the checkpoint, plus pixel error."""
    path = checkpoint.parent / "test_metrics.json"
    if not path.is_file():
        return None
    res = json.loads(path.read_text())
    res.pop("confusion_matrix", None)
    res["pixel_error"] = 1.0 - res["pixel_accuracy"]
    return res


def _metric_table(title: str, res: dict, classes: list[dict]) -> list[str]:
    lines = [
        f"## {title}",
        "",
        f"pixel accuracy **{100 * res.get('pixel_accuracy', float('nan')):.2f}**"
        + (f" (pixel error **{res['pixel_error']:.4f}**)" if "pixel_error" in res else "")
        + f", mean class accuracy **{100 * res.get('mean_class_accuracy', float('nan')):.2f}**, mIoU **{100 * res.get('miou', float('nan')):.2f}**",
        "",
        "| id | class | colour | IoU | F1 (Dice) |",
        "|---|---|---|---|---|",
    ]
    for c in classes:
        iou = res.get("iou", {}).get(c["name"])
        f1 = res.get("f1", {}).get(c["name"])
        fmt = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
        lines.append(f"| {c['id']} | {c['name']} | {tuple(c['color'])} | {fmt(iou)} | {fmt(f1)} |")
    return lines + [""]


def _recipe_val(path: Path, checkpoint: Path) -> dict:
    """The ``segstudio evaluate`` JSON at ``path`` (the recipe trained on train only, scored on val), labelled.

    Raises:
        ValueError: it is not an evaluation of the val split, or it scores ``checkpoint`` itself.
    """
    res = json.loads(path.read_text())
    if res.get("split") != "val" or "miou" not in res:
        raise ValueError(f"{path}: --recipe-val needs `segstudio evaluate --split val` output (split {res.get('split')!r})")
    if Path(path).resolve().parent == checkpoint.resolve().parent:
        raise ValueError(f"{path}: --recipe-val must score the train-only run of the recipe, not the exported checkpoint")
    res.pop("confusion_matrix", None)
    res["weights"] = "the same recipe trained on train only, checkpoint selected on val (not the shipped weights)"
    res["source"] = str(path)
    return res


def _ablation_table(results: dict) -> list[str]:
    """The card's section for a ``scripts/camvid_recipe.py`` results JSON (that script renders the table)."""
    from scripts.camvid_recipe import ablation_markdown

    return ["## What each lever bought (train only → val, one lever at a time)", "", ablation_markdown(results), ""]


def markdown(card: dict, weights: Path, latency: float, command: str, data_note: str,
             ablation: dict | None = None, notes: str = "") -> str:
    val = card.get("metrics", {}).get("val")
    recipe_val = card.get("metrics", {}).get("val_recipe")
    test = card.get("metrics", {}).get("test")
    h, w = card.get("latency_input_size", (360, 480))
    lines = [
        f"# {card['name']}",
        "",
        f"- **Architecture**: `{card['architecture']}` {json.dumps(card.get('model_kwargs', {}))}, "
        f"{card['num_parameters'] / 1e6:.2f} M parameters; encoder ImageNet-initialised: {card.get('encoder_pretrained')}",
        f"- **Weights**: `{weights.name}`, {weights.stat().st_size / 1e6:.2f} MB ({card['weights_dtype']}; loaded as float32)",
        f"- **Input**: RGB, any size; normalisation (x/255 − mean)/std with mean {card['normalization']['mean']}, std {card['normalization']['std']}",
        f"- **CPU latency**: {1000 * latency:.0f} ms for one {h}×{w} image (median of 5, torch {torch.__version__}, {torch.get_num_threads()} threads)",
        f"- **Training data**: {data_note}",
        f"- **Training**: {card.get('training', {}).get('epochs_done')} epochs, {card.get('training', {}).get('steps_done')} steps "
        f"on {card.get('training', {}).get('device')}; config `{json.dumps(card.get('training', {}).get('config', {}))}`",
        f"- **Reproduce**: `{command}`",
        "",
    ]
    if val:
        lines += _metric_table(f"Metrics: validation split (model selection), full {h}×{w} images, ignore = 255", val, card["classes"])
    if recipe_val:
        table = _metric_table("Metrics: this recipe trained on train only, scored on val", recipe_val, card["classes"])
        lines += table[:2] + [
            f"{recipe_val.get('images')} val images at full {h}×{w}, ignore = 255, `segstudio evaluate`; that run's checkpoint "
            "was selected on val, so this is a val figure. The shipped weights trained on train+val with the same recipe: "
            "they have no val figure of their own.", ""] + table[2:]
    if test:
        lines += _metric_table(f"Metrics: test split ({test.get('images')} images, never used for training or selection)", test, card["classes"])
    if ablation:
        lines += _ablation_table(ablation)
    if notes.strip():
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("name")
    ap.add_argument("--command", required=True, help="the exact command that trained it")
    ap.add_argument("--data-note", default="", help="dataset, split and licence/attribution")
    ap.add_argument("--card-extra", default="{}", help="JSON merged into the card")
    ap.add_argument("--recipe-val", type=Path, help="`segstudio evaluate --split val` JSON of the recipe trained on train only")
    ap.add_argument("--ablation", type=Path, help="scripts/camvid_recipe.py results JSON (docs/camvid-recipe.json)")
    ap.add_argument("--notes", type=Path, help="Markdown file appended to the card as its notes")
    args = ap.parse_args()
    loaded = load_checkpoint(args.checkpoint)
    card = dict(loaded.card)
    card["name"] = args.name
    card["training_command"] = args.command
    card["data_note"] = args.data_note
    card.update(json.loads(args.card_extra))
    test = _test_metrics(Path(args.checkpoint))
    if test is not None:
        card.setdefault("metrics", {})["test"] = test
    if args.recipe_val is not None:
        card.setdefault("metrics", {})["val_recipe"] = _recipe_val(args.recipe_val, Path(args.checkpoint))
    ablation = json.loads(args.ablation.read_text()) if args.ablation else None
    notes = args.notes.read_text() if args.notes else ""
    card["latency_input_size"] = list(_input_size(card))
    weights = save_checkpoint(DEFAULT_MODEL_DIR, loaded.model, card, half=True, stem=args.name)
    card = json.loads(weights.with_suffix(".json").read_text())
    h, w = card["latency_input_size"]
    lat = cpu_latency(weights, (h, w))
    card[f"cpu_latency_ms_{h}x{w}"] = round(1000 * lat, 1)
    atomic_write_bytes(weights.with_suffix(".json"), (json.dumps(card, indent=1) + "\n").encode())
    atomic_write_bytes(weights.with_suffix(".md"), markdown(card, weights, lat, args.command, args.data_note, ablation, notes).encode())
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB), CPU latency {1000 * lat:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
