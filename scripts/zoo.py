"""Train every registered architecture on CamVid with one command and budget, then write docs/model-zoo.md.

Usage (from the repo root, in the venv)::

    python scripts/zoo.py train [NAME ...]   # trains what is not done yet (resumable: re-run after a kill)
    python scripts/zoo.py crf                # DeepLab v1 on CamVid val again, refined by DenseCRF (DeepLab defaults)
    python scripts/zoo.py long [NAME ...]    # a from-scratch row again with LONG_EPOCHS (12): its learning curve
                                             # (validated every LONG_VAL_EVERY epochs: ZOO_LONG_VAL_EVERY=1 per epoch)
    python scripts/zoo.py table              # measures params / MACs / CPU latency, writes docs/model-zoo.md

Every model is trained with the same ``segstudio train`` command (see ``COMMAND``): CamVid train, 180×240 crops of
images rescaled by 0.5–1.25, batch 8, AdamW lr 1e-3 with poly decay, plain cross-entropy, ``EPOCHS`` epochs, seed 0,
then evaluated on CamVid val at full 360×480 with ``segstudio evaluate``. Encoder-based models use the ImageNet
MobileNetV2 (the only ImageNet weights available offline, ../shared/weights); U-Net, SegNet (VGG-16-BN, random init:
no VGG weights offline), SegNet-Basic (the paper's from-scratch variant, trained with its median-frequency class
balancing) and the simple CNN baseline start from random weights. Results go to ``runs/zoo/<name>/``
(checkpoints, ``val_metrics.json``, ``train_seconds.json``); ``table`` copies each row's figures into the committed
``docs/model-zoo.json``, so rows trained in earlier sessions keep their numbers when their run folder is gone.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` at 360×480 (multiply-accumulates = FLOPs / 2).
CPU latency is the median of 5 forward passes of one 360×480 image with ``torch.inference_mode`` and the process's
threads, after 1 warm-up.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from segstudio.engine.run_folder import read_json, read_run

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "camvid"
RUNS = REPO / "runs" / "zoo"
EPOCHS = int(os.environ.get("ZOO_EPOCHS", "4"))
# The longer schedule for from-scratch rows (``python scripts/zoo.py long NAME``): validated every LONG_VAL_EVERY
# epochs, so its history gives the learning curve; results under runs/zoo-long/<name>/.
LONG_EPOCHS = int(os.environ.get("ZOO_LONG_EPOCHS", "12"))
# Validation interval of the long runs, epochs (1: a learning curve point per epoch, at ~1 min of CamVid val
# inference per point for the small from-scratch nets on this CPU).
LONG_VAL_EVERY = int(os.environ.get("ZOO_LONG_VAL_EVERY", str(EPOCHS)))
LONG_RUNS = REPO / "runs" / "zoo-long"
# Committed results (a run folder is not kept between sessions): the table falls back to these for rows whose
# runs/zoo/<name>/ is gone, and `table` refreshes them from the runs that are here.
RESULTS = REPO / "docs" / "model-zoo.json"

# Cheap first, so a session that is stopped early still fills most rows.
MODELS = [
    "lraspp", "deeplabv3plus", "ksac", "deeplabv3", "fcn32s", "fcn16s", "fcn8s", "parsenet", "gcn",
    "pspnet", "deeplabv2", "deeplabv1", "simple_cnn", "unet", "unet_mobilenet_v2", "unet_mobilenet_v2_random",
    "segnet", "segnet_median", "segnet_basic",
]
ENCODER_FREE = {"simple_cnn", "unet", "segnet", "segnet_basic"}
# Rows that train a registered architecture under another row name: row -> (architecture, encoder, builder
# kwargs passed as --model-arg[, training flags added to the common command]). unet_mobilenet_v2_random is the
# control: the same network as unet_mobilenet_v2, its encoder from random weights.
VARIANTS = {
    "unet_mobilenet_v2": ("unet", "mobilenet_v2", {}),
    "unet_mobilenet_v2_random": ("unet", "mobilenet_v2", {"pretrained": False}),
    # SegNet's CamVid recipe (paper, Sec. 4.1): median-frequency balancing of the cross-entropy.
    "segnet_median": ("segnet", None, {}, ("--class-weights", "median")),
    # SegNet-Basic is the paper's from-scratch CamVid model (Sec. 4.1), trained there with median-frequency
    # balancing: its row keeps that part of the paper's recipe (the rest is the common command).
    "segnet_basic": ("segnet_basic", None, {}, ("--class-weights", "median")),
}


def architecture(row: str) -> tuple[str, str | None]:
    """``(registry name, encoder or None)`` of a table row."""
    if row in VARIANTS:
        return VARIANTS[row][:2]
    return row, None if row in ENCODER_FREE else "mobilenet_v2"


def model_args(row: str) -> list[str]:
    """The part of the training command that differs between rows: ``--model``, ``--encoder``, builder kwargs
    (``--model-arg``) and a variant's training flags."""
    model, encoder = architecture(row)
    args = ["--model", model] + ([] if encoder is None else ["--encoder", encoder])
    for key, value in variant_kwargs(row).items():
        args += ["--model-arg", f"{key}={json.dumps(value)}"]
    return args + (list(VARIANTS[row][3]) if len(VARIANTS.get(row, ())) > 3 else [])


def variant_kwargs(row: str) -> dict:
    """Builder keyword arguments a row adds (``{}`` for plain rows)."""
    return dict(VARIANTS[row][2]) if row in VARIANTS else {}


def command(name: str, epochs: int = EPOCHS, root: Path = RUNS, val_every: int = EPOCHS) -> list[str]:
    """The exact training command for row ``name`` (the same for every model except :func:`model_args`);
    ``val_every``: validation interval in epochs (the table's rows: once, at the end)."""
    cmd = ["python", "-m", "segstudio", "train", "--data", "../shared/datasets/camvid", *model_args(name)]
    cmd += ["--epochs", str(epochs), "--batch-size", "8", "--lr", "1e-3", "--crop-size", "180,240"]
    cmd += ["--scale-range", "0.5,1.25", "--val-every", str(val_every), "--seed", "0"]
    cmd += ["-o", str((root / name).relative_to(REPO))]
    return cmd


def train(names: list[str], epochs: int = EPOCHS, root: Path = RUNS, val_every: int = EPOCHS) -> None:
    for name in names or MODELS:
        out = root / name
        done = out / "val_metrics.json"
        if done.is_file():
            print(f"{name}: done already", flush=True)
            continue
        out.mkdir(parents=True, exist_ok=True)
        cmd = command(name, epochs, root, val_every)
        if (out / "last.safetensors").is_file():
            cmd.append("--resume")
        timing = out / "train_seconds.json"
        spent = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
        print(f"{name}: {shlex.join(cmd)}", flush=True)
        t0 = time.time()
        with open(out / "train.log", "a") as log:
            rc = subprocess.call(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        spent += time.time() - t0
        timing.write_text(json.dumps({"seconds": spent}))
        if rc != 0:
            print(f"{name}: training failed (exit {rc}), see {out / 'train.log'}", flush=True)
            continue
        ev = ["python", "-m", "segstudio", "evaluate", "--data", str(DATA), "--split", "val"]
        ev += ["--checkpoint", str(out / "model.safetensors"), "-o", str(out / "val_metrics.tmp.json")]
        if subprocess.call(ev, cwd=REPO, stdout=subprocess.DEVNULL) == 0:
            os.replace(out / "val_metrics.tmp.json", done)
            res = json.loads(done.read_text())
            print(f"{name}: val mIoU {100 * res['miou']:.2f} after {spent / 60:.1f} min", flush=True)
            if name in CRF_MODELS and root == RUNS:
                crf([name])


CRF_MODELS = ("deeplabv1",)  # DeepLab v1 is meant to be followed by a fully connected CRF


def crf_command(name: str) -> list[str]:
    """``segstudio evaluate --crf`` of a trained zoo model on CamVid val (DeepLab v2's released CRF parameters)."""
    out = RUNS / name
    return ["python", "-m", "segstudio", "evaluate", "--data", str(DATA), "--split", "val", "--crf",
            "--checkpoint", str(out / "model.safetensors"), "-o", str(out / "val_metrics_crf.tmp.json")]


def crf(names: list[str]) -> None:
    for name in names or CRF_MODELS:
        out = RUNS / name
        if (out / "val_metrics_crf.json").is_file() or not (out / "model.safetensors").is_file():
            print(f"{name}: CRF evaluation done already or model not trained yet", flush=True)
            continue
        t0 = time.time()
        if subprocess.call(crf_command(name), cwd=REPO, stdout=subprocess.DEVNULL) == 0:
            os.replace(out / "val_metrics_crf.tmp.json", out / "val_metrics_crf.json")
            res = json.loads((out / "val_metrics_crf.json").read_text())
            print(f"{name}: val mIoU with CRF {100 * res['miou']:.2f} ({time.time() - t0:.0f} s)", flush=True)


def measure(name: str) -> dict:
    """Parameters, MACs and CPU latency at 360×480 of the trained (or freshly built) model."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from segstudio.engine.checkpoint import load_checkpoint
    from segstudio.models import get_model

    ckpt = RUNS / name / "model.safetensors"
    if ckpt.is_file():
        loaded = load_checkpoint(ckpt)
        model, pretrained = loaded.model, loaded.card.get("encoder_pretrained")
    else:
        arch, encoder = architecture(name)
        kwargs = ({} if encoder is None else {"encoder": encoder}) | variant_kwargs(name)
        model, pretrained = get_model(arch, 11, **kwargs), None
    model.eval()
    x = torch.randn(1, 3, 360, 480)
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
        model(x)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gmacs": counter.get_total_flops() / 2e9,
        "latency_ms": 1000 * times[len(times) // 2],
        "pretrained": pretrained,
    }


def _long_results(stored: dict) -> dict:
    """Learning curves of the ``long`` runs here (val mIoU every EPOCHS epochs from the trainer's history, final
    ``segstudio evaluate`` mIoU), on top of the committed ones."""
    out = dict(stored)
    for path in sorted(LONG_RUNS.glob("*/history.json")) if LONG_RUNS.is_dir() else []:
        run = read_run(path.parent)
        name, hist, metrics, card = path.parent.name, run.history, run.val, run.card
        epochs = run.config.get("epochs", LONG_EPOCHS)
        out[name] = {
            "epochs": epochs,
            "epochs_done": max((h["epoch"] for h in hist), default=0),
            "final_train_loss": round(hist[-1]["train_loss"], 4) if hist else None,
            "encoder_pretrained": card.get("encoder_pretrained"),
            "curve": run.curve,
            "miou": round(metrics["miou"], 4) if metrics else None,
            "iou": run.val_iou(),
            "train_seconds": round(run.train_seconds) if run.train_seconds is not None else None,
            # rows = true class, columns = prediction (segstudio evaluate's confusion matrix, pixels)
            "confusion": metrics.get("confusion_matrix") if metrics else None,
            "class_weights": (card.get("training", {}).get("class_weights") or {}).get("weights"),
            "command": shlex.join(command(name, epochs, LONG_RUNS, run.config.get("val_every", EPOCHS))),
            "measured": f"{time.strftime('%Y-%m-%d')} (2-core CPU)",
        }
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def shown(row: str, stored: dict) -> tuple[dict, int]:
    """``(record, epochs)`` the table shows for ``row``: a random-init row's ``long`` run (the from-scratch
    budget, ``LONG_EPOCHS``) once it finished, else the ``EPOCHS``-epoch record (every ImageNet row, and a
    random-init row whose long run is missing or stopped early)."""
    long = stored.get("long", {}).get(row)
    if (long and not long.get("encoder_pretrained") and long.get("miou") is not None
            and long.get("epochs_done", long["epochs"]) >= long["epochs"]):
        return long, long["epochs"]
    return stored.get(row, {}), EPOCHS


def _baseline_notes(stored: dict) -> list[str]:
    """The bullet comparing every row with the simple CNN baseline *at the row's own budget* (epochs), from the
    figures in the table: ImageNet rows with the baseline's ``EPOCHS``-epoch run, random-init rows shown at the
    from-scratch budget with the baseline's run of that many epochs."""
    base_rec, base_epochs = shown("simple_cnn", stored)
    base = base_rec.get("miou")
    if base is None:
        return []
    bases = {EPOCHS: stored.get("simple_cnn", {}).get("miou"), base_epochs: base}
    pre = [stored[r]["miou"] for r in MODELS if stored.get(r, {}).get("encoder_pretrained") and stored[r].get("miou") is not None]
    rnd = {}
    for r in MODELS:
        rec, epochs = shown(r, stored)
        if r != "simple_cnn" and rec.get("miou") is not None and not rec.get("encoder_pretrained"):
            rnd[r] = (rec["miou"], epochs)
    lines = [
        f"- `simple_cnn` is the baseline (no down-sampling, receptive field 13 px): "
        + ", ".join(f"{_pct(v)} at {e} epochs" for e, v in sorted(bases.items()) if v is not None) + ".",
    ]
    if pre and bases.get(EPOCHS) is not None:
        lines.append(f"  Every row with an ImageNet encoder ({EPOCHS} epochs) is {100 * (min(pre) - bases[EPOCHS]):.0f}–"
                     f"{100 * (max(pre) - bases[EPOCHS]):.0f} points above it at the same budget.")

    def gap(r: str) -> float | None:
        v, e = rnd[r]
        return None if bases.get(e) is None else v - bases[e]

    clear = [r for r in rnd if gap(r) is not None and gap(r) >= CLEAR_MARGIN]
    stuck = [r for r in rnd if r not in clear]

    def say(r: str) -> str:
        v, e = rnd[r]
        g = gap(r)
        return f"`{r}` {_pct(v)} at {e} epochs" + (" (no baseline run that long)" if g is None else f" ({100 * g:+.1f})")

    if clear:
        lines.append("  Random-init rows clear of it at the same budget (≥ 5 points): " + ", ".join(map(say, clear)) + ".")
    if stuck:
        lines += [
            f"  The {'other ' if clear else ''}random-init rows (" + ", ".join(map(say, stuck)) + ") are not: see",
            "  [Why the random-init rows sit at the baseline](#why-the-random-init-rows-sit-at-the-baseline).",
        ]
    return lines


def _random_init_section(stored: dict) -> list[str]:
    """The controlled experiment (same network, ImageNet vs random encoder) and the long U-Net curve."""
    a, b = stored.get("unet_mobilenet_v2", {}), stored.get("unet_mobilenet_v2_random", {})
    if a.get("miou") is None or b.get("miou") is None:
        return []
    base = stored.get("simple_cnn", {}).get("miou")

    def learned(rec: dict) -> str:
        iou = rec.get("iou") or {}
        return ", ".join(k for k, v in iou.items() if v is not None and v >= 0.05) or "?"

    lines = [
        "## Why the random-init rows sit at the baseline",
        "",
        "The previous table flagged U-Net (random init, 22.1) as only 1.6 points above `simple_cnn`. These measurements",
        "locate U-Net's cause in the initialisation under this short budget, not in its code (SegNet: see item 4):",
        "",
        f"1. **Same network, only the encoder's init differs.** `unet --encoder mobilenet_v2` reaches {_pct(a['miou'])} with",
        f"   ImageNet weights and {_pct(b['miou'])} with the same encoder from random weights (`--model-arg pretrained=false`,",
        f"   row `unet_mobilenet_v2_random`): {100 * (a['miou'] - b['miou']):.1f} points from the init alone, and the random one lands",
        f"   where `simple_cnn` ({_pct(base)}), `unet` and `segnet` are.",
        f"2. **What the random-init rows learn in 180 steps.** Classes with IoU ≥ 5 %: ImageNet U-Net: {learned(a)};",
        f"   random-init U-Net/MobileNetV2: {learned(b)}; SegNet: {learned(stored.get('segnet', {}))}. In 180 steps a",
        "   random-init network, whichever architecture, learns only the large, colour-coded classes; none of these",
        "   rows reaches the thin and rare ones (pole, sign, fence, pedestrian, bicyclist), which are 5 of the 11 terms",
        "   of the mIoU. The ImageNet U-Net is also below the other ImageNet rows: its expanding path (five up-conv +",
        "   double-conv levels, 2.4 M random-init weights) is the largest untrained part of any ImageNet row, while",
        "   e.g. FCN-8s only learns 1×1 scorers on the ImageNet features.",
    ]
    agree = [(r, stored[r]) for r in MODELS if "trainer_val_miou" in stored.get(r, {}) and not stored[r].get("encoder_pretrained")]
    if agree:
        lines += [
            "3. **The trainer's validation and `segstudio evaluate` agree** ("
            + "; ".join(f"`{r}`: {100 * x['trainer_val_miou']:.2f} / {100 * x['miou']:.2f}" for r, x in agree)
            + "), so the low rows are not an",
            "   artefact of the evaluation path (BN folding, padding, tiling).",
        ]
    longs = [(r, x) for r, x in stored.get("long", {}).items() if x.get("curve")]
    # the baseline at the long budget when it was run that long (else its short-budget figure)
    long_base = stored.get("long", {}).get("simple_cnn", {}).get("miou") or base
    lifted = {r: _lifted(x, long_base) for r, x in longs if not x.get("encoder_pretrained") and r != "simple_cnn"}
    if longs:
        up = _and([_title(r) for r, ok in lifted.items() if ok]) or "no random-init row"
        down = _and([_title(r) for r, ok in lifted.items() if not ok])
        lines.append(
            f"4. **More budget lifts {up}{f', not (yet) {down}' if down else ''} clear of the baseline.** The same command"
            " with more epochs (`python scripts/zoo.py long NAME`,"
            f" `ZOO_LONG_EPOCHS`, default {LONG_EPOCHS}; poly decay over the longer schedule; validated every"
            f" `ZOO_LONG_VAL_EVERY` epochs, default {EPOCHS}: each curve lists its validated epochs):"
        )
    for row, long in longs:
        curve = ", ".join(f"{e} epoch{'' if e == 1 else 's'} {_pct(m)}" for e, m in long["curve"])
        if long.get("epochs_done", long["epochs"]) < long["epochs"]:
            curve += f" (stopped after epoch {long['epochs_done']}; `long` resumes it)"
        lines.append(
            f"   - `{shlex.join(model_args(row))} --epochs {long['epochs']}` ({'ImageNet' if long.get('encoder_pretrained') else 'random init'}): {curve}"
            + (f"; `segstudio evaluate` of the best checkpoint {_pct(long['miou'])}" if long.get("miou") is not None else "")
            + (f" ({long['train_seconds'] / 60:.0f} CPU minutes)." if long.get("train_seconds") else ".")
        )
    if longs and "simple_cnn" not in dict(longs):
        lines.append("   (`simple_cnn` was not re-run longer: these curves show how each row moves with budget, not a ranking at that budget.)")
    elif longs:
        lines.append("   (`simple_cnn`'s curve is the baseline at each of these budgets.)")
    if "segnet" in dict(longs):
        lines += [
            "5. **SegNet's slow start is not a gradient-flow or unpooling bug.** `python scripts/overfit_check.py` trains",
            "   from random init on two CamVid images (96×128): SegNet reaches 100 % pixel accuracy (eval-mode BN) at step",
            "   150, U-Net at step 200 (measured 2026-12-01). On the full train set SegNet's training mIoU equals its val",
            "   mIoU (20.3 / 21.4 on 16 images each, 6-epoch run): it underfits, its training loss falling more slowly than U-Net's (final",
            "   epoch, plain cross-entropy: " + ", ".join(
                f"{_title(r)} {x['final_train_loss']:.2f} after {x['epochs_done']}" for r, x in longs
                if x.get("final_train_loss") is not None and not x.get("encoder_pretrained") and not x.get("class_weights")
            ) + ").",
        ]
    lines += _segnet_basic_item(dict(longs), 6 if "segnet" in dict(longs) else 5)
    lines += [
        "",
        "What to use: for few images or a short budget, U-Net with an ImageNet encoder (`--encoder mobilenet_v2`, also",
        "in Model ▸ New model…); the paper's own contracting path (no encoder) when there is enough data and time, as",
        "on ISBI-2012 below. SegNet's VGG-16-BN has no ImageNet weights offline here: with torchvision's",
        "`vgg16_bn-6c64b313.pth` in `$TORCH_HOME/hub/checkpoints` (a networked machine downloads it) the same command",
        "starts SegNet from ImageNet. " + _segnet_advice(dict(longs).get("segnet"), long_base, stored.get("segnet_median")),
        "",
    ]
    return lines


def _at(curve: list, epoch: int) -> float | None:
    """The validated mIoU at ``epoch`` of a ``[[epoch, miou], ...]`` curve, or None."""
    return dict((e, m) for e, m in curve).get(epoch)


def _segnet_basic_item(longs: dict, number: int) -> list[str]:
    """The numbered item on SegNet-Basic's long run, from its curve, per-class IoU and confusion matrix beside
    ``simple_cnn``'s run of the same budget: how far above the baseline, whether its curve still rises over the
    last third of the schedule (and the baseline's), and the class it loses most against the baseline with where
    that class's pixels go (the median-frequency weights' side effect while textures are unlearnt)."""
    sb, base = longs.get("segnet_basic"), longs.get("simple_cnn")
    if not sb or sb.get("miou") is None:
        return []
    e_end = sb["epochs"]
    e_mid = round(e_end * 2 / 3)
    text = (f"{number}. **SegNet-Basic, the paper's from-scratch variant** (median-frequency class weights as in the"
            f" paper, Sec. 4.1): {_pct(sb['miou'])} after {e_end} epochs")
    if base and base.get("miou") is not None and base["epochs"] == e_end:
        text += f", {100 * (sb['miou'] - base['miou']):+.1f} points against `simple_cnn` trained as long"
    rise = [(n, _at(x.get("curve", []), e_end), _at(x.get("curve", []), e_mid)) for n, x in (("SegNet-Basic", sb), ("`simple_cnn`", base)) if x]
    rise = [f"{n} {100 * (b - a):+.1f}" for n, b, a in rise if a is not None and b is not None]
    if rise:
        text += f". Validation mIoU from epoch {e_mid} to {e_end} (the last third of the poly schedule): " + ", ".join(rise)
    names = list((sb.get("iou") or {}).keys())
    if base and base.get("iou") and sb.get("confusion") and names:
        worst = min(names, key=lambda c: (sb["iou"].get(c) or 0) - (base["iou"].get(c) or 0))
        row = sb["confusion"][names.index(worst)]
        total = sum(row) or 1
        top = sorted(((v / total, names[j]) for j, v in enumerate(row) if names[j] != worst), reverse=True)[:3]
        w = sb.get("class_weights") or {}

        def weight(c: str) -> str:
            return f", weight {w[c] / w[worst]:.0f}× {worst}'s" if w.get(c) and w.get(worst) else ""

        text += (f". Its largest loss against the baseline is {worst} ({_pct(sb['iou'][worst])} IoU vs"
                 f" {_pct(base['iou'][worst])}): {worst} pixels are predicted as "
                 + ", ".join(f"{c} ({100 * f:.0f} %{weight(c)})" for f, c in top)
                 + (": the class weights pull it into the classes they raise, while the network has not yet learnt"
                    " their texture" if w and all(w.get(c, 0) > w.get(worst, 0) for _, c in top) else ""))
    return [f"   {ln}" if i else ln for i, ln in enumerate(textwrap.wrap(text + ".", 118, subsequent_indent=""))]


CLEAR_MARGIN = 0.05
"""How far above the simple_cnn baseline (mIoU, 0-1) a row must be to count as clear of it: 5 points."""


def _lifted(long: dict, base: float | None) -> bool:
    """Whether a long run's best validation mIoU is clear of the baseline (:data:`CLEAR_MARGIN`)."""
    best = max((m for _, m in long.get("curve", [])), default=None)
    return base is not None and best is not None and best >= base + CLEAR_MARGIN


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def _title(row: str) -> str:
    return {"unet": "U-Net", "segnet": "SegNet", "segnet_basic": "SegNet-Basic"}.get(row, f"`{row}`")


def _segnet_advice(long: dict | None, base: float | None, median: dict | None = None) -> str:
    """The closing sentence on random-init SegNet, from its long run (if any) and the ``segnet_median`` row."""
    if long is None:
        return "From random weights it needs a longer schedule than the table's (`python scripts/zoo.py long segnet`)."
    best_epoch, best = max(long["curve"], key=lambda em: em[1])
    done = long.get("epochs_done", long["epochs"])
    ran = f"{done} of {long['epochs']} epochs so far" if done < long["epochs"] else f"{long['epochs']} epochs"
    if _lifted(long, base):
        return (
            f"From random weights it needs the longer schedule: {long['epochs']} epochs of the same command reach"
            f" {_pct(best)} (epoch {best_epoch}), {100 * (best - base):.0f} points above the baseline, where the table's"
            f" {EPOCHS} epochs leave it."
        )
    tried = median is not None and median.get("miou") is not None
    return (
        f"From random weights it did not leave the baseline in {ran} (best {_pct(best)} at epoch {best_epoch})"
        + (f", nor with the paper's median-frequency class weights (row `segnet_median`, {EPOCHS} epochs:"
           f" {_pct(median['miou'])})" if tried else "")
        + ": an open item; next to try: torchvision's ImageNet `vgg16_bn` weights, a much longer schedule (a GPU),"
        + (" a higher learning rate." if tried else
           " a higher learning rate or the paper's median-frequency class weights (`--class-weights median`).")
    )


def table() -> None:
    import torch

    rows = []
    stored = read_json(RESULTS, {})
    stored["long"] = _long_results(stored.get("long", {}))
    for name in MODELS:
        out = RUNS / name
        info = measure(name)
        rec = dict(stored.get(name, {}))
        run = read_run(out)
        if run.val is not None:  # a run here: it replaces the committed record
            crf = read_json(out / "val_metrics_crf.json")
            rec = {
                "miou": round(run.val["miou"], 4),
                "miou_crf": crf and round(crf["miou"], 4),
                "iou": run.val_iou(),
                "pixel_accuracy": round(run.val["pixel_accuracy"], 4),
                "train_seconds": round(run.train_seconds) if run.train_seconds is not None else None,
                "encoder_pretrained": run.card.get("encoder_pretrained", info["pretrained"]),
                "measured": f"{time.strftime('%Y-%m-%d')} (2-core CPU)",
            }
            if run.curve:
                rec["trainer_val_miou"] = run.curve[-1][1]  # Trainer.validate at the last epoch, for comparison
        rec.update({k: round(v, 3) for k, v in info.items() if k != "pretrained"}, command=shlex.join(command(name)))
        stored[name] = rec
        arch, encoder = architecture(name)
        encoder = encoder or ("vgg16_bn" if arch == "segnet" else "—")
        pre = rec.get("encoder_pretrained", info["pretrained"])
        show, epochs = shown(name, stored)
        miou = f"{100 * show['miou']:.1f}" if show.get("miou") is not None else "not trained yet"
        if show.get("miou_crf") is not None:
            miou += f" (+CRF {100 * show['miou_crf']:.1f})"
        seconds = show.get("train_seconds")
        rows.append(
            f"| `{arch}` | {encoder} | {'ImageNet' if pre else 'random'} | {info['params_m']:.2f} | {info['gmacs']:.1f} | "
            f"{info['latency_ms']:.0f} | {epochs} | {miou} | {'' if seconds is None else f'{seconds / 60:.0f}'} | "
            f"`{shlex.join(model_args(name))}` |"
        )
    RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    lines = [
        "# Model zoo: every architecture on CamVid, one command, one budget",
        "",
        f"Generated by `python scripts/zoo.py table` on {time.strftime('%Y-%m-%d')} (torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, no GPU). Training: `python scripts/zoo.py train`, and `python scripts/zoo.py long NAME` for the random-init rows.",
        "",
        "Every row was trained with the same command, only `--model` changes (and `--encoder mobilenet_v2` for",
        "encoder-based models):",
        "",
        "```",
        shlex.join(command("NAME")).replace("runs/zoo/NAME", "runs/zoo/NAME"),
        "```",
        "",
        f"CamVid train (367 images, 11 classes), {EPOCHS} epochs of batch 8 (= {EPOCHS * 45} steps) on 180×240 crops,",
        "AdamW lr 1e-3 with poly decay, plain cross-entropy, seed 0; evaluated on CamVid val (101 images) at full",
        "360×480 with `segstudio evaluate`. This is a *short, equal budget* for comparing architectures on a CPU,",
        "not each paper's schedule: the bundled default model (DeepLab v3+, 24 epochs) reaches 63.3 val mIoU.",
        "",
        f"Rows that start from random weights get one longer, common budget: {LONG_EPOCHS} epochs of the same command",
        f"(`python scripts/zoo.py long NAME`, poly decay over the {LONG_EPOCHS} epochs; the epochs column says which budget",
        f"a row shows). In {EPOCHS} epochs ({EPOCHS * 45} steps) no random-init network leaves the baseline, so at that",
        "budget the table would only measure the initialisation (see below). Each random-init row is compared with",
        f"`simple_cnn` trained for the same number of epochs. Rows named `*_random` and `segnet_median` are controls",
        "for the explanation below and may stay at the short budget (their epochs column says so).",
        "",
        "| model | encoder | encoder init | params (M) | GMACs @360×480 | CPU latency (ms, 1 img) | epochs | val mIoU (%) | train time (min) | command (the part that differs) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "- CPU latency: median of 5 forward passes, `torch.inference_mode`, re-measured for every row each time the",
        "  table is generated (date above, 2-core CPU); compare rows with each other, not with other machines.",
        "- Train time: wall-clock minutes including validation, on a 2-core CPU (`measured` in `docs/model-zoo.json`",
        "  gives each row's date). Rows trained on a shared machine (other jobs running; `deeplabv2`'s run also paused",
        "  several times) have inflated times: "
        + ", ".join(f"`{r}`" for r in MODELS if "shared" in stored.get(r, {}).get("measured", "")) + ".",
        "- No GPU was lent to this project's sessions so far: every row trained on the CPU.",
        *_baseline_notes(stored),
        "- DeepLab v1 is meant to be followed by DenseCRF; its row also gives val mIoU with `--crf` (`python scripts/zoo.py crf`:",
        "  `segstudio evaluate --crf`, DeepLab v2's released parameters, 10 mean-field iterations, all 101 val images).",
        "",
    ]
    lines += _random_init_section(stored)
    isbi = REPO / "resources" / "models" / "isbi2012_unet.json"
    if isbi.is_file():
        card = json.loads(isbi.read_text())
        test = card.get("metrics", {}).get("test")
        if test:
            tr = card.get("training", {})
            from segstudio.engine.checkpoint import load_checkpoint

            model = load_checkpoint(isbi.with_suffix(".safetensors")).model
            params = sum(t.numel() for t in model.parameters()) / 1e6
            lines += [
                "## U-Net on ISBI-2012 membranes",
                "",
                "Bundled model `isbi2012_unet` (`scripts/train_isbi_unet.sh`, card `resources/models/isbi2012_unet.md`): "
                "the paper's U-Net (depth 4, base width 16, random init), trained on the 20 train slices with the "
                "paper's augmentation (flips, rotation, elastic deformation), checkpoint selected on the 5 val slices, "
                "scored once on the 5 test slices. Membrane (class 0) is the foreground the challenge is about.",
                "",
                "| model | params (M) | test pixel error | membrane (foreground) IoU (%) | cell IoU (%) | mIoU (%) | training | command |",
                "|---|---|---|---|---|---|---|---|",
                f"| `unet` (base 16) | {params:.2f} | {test['pixel_error']:.4f} | {100 * test['iou']['membrane']:.1f} | "
                f"{100 * test['iou']['cell']:.1f} | {100 * test['miou']:.1f} | {tr.get('steps_done', '?')} steps "
                f"(batch {tr.get('config', {}).get('batch_size', '?')}, {tr.get('device', 'cpu')}) | "
                "`scripts/train_isbi_unet.sh` |",
                "",
            ]
    (REPO / "docs" / "model-zoo.md").write_text("\n".join(lines))
    print("\n".join(rows))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "table"
    if what == "train":
        train(sys.argv[2:])
    elif what == "long":
        train(sys.argv[2:] or ["unet"], epochs=LONG_EPOCHS, root=LONG_RUNS, val_every=LONG_VAL_EVERY)
    elif what == "crf":
        crf(sys.argv[2:])
    elif what == "table":
        table()
    else:
        sys.exit(f"usage: {sys.argv[0]} train [NAME ...] | long [NAME ...] | crf [NAME ...] | table")
