"""HITL: how much a one-click fine-tune learns on a new domain (issues 16 and 29).

``python -m bench hitl --data DIR | --suite DIR [--split val|test] [--budgets 3] [--long-minutes 20] [--no-fixed]``

Takes dataset folders in the ``../shared`` layout (``images/``, ``masks/``, ``train.txt``, ``classes.json``,
``val.txt`` / ``test.txt``). ``--suite DIR`` runs every proxy domain in ``DIR``: each subfolder with a
``train.txt`` except ``camvid`` (the bundled model's own domain) and ``camvid_samples``. Like a user of the app,
it copies the first N ``train.txt`` images with their masks into an app folder (image folder + ``labels/``) and
fine-tunes the default model on all of them with the one-click config (:func:`segstudio.engine.finetune_config`,
the recipe) for each budget. Beside each budget it runs the **fixed plan** on the same images and budget (batch 4,
256² crops, scale 0.5–1.0 of native size, CE with median-frequency weights, AdamW 1e-3 for every layer, BatchNorm
trained, final weights: :data:`FIXED_PLAN`), and a **long reference**: the recipe with a budget of
``--long-minutes``. A long reference is kept in the JSON and reused while the data, the training images and the
starting model (SHA-256) are unchanged (issue 29; the record names the recipe code it ran with); every other run
is kept on those terms and while the recipe's code (:data:`RECIPE_CODE`, SHA-256) is unchanged. ``--rerun``
re-runs them all.

Each model predicts the domain's ``--split`` images at native size and is scored with
:class:`segstudio.metrics.ConfusionMatrix`. Protocol (issue 29): decide recipe rules on ``--split val``; produce
the ``test`` figures once, for the report. Per domain the JSON (``--out-dir``, default ``runs/hitl``, file
``<dataset>.<split>.json``) holds every run's mIoU, per-class IoU, the lowest IoU of a class with labelled pixels
in the training images, minutes, steps, the recipe's choices, the ratio to the long reference, the commit and the
starting model's SHA-256. The table printed at the end (and written as ``<out-dir>/suite.<split>.md``) gives per
domain: mIoU, lowest trained-class IoU, ratio to the long reference, the fixed plan's mIoU; then the mean and the
worst ratio.

Ablations: ``--variant NAME=JSON`` (repeatable) adds runs whose config is ``finetune_config(**JSON)`` at the first
budget, e.g. ``--variant plain_ce='{"loss": "ce", "class_weights": "none"}'`` (``--variants-only`` skips the rest);
the key ``"start": "imagenet"`` trains the starting model's architecture from its ImageNet encoder alone instead,
``"plan": "fixed"`` starts from :data:`FIXED_PLAN` instead of the recipe, and ``"seed"`` replaces ``--seed`` (e.g.
``--variant fixed_seed1='{"plan": "fixed", "seed": 1}'``: the spread between seeds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench._record import sha256_file

log = logging.getLogger("bench.hitl")

FIXED_PLAN = {
    "batch_size": 4, "crop_size": [256, 256], "scale_range": [0.5, 1.0], "loss": "ce", "class_weights": "median",
    "class_weight_max": 1e6, "lr": 1e-3, "lr_head": 1e-3, "warmup_fraction": 0.0, "freeze_bn": False,
}
"""Issue 29's fixed plan (not tuned either): the baseline every recipe must reach on every proxy."""
NOT_PROXIES = ("camvid", "camvid_samples")
"""Dataset folders in ``../shared/datasets`` that are no proxy: the bundled model's own domain and its samples."""
REPO = Path(__file__).resolve().parent.parent


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench hitl", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help="one dataset folder (images/, masks/, train.txt, classes.json)")
    g.add_argument("--suite", help="a folder of dataset folders: every proxy in it (see the module docstring)")
    p.add_argument("--only", default="", help="with --suite: comma-separated dataset names to run (default all)")
    p.add_argument("--split", default="val", choices=("val", "test"), help="images scored (decide on val; report test)")
    p.add_argument("--init", default="default", help="checkpoint to fine-tune ('default': the bundled model)")
    p.add_argument("--train-images", type=int, default=8, help="first N train.txt images are the user's corrections")
    p.add_argument("--budgets", default="3", help="budgets in minutes, comma-separated")
    p.add_argument("--long-minutes", type=float, default=20.0, help="budget of the long reference (0: none)")
    p.add_argument("--no-fixed", action="store_true", help="skip the fixed-plan baseline")
    p.add_argument("--rerun", action="store_true", help="re-run runs already in the JSON (default: keep them)")
    p.add_argument("--device", default=None, help="cpu (default), cuda...")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=JSON", help="ablation: finetune_config overrides")
    p.add_argument("--variants-only", action="store_true", help="run only the --variant runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=str(Path("runs") / "hitl"), help="folder of the per-domain JSON and the table")
    p.add_argument("--keep", help="keep the app folders and the runs here")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: write the suite record and table from the per-domain JSONs in --out-dir")
    return p.parse_args(argv)


def proxies(suite: Path) -> list[Path]:
    """The proxy domains of a suite folder: subfolders with ``train.txt``, except :data:`NOT_PROXIES`, by name."""
    return sorted(d for d in Path(suite).iterdir() if (d / "train.txt").is_file() and d.name not in NOT_PROXIES)


RECIPE_CODE = ("segstudio/engine/recipe.py", "segstudio/engine/trainer.py", "segstudio/engine/finetune.py", "segstudio/data/transforms.py")
"""The code a fine-tune's result depends on beyond the data and the starting model: a run recorded with the same
SHA-256 of these files (and the same data, images, starting model and overrides) is reused, not re-run."""


def code_sha256() -> str:
    """SHA-256 over the files of :data:`RECIPE_CODE`."""
    h = hashlib.sha256()
    for rel in RECIPE_CODE:
        h.update((REPO / rel).read_bytes())
    return h.hexdigest()


def commit() -> str:
    """``git rev-parse HEAD`` of the repository (``+dirty`` with uncommitted changes to tracked files)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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


def trained_classes(app: Path, num_classes: int) -> list[int]:
    """Class ids with labelled pixels in the app folder's saved labels."""
    import numpy as np

    from segstudio.io import read_index_png

    seen = np.zeros(num_classes, bool)
    for p in sorted((app / "labels").glob("*.png")):
        m = read_index_png(p)
        v = m[m < num_classes]
        seen[np.unique(v)] = True
    return [int(i) for i in np.flatnonzero(seen)]


def evaluate_split(weights: Path, data: Path, split: str, device: str) -> dict:
    """mIoU and per-class IoU (in %) of a checkpoint on a split of ``data`` (native-size prediction)."""
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

    from segstudio.engine import load_checkpoint

    if out.exists():
        shutil.rmtree(out)
    spec = {**FIXED_PLAN, **overrides} if overrides.get("plan") == "fixed" else overrides
    over = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k not in ("start", "plan")}
    over.setdefault("seed", seed)
    cfg = finetune_config(device=device, **over)
    t0 = time.perf_counter()
    if overrides.get("start") == "imagenet":
        # The starting model's architecture with only its encoder's ImageNet weights (New model…'s path).
        card = load_checkpoint(None if init == "default" else init).card
        path = train_on_folder(app, out, model_name=card["architecture"], config=cfg,
                               model_kwargs={**card.get("model_kwargs", {}), "pretrained": True})
    else:
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
        "lr_groups": tr.get("lr_groups"),
        "steps_done": tr.get("steps_done"),
    }


def run_domain(data: Path, a: argparse.Namespace, out_dir: Path, work: Path, env: dict) -> dict:
    """Every run of one domain (kept runs reused); returns the domain's record (also written to its JSON)."""
    from segstudio.core.labels import ClassSpec  # noqa: F401  (segstudio importable before the runs start)
    from segstudio.io.datasets import find_samples

    budgets = [float(b) for b in a.budgets.split(",") if b.strip()]
    out_json = out_dir / f"{data.name}.{a.split}.json"
    app = work / data.name / "app"
    if app.exists():
        shutil.rmtree(app)
    stems = make_app_folder(data, app, a.train_images)
    classes = find_samples(data, "train")[1]
    trained = trained_classes(app, classes.num_classes)
    res = {
        "data": str(data), "split": a.split, "init": a.init, "train_images": stems, "device": a.device,
        "trained_classes": [classes.names[i] for i in trained], **env, "runs": {},
    }
    if out_json.is_file():  # keep earlier runs while the data, the images and the starting model are the same
        try:
            old = json.loads(out_json.read_text())
            same = all(old.get(k) == res[k] for k in ("data", "train_images", "init_sha256", "split"))
            if same:
                res["runs"] = old.get("runs", {})
        except ValueError:
            pass

    def save():
        out_dir.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(res, indent=1) + "\n")

    keep_if = {"recipe_sha256": env["recipe_sha256"], "overrides": None}

    def one(name: str, overrides: dict) -> None:
        keep_if["overrides"] = overrides
        old = res["runs"].get(name)
        # A long reference is kept while the data, the images and the starting model are the same (issue 29);
        # it records the recipe code it ran with. Every other run is also kept only while that code is unchanged.
        terms = {k: v for k, v in keep_if.items() if not (name.startswith("long_") and k == "recipe_sha256")}
        if old and not a.rerun and all(old.get(k) == v for k, v in terms.items()):
            print(f"{data.name:>18} {name:>14}: kept ({old['miou']:.2f})", flush=True)
            return
        log.info("=== %s %s: %s", data.name, name, overrides)
        r = finetune(app, work / data.name / name, a.init, overrides, a.device, a.seed)
        r.update(evaluate_split(Path(r["weights"]), data, a.split, a.device))
        r["lowest_trained_iou"] = min((r["iou"][classes.names[i]] for i in trained if r["iou"].get(classes.names[i]) is not None), default=None)
        r["overrides"] = overrides
        r["commit"], r["recipe_sha256"] = env["commit"], env["recipe_sha256"]
        res["runs"][name] = r
        save()
        print(f"{data.name:>18} {name:>14}: mIoU {r['miou']:6.2f}  lowest {r['lowest_trained_iou']}  {r['minutes']:.2f} min  "
              f"steps {r['steps_done']}  IoU {json.dumps(r['iou'])}", flush=True)

    for v in a.variant:
        name, _, spec = v.partition("=")
        one(name, {**json.loads(spec), "budget_s": (budgets[0] if budgets else 3.0) * 60})
    if not a.variants_only:
        for b in budgets:
            one(f"budget_{b:g}min", {"budget_s": b * 60})
            if not a.no_fixed:
                one(f"fixed_{b:g}min", {**FIXED_PLAN, "budget_s": b * 60})
        if a.long_minutes > 0:
            one(f"long_{a.long_minutes:g}min", {"budget_s": a.long_minutes * 60})
        set_ratios(res, a.long_minutes)
    save()
    return res


def set_ratios(res: dict, long_minutes: float) -> None:
    """Every run's ``ratio_to_long``: its mIoU over the ``long_<long_minutes>min`` run's (``None`` without one).
    Derived from the stored runs, so ``--table-only`` sets it again (e.g. after a long reference was re-run alone)."""
    long = res["runs"].get(f"long_{long_minutes:g}min")
    for r in res["runs"].values():
        r["ratio_to_long"] = round(r["miou"] / long["miou"], 3) if long and long["miou"] else None


def table(records: list[dict], budget: float, long_minutes: float) -> str:
    """Markdown table of the suite at one budget: per domain mIoU, lowest trained-class IoU, ratio to the long
    reference, the fixed plan; then the mean and the worst ratio."""
    b, L = f"budget_{budget:g}min", f"long_{long_minutes:g}min"
    rows = [f"| domain | recipe mIoU | lowest trained class IoU | long ({long_minutes:g} min) | ratio | fixed plan mIoU | recipe − fixed | steps (recipe) |",
            "|---|---|---|---|---|---|---|---|"]
    ratios, mious, gaps = [], [], []
    for rec in records:
        runs = rec["runs"]
        r, f, lg = runs.get(b), runs.get(f"fixed_{budget:g}min"), runs.get(L)
        if r is None:
            continue
        name = Path(rec["data"]).name
        ratio = r.get("ratio_to_long")
        mious.append(r["miou"])
        if ratio is not None:
            ratios.append((ratio, name))
        gap = None if f is None else round(r["miou"] - f["miou"], 2)
        if gap is not None:
            gaps.append(gap)

        def fmt(x, spec=".2f"):
            return "—" if x is None else format(x, spec)

        rows.append(f"| {name} | {r['miou']:.2f} | {fmt(r['lowest_trained_iou'])} | {fmt(lg and lg['miou'])} | {fmt(ratio, '.3f')} "
                    f"| {fmt(f and f['miou'])} | {fmt(gap, '+.2f')} | {r['steps_done']} |")
    if mious:
        worst = min(ratios) if ratios else None
        rows.append(f"| **mean** | {sum(mious) / len(mious):.2f} | | | {fmt_mean(ratios)} | | {fmt_mean([(g, '') for g in gaps], '+.2f')} | |")
        rows.append(f"\nWorst ratio to the long reference: {'—' if worst is None else f'{worst[0]:.3f} ({worst[1]})'}.")
    return "\n".join(rows)


def fmt_mean(pairs: list[tuple[float, str]], spec: str = ".3f") -> str:
    return "—" if not pairs else format(sum(p[0] for p in pairs) / len(pairs), spec)


def run(args) -> dict:
    """Entry of ``python -m bench hitl``: parses its own options from ``sys.argv`` after ``hitl``."""
    a = _parse(list(getattr(args, "extra", []) or []))
    if a.device is None:
        a.device = "cpu" if getattr(args, "device", "auto") in (None, "auto") else args.device
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    from segstudio.engine import load_checkpoint

    if a.suite:
        domains = proxies(Path(a.suite).resolve())
        if a.only:
            keep = {n.strip() for n in a.only.split(",") if n.strip()}
            domains = [d for d in domains if d.name in keep]
    else:
        domains = [Path(a.data).resolve()]
    if not domains:
        raise SystemExit(f"no proxy dataset (a folder with train.txt) in {a.suite}")
    init_path = load_checkpoint(None if a.init == "default" else a.init).path
    env = {
        "init_sha256": sha256_file(init_path),
        "models": [{"name": a.init, "path": str(init_path), "sha256": sha256_file(init_path)}],
        "recipe_sha256": code_sha256(),
        "commit": commit(),
        "threads": torch.get_num_threads(),
    }
    out_dir = Path(a.out_dir)
    records = []
    if a.table_only:
        for d in domains:
            path = out_dir / f"{d.name}.{a.split}.json"
            if path.is_file():
                rec = json.loads(path.read_text())
                if a.long_minutes > 0:
                    set_ratios(rec, a.long_minutes)
                    path.write_text(json.dumps(rec, indent=1) + "\n")
                records.append(rec)
    else:
        work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="hitl_"))
        try:
            for d in domains:
                records.append(run_domain(d, a, out_dir, work, env))
        finally:
            if not a.keep:
                shutil.rmtree(work, ignore_errors=True)
    budgets = [float(b) for b in a.budgets.split(",") if b.strip()]
    suite = {"split": a.split, "budgets": budgets, "long_minutes": a.long_minutes, **env, "domains": records}
    text = suite_markdown(suite)
    print(text)
    if a.suite and not a.only:  # the record of the whole table (docs/claims.json renders the doc's table from it)
        (out_dir / f"suite.{a.split}.json").write_text(json.dumps(suite, indent=1) + "\n")
        (out_dir / f"suite.{a.split}.md").write_text(text + "\n")
    return {"domains": [str(d) for d in domains], "out_dir": str(out_dir)}


def suite_markdown(suite: dict) -> str:
    """The suite's tables (one per budget) from a ``suite.<split>.json`` record, then a table of every run's mIoU
    per domain (ablations included) when some domain has runs beyond the recipe, the fixed plan and the long one."""
    text = "\n\n".join(
        f"Budget {b:g} min, {suite['split']} split:\n\n" + table(suite["domains"], b, suite["long_minutes"]) for b in suite["budgets"]
    )
    names = []
    for rec in suite["domains"]:
        names += [n for n in rec["runs"] if n not in names]
    if any(not n.startswith(("budget_", "fixed_", "long_")) for n in names):
        text += "\n\nEvery run, mIoU (lowest IoU of a trained class):\n\n" + runs_table(suite["domains"], names)
    return text


def runs_table(records: list[dict], names: list[str]) -> str:
    """Markdown: one row per domain, one column per run name, ``mIoU (lowest trained-class IoU)``; the mean row
    averages the domains that have the run."""
    rows = ["| domain | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    sums = {n: [] for n in names}
    for rec in records:
        cells = []
        for n in names:
            r = rec["runs"].get(n)
            if r is None:
                cells.append("—")
                continue
            sums[n].append(r["miou"])
            low = r.get("lowest_trained_iou")
            cells.append(f"{r['miou']:.2f} ({'—' if low is None else f'{low:.1f}'})")
        rows.append(f"| {Path(rec['data']).name} | " + " | ".join(cells) + " |")
    rows.append("| **mean (domains with the run)** | " + " | ".join(
        f"{sum(v) / len(v):.2f} ({len(v)})" if v else "—" for v in sums.values()) + " |")
    return "\n".join(rows)
