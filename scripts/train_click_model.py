"""Train the click-to-segment model (ClickNet) and optionally install it as the shipped model.

    python scripts/train_click_model.py --data ../shared/datasets/camvid ../shared/datasets/isbi2012_membrane \
        ../shared/datasets/drive --minutes 20 --out runs/clicknet [--install]

RITM-style iterative click simulation on object crops (see segstudio.engine.click.train.train_click_model).
``--install`` copies the result to resources/models/interactive/clicknet_mobilenetv2.{safetensors,json}
(float16 weights).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from segstudio.engine.checkpoint import save_checkpoint
from segstudio.engine.click.session import CLICK_MODEL_DIR, CLICK_MODEL_NAME, load_click_model
from segstudio.engine.click.train import ClickTrainConfig, train_click_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=[], help="dataset folders (images/, masks/, train.txt, classes.json)")
    p.add_argument("--objects-from", default="", help="a ../shared/datasets folder: train on the class-agnostic object "
                   "bank of --domains there (train splits; segstudio.engine.click.objects) instead of --data")
    p.add_argument("--domains", nargs="+", default=[], help="dataset names under --objects-from (default: all six)")
    p.add_argument("--copy-paste", type=float, default=0.3, help="probability of a copy-paste sample (--objects-from)")
    p.add_argument("--union-share", type=float, default=0.5,
                   help="in a dataset with part unions (car parts, JSRT), the share of drawn objects that are whole "
                        "objects (unions) rather than parts (--objects-from; a negative value: every object equally likely)")
    p.add_argument("--first-click-whole", action="store_true",
                   help="a lone first click means the whole object: the steps that train it never cut a part of a "
                        "larger object (car part, lung of lungs + heart) from its own image (--objects-from)")
    p.add_argument("--init", default="", help="start from these click-model weights (e.g. the shipped model)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt if present")
    p.add_argument("--encoder-lr-factor", type=float, default=0.1)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--max-iter-clicks", type=int, default=3)
    p.add_argument("--split", default="train")
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget")
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=224, help="crop side, a multiple of 16")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-encoder", action="store_true", help="also train the encoder's last two stages")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", default="runs/clicknet")
    p.add_argument("--install", action="store_true", help="write the result into resources/models/interactive/")
    p.add_argument("--install-only", action="store_true",
                   help="install OUT/model.safetensors (a finished or stopped run) without training")
    p.add_argument("--training-command", default="", help="with --install-only: the command that trained OUT")
    args = p.parse_args(argv)
    if args.install_only:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        install(Path(args.out), args.training_command or "(not given)")
        return 0
    if not args.data and not args.objects_from:
        p.error("give --data or --objects-from")
    if args.crop % 16:
        p.error(f"--crop must be a multiple of 16, got {args.crop}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = ClickTrainConfig(datasets=args.data, split=args.split, crop=args.crop, batch_size=args.batch_size,
                           minutes=args.minutes, max_steps=args.max_steps, lr=args.lr,
                           train_encoder=args.train_encoder, out=args.out, objects_from=args.objects_from,
                           domains=tuple(args.domains), copy_paste=args.copy_paste if args.objects_from else 0.0,
                           init=args.init, resume=args.resume, encoder_lr_factor=args.encoder_lr_factor,
                           save_every=args.save_every, max_iter_clicks=args.max_iter_clicks,
                           union_share=args.union_share if args.union_share >= 0 else None,
                           first_click_whole=args.first_click_whole)
    summary = train_click_model(cfg)
    logging.info("done: %s", json.dumps(summary))
    if args.install:
        install(Path(args.out), "python scripts/train_click_model.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


def machine() -> dict:
    """The machine that trained (recorded in the card): platform, processor, CPU count, torch threads."""
    import os
    import platform

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "device": "cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name(0)}


def install(out: Path, command: str) -> Path:
    """Copy ``out/model.safetensors`` (float16) + its card to resources/models/interactive/clicknet_mobilenetv2.*;
    the card gets the training command and, when missing, the machine; then run ``scripts/bundled_card_keys.py``
    for the content keys of its training images (SHA-1 + perceptual keys)."""
    import subprocess

    model, card = load_click_model(out / "model.safetensors")
    card["training_command"] = command
    card.setdefault("machine", machine())
    CLICK_MODEL_DIR.mkdir(parents=True, exist_ok=True)
    w = save_checkpoint(CLICK_MODEL_DIR, model, card, half=True, stem=CLICK_MODEL_NAME)
    logging.info("installed %s (%.1f MB)", w, w.stat().st_size / 1e6)
    subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "bundled_card_keys.py")], check=True)
    return w


if __name__ == "__main__":
    sys.exit(main())
