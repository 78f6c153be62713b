"""HITL: how much a fine-tune learns per minute on a new domain (issue 16).

``python -m bench hitl --data DIR [--init default] [--train-images 8] [--budgets 1,3,10] [--long-minutes 60] [--keep-long]``

Takes any dataset folder in the ``../shared`` layout (``images/``, ``masks/``, ``train.txt``, ``classes.json``,
``test.txt`` or ``val.txt``). Like a user of the app, it copies the first N ``train.txt`` images with their
masks into an app folder (image folder + ``labels/``), so :func:`segstudio.engine.train_on_folder` holds out
about 20 % of them for validation / best-checkpoint selection exactly as the one-click fine-tune does, then
fine-tunes with the one-click config (:func:`segstudio.engine.finetune_config`, the recipe) for each budget,
plus a *long reference*: the same images and recipe with a budget of ``--long-minutes``. Each model predicts
the folder's ``test.txt`` images (``val.txt`` without a test split) at full resolution and is scored with
:class:`segstudio.metrics.ConfusionMatrix`. Prints per run mIoU, per-class IoU, minutes and the ratio
budget-mIoU / long-mIoU, and writes everything to ``--out`` (default ``runs/hitl/<dataset>.json``).

Ablations: ``--variant NAME=JSON`` (repeatable) adds runs whose config is ``finetune_config(**JSON)``, e.g.
``--variant plain_ce='{"loss": "ce", "class_weights": "none"}'`` (run at the first budget only; ``--variants-only``
skips the recipe runs and the long reference).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger("bench.hitl")


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench hitl", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset folder (images/, masks/, train.txt, classes.json)")
    p.add_argument("--init", default="default", help="checkpoint to fine-tune ('default': the bundled model)")
    p.add_argument("--train-images", type=int, default=8, help="first N train.txt images are the user's corrections")
    p.add_argument("--budgets", default="1,3,10", help="budgets in minutes, comma-separated")
    p.add_argument("--long-minutes", type=float, default=60.0, help="budget of the long reference (0: none)")
    p.add_argument("--keep-long", action="store_true",
                   help="reuse the long reference of the same budget kept in --out from an earlier invocation")
    p.add_argument("--device", default=None, help="cpu (default), cuda...")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=JSON", help="ablation: finetune_config overrides")
    p.add_argument("--variants-only", action="store_true", help="run only the --variant runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="results JSON (default runs/hitl/<dataset>.json)")
    p.add_argument("--keep", help="keep the app folder and the runs here")
    return p.parse_args(argv)


def make_app_folder(data: Path, root: Path, n: int) -> list[str]:
    """Copy the first ``n`` train images and masks of ``data`` into an app folder ``root`` (+ ``labels/``)."""
    from segstudio.io.datasets import find_samples

    samples, _ = find_samples(data, "train")
    samples = samples[:n]
    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    for s in samples:
        shutil.copy2(s.image, root / s.image.name)
        shutil.copy2(s.mask, labels / f"{s.image.stem}.png")
    shutil.copy2(data / "classes.json", labels / "classes.json")
    return [s.image.stem for s in samples]


def evaluate_split(weights: Path, data: Path, split: str, device: str) -> dict:
    """mIoU and per-class IoU (in %) of a checkpoint on a split of ``data`` (full-resolution prediction)."""
    from segstudio.engine import Predictor, load_checkpoint
    from segstudio.io import read_image, read_index_png
    from segstudio.io.datasets import find_samples
    from segstudio.metrics import ConfusionMatrix

    loaded = load_checkpoint(weights)
    pred = Predictor(loaded, device=device)
    samples, classes = find_samples(data, split)
    cm = ConfusionMatrix(classes.num_classes)
    for s in samples:
        cm.update(read_index_png(s.mask), pred.predict(read_image(s.image)))
    summ = cm.summary(list(classes.names))
    return {
        "miou": round(100 * summ["miou"], 2),
        "iou": {k: (None if v is None else round(100 * v, 2)) for k, v in summ["iou"].items()},
        "images": len(samples),
    }


def finetune(app: Path, out: Path, init: str, overrides: dict, device: str, seed: int) -> dict:
    """One fine-tune with ``finetune_config(**overrides)``; returns its card's schedule/recipe and minutes."""
    from segstudio.engine import finetune_config, train_on_folder

    if out.exists():
        shutil.rmtree(out)
    cfg = finetune_config(device=device, seed=seed, **overrides)
    t0 = time.perf_counter()
    path = train_on_folder(app, out, init=init, config=cfg)
    minutes = (time.perf_counter() - t0) / 60
    card = json.loads(path.with_suffix(".json").read_text())
    tr = card.get("training", {})
    return {
        "weights": str(path),
        "minutes": round(minutes, 3),
        "schedule": tr.get("schedule"),
        "recipe": (tr.get("recipe") or {}).get("choices"),
        "overridden": (tr.get("recipe") or {}).get("overridden"),
        "val_miou": round(100 * card["metrics"]["val"]["miou"], 2) if card.get("metrics") else None,
        "steps_done": tr.get("steps_done"),
    }


def run(args) -> dict:
    """Entry of ``python -m bench hitl``: parses its own options from ``sys.argv`` after ``hitl``."""
    a = _parse(list(getattr(args, "extra", []) or []))
    if a.device is None:
        a.device = "cpu" if getattr(args, "device", "auto") in (None, "auto") else args.device
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = Path(a.data).resolve()
    split = "test" if (data / "test.txt").is_file() else "val"
    budgets = [float(b) for b in a.budgets.split(",") if b.strip()]
    out_json = Path(a.out or Path("runs") / "hitl" / f"{data.name}.json")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="hitl_"))
    app = work / "app"
    if app.exists():
        shutil.rmtree(app)
    stems = make_app_folder(data, app, a.train_images)
    res = {
        "data": str(data), "split": split, "init": a.init, "train_images": stems, "device": a.device,
        "threads": __import__("torch").get_num_threads(), "runs": {},
    }
    if out_json.is_file():  # keep earlier runs of the same dataset (e.g. ablations, then the curve)
        try:
            old = json.loads(out_json.read_text())
            if old.get("data") == res["data"]:
                res["runs"] = old.get("runs", {})
        except ValueError:
            pass

    def save():
        out_json.write_text(json.dumps(res, indent=1))

    def one(name: str, overrides: dict) -> None:
        log.info("=== %s: %s", name, overrides)
        r = finetune(app, work / name, a.init, overrides, a.device, a.seed)
        r.update(evaluate_split(Path(r["weights"]), data, split, a.device))
        r["overrides"] = overrides
        res["runs"][name] = r
        save()
        print(f"{name:>18}: mIoU {r['miou']:6.2f}  IoU {json.dumps(r['iou'])}  {r['minutes']:.2f} min  steps {r['steps_done']}", flush=True)

    for v in a.variant:
        name, _, spec = v.partition("=")
        one(name, {**json.loads(spec), "budget_s": (budgets[0] if budgets else 3.0) * 60})
    if not a.variants_only:
        for b in budgets:
            one(f"budget_{b:g}min", {"budget_s": b * 60})
        if a.long_minutes > 0 and not (a.keep_long and f"long_{a.long_minutes:g}min" in res["runs"]):
            one(f"long_{a.long_minutes:g}min", {"budget_s": a.long_minutes * 60, "patience": 0})
        long = res["runs"].get(f"long_{a.long_minutes:g}min")
        if long:
            # every budget run of this dataset, also those kept from an earlier invocation (``--budgets ""``
            # adds only the long reference to an existing curve)
            done = sorted((float(k[len("budget_"):-len("min")]), k) for k in res["runs"]
                          if k.startswith("budget_") and k.endswith("min"))
            for b, key in done:
                r = res["runs"][key]
                r["ratio_to_long"] = round(r["miou"] / long["miou"], 3) if long["miou"] else None
                print(f"budget {b:g} min: {r['miou']:.2f} / long {long['miou']:.2f} = {r['ratio_to_long']:.3f}")
    save()
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"results: {out_json}")
    return res
