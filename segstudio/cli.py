"""Command line: ``segstudio train | predict | evaluate | convert | synth | gui``.

Every command calls the same engine as the GUI (:mod:`segstudio.engine`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("segstudio")


def train_config_from_args(args):
    """The :class:`~segstudio.engine.TrainConfig` of parsed ``segstudio train`` flags.

    With ``--init`` (and no ``--no-recipe``) it is the GUI's one-click :func:`segstudio.engine.finetune_config` with
    the given flags as its overrides: one code path for both (tests/test_cli.py compares them). Without it, the
    plain options (``train_on_folder`` fills unset fields with the TrainConfig defaults).
    """
    from segstudio.engine.options import config_from_args
    from segstudio.engine.finetune import finetune_config

    recipe = args.init is not None if args.recipe is None else args.recipe
    derived = {"recipe": recipe}
    if recipe:  # the one-click defaults of the fields the recipe does not choose
        one_click = finetune_config()
        derived["holdout_fraction"] = one_click.holdout_fraction
    else:
        derived["holdout_fraction"] = 0.0
    return config_from_args(args, **derived)


def cmd_train(args) -> int:
    from segstudio.engine import train_on_folder
    from segstudio.engine.console import train_progress

    # With --init (a fine-tune) the recipe chooses every option left unset (None) from the data, the model, the
    # device and the budget; each flag given overrides its choice. Without the recipe, unset flags take the
    # TrainConfig defaults (train_on_folder fills them). The flags are generated from TrainConfig (engine/options.py).
    if args.budget is not None and args.budget <= 0:
        raise SystemExit("segstudio train: error: --budget must be > 0 minutes")
    cfg = train_config_from_args(args)
    from segstudio.engine.distributed import PeerFailure, env_rank, launched_by_torchrun

    rank = env_rank() if launched_by_torchrun() else 0
    if rank > 0:  # under torchrun only rank 0 reports progress and INFO messages
        logging.getLogger().setLevel(logging.WARNING)
    model_kwargs = dict(args.model_arg or [])
    if args.encoder:
        model_kwargs["encoder"] = args.encoder
    if args.output_stride:
        model_kwargs["output_stride"] = args.output_stride
    try:
        path = train_on_folder(
            args.data,
            args.output,
            model_name=args.model,
            init=args.init,
            config=cfg,
            model_kwargs=model_kwargs,
            callbacks=[train_progress()],
            resume=args.resume,
        )
    except PeerFailure as exc:
        print(f"segstudio train: error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError) as exc:
        if not launched_by_torchrun():
            raise
        print(f"segstudio train: error on rank {rank}: {exc}", file=sys.stderr)
        return 2
    if rank == 0:
        print(f"saved {path}")
    return 0


def _load(args):
    from segstudio.engine.models_io import open_model

    return open_model(args.checkpoint, bundled=getattr(args, "model", None), backend=getattr(args, "backend", "torch"))


def cmd_export(args) -> int:
    """``segstudio export``: checkpoint → ONNX / TorchScript file, verified on a real image (engine/export.py)."""
    from segstudio.engine.models_io import open_model
    from segstudio.engine.export import ExportError, export_model
    from segstudio.io import read_image

    loaded = open_model(args.checkpoint)
    image = read_image(args.image) if args.image else None
    try:
        res = export_model(loaded, args.output, args.format, dynamic_shapes=args.dynamic_shapes, fp16=args.fp16, image=image)
    except ExportError as exc:
        print(f"segstudio export: failed: {exc}", file=sys.stderr)
        return 1
    size = res.path.stat().st_size / 1e6
    print(f"wrote {res.path} ({res.format}, {res.metadata['precision']}, {size:.1f} MB)")
    for check in res.checks:
        print(f"  verified against PyTorch on {check}")
    return 0


def _predict_output_names(images, max_bytes: int = 255):
    """The old name of :func:`segstudio.engine.predict_folder.output_names`."""
    from segstudio.engine.predict_folder import output_names

    return output_names(images, max_bytes)


def _batch_size_arg(text: str):
    """``--batch-size``: a positive integer or ``auto`` (argparse turns the ValueError into a usage error)."""
    from segstudio.engine.accel import parse_batch_size

    try:
        return parse_batch_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_predict(args) -> int:
    from segstudio.engine import Predictor
    from segstudio.engine.console import count_progress
    from segstudio.engine.options import crf_from_args
    from segstudio.engine.predict_folder import predict_folder

    predictor = Predictor(_load(args), device=args.device, tile_size=args.tile_size, scale=args.scale, tta=args.tta)
    progress, close = count_progress()
    res = predict_folder(predictor, args.inputs, args.output, opacity=args.opacity, batch_size=args.batch_size,
                         crf=crf_from_args(args), morph=args.morph, progress=progress)
    close()
    failed = len(res.failed)
    print(f"wrote {len(res.written)} label maps to {res.output}" + (f" ({failed} unreadable images skipped)" if failed else ""))
    return 1 if failed else 0


def cmd_evaluate(args) -> int:
    from segstudio.engine import Predictor, evaluate
    from segstudio.engine.console import count_progress, metrics_table
    from segstudio.engine.options import crf_from_args
    from segstudio.io import atomic_write_bytes

    predictor = Predictor(_load(args), device=args.device, tta=args.tta)
    progress, close = count_progress()
    res = evaluate(predictor, args.data, args.split, progress, save_vis=args.save_vis, crf=crf_from_args(args),
                   morph=args.morph, limit=args.limit)
    close()
    print("\n".join(metrics_table(res)))
    out = Path(args.output) if args.output else Path("metrics.json")
    atomic_write_bytes(out, (json.dumps(res, indent=1) + "\n").encode())
    print(f"wrote {out}" + (f"; pictures and confusion_matrix.png in {args.save_vis}" if args.save_vis else ""))
    return 0


def cmd_convert(args) -> int:
    from segstudio.io.formats import convert
    from segstudio.io.layout import CLASSES_FILENAME

    try:
        written = convert(args.src, args.dst, args.to, classes=args.classes, from_format=args.from_format,
                          overwrite=args.overwrite)
    except FileExistsError as exc:
        print(f"segstudio convert: error: {exc}", file=sys.stderr)
        return 2
    n = sum(1 for p in written if p.name != CLASSES_FILENAME)
    print(f"wrote {n} {args.to} file(s)" + (f" ({written[0]})" if n == 1 else f" to {Path(args.dst)}")
          + f" from {Path(args.src)}")
    return 0


def cmd_synth(args) -> int:
    from segstudio.data.synth import generate_synth_dataset

    try:
        info = generate_synth_dataset(args.output, n=args.n, size=args.size, seed=args.seed,
                                      ignore_border=args.ignore_border, overwrite=args.overwrite)
    except FileExistsError as exc:
        print(f"segstudio synth: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {info['n']} images ({info['size'][0]}x{info['size'][1]}, classes: {', '.join(info['classes'])}; "
          f"train/val/test {info['splits']['train']}/{info['splits']['val']}/{info['splits']['test']}) to {args.output}")
    return 0


def cmd_gui(args) -> int:
    from segstudio.gui.app import run

    return run(folder=args.folder, checkpoint=args.checkpoint)


def build_parser() -> argparse.ArgumentParser:
    from segstudio.engine.options import (
        add_convert_parser,
        add_evaluate_parser,
        add_export_parser,
        add_postprocess_arguments,
        add_synth_parser,
        add_train_parser,
        add_tta_argument,
    )

    p = argparse.ArgumentParser(prog="segstudio", description="SegStudio: predict, correct, retrain semantic segmentation.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = add_train_parser(sub)  # the TrainConfig flags come from its fields (segstudio.engine.options)
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser("predict", help="write label maps and overlays for images")
    pr.add_argument("inputs", nargs="+", help="image files or folders")
    pr.add_argument("-o", "--output", required=True)
    g = pr.add_mutually_exclusive_group()
    g.add_argument("--model", help="bundled model name")
    g.add_argument("--checkpoint", help="model.safetensors or a run folder")
    pr.add_argument("--device", default="auto")
    pr.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="torch (default) or onnxruntime: run an ONNX file from `segstudio export` (--checkpoint FILE.onnx)",
    )
    pr.add_argument("--opacity", type=float, default=0.5)
    pr.add_argument(
        "--batch-size", type=_batch_size_arg, default=None,
        help="same-size images stacked per forward pass: a number, or 'auto' (from the free GPU memory and a measured "
        "per-image footprint; 1 on the CPU) (default: 8 on a GPU, 1 on the CPU)",
    )
    pr.add_argument(
        "--tile-size",
        type=int,
        default=1024,
        help="images above 2048x2048 px are predicted in overlapping tiles of this size (default 1024)",
    )
    pr.add_argument(
        "--scale",
        default="1",
        help="inference scale: resize each image by this factor before predicting (label maps keep the image's size), "
        "e.g. 0.25 for a 4000x3000 photo and a model trained on 480x360; 'auto' derives it from the model card's "
        "training image size (default 1)",
    )
    add_tta_argument(pr)
    add_postprocess_arguments(pr)
    pr.set_defaults(func=cmd_predict)

    ev = add_evaluate_parser(sub)
    ev.set_defaults(func=cmd_evaluate)

    cv = add_convert_parser(sub)
    cv.set_defaults(func=cmd_convert)

    sy = add_synth_parser(sub)
    sy.set_defaults(func=cmd_synth)

    ex = add_export_parser(sub)
    ex.set_defaults(func=cmd_export)

    m = sub.add_parser("models", help="list registered architectures")
    m.set_defaults(func=lambda a: print("\n".join(__import__("segstudio.models", fromlist=["x"]).list_models())) or 0)

    gu = sub.add_parser("gui", help="open the app (default: bundled samples with the default model)")
    gu.add_argument("folder", nargs="?", help="image folder to open")
    gu.add_argument("--checkpoint", help="model to load instead of the default")
    gu.set_defaults(func=cmd_gui)
    return p


def _default_to_gui(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``segstudio FOLDER [--checkpoint C]`` means ``segstudio gui FOLDER ...``: insert ``gui`` when the first
    positional argument is not a command name (so ``segstudio ~/photos`` opens that folder)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for i, arg in enumerate(argv):
        if arg.startswith("-"):
            if arg in ("-h", "--help"):
                return argv
            continue
        return argv if arg in commands else [*argv[:i], "gui", *argv[i:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_default_to_gui(argv, parser))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        args = parser.parse_args(["gui", *argv])
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError) as exc:
        print(f"segstudio {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
