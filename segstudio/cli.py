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


def _pair(text: str) -> tuple[int, int]:
    parts = text.lower().replace("x", ",").split(",")
    if len(parts) == 1:
        parts = parts * 2
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W or a single size, got {text!r}") from None
    return h, w


def _floats(text: str) -> tuple[float, float]:
    try:
        a, b = (float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI, got {text!r}") from None
    return a, b


def _key_value(text: str) -> tuple[str, object]:
    """Parse ``KEY=VALUE`` into ``(key, value)``; the value is read as JSON when it parses (16, 0.5, true), else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def cmd_train(args) -> int:
    from tqdm import tqdm

    from segstudio.engine import TrainConfig, train_on_folder

    # With --init (a fine-tune) the recipe chooses every option left unset (None) from the data, the model, the
    # device and the budget; each flag given overrides its choice. Without the recipe, unset flags take the
    # TrainConfig defaults (train_on_folder fills them).
    recipe = args.init is not None and not args.no_recipe
    if args.budget is not None and args.budget <= 0:
        raise SystemExit("segstudio train: error: --budget must be > 0 minutes")
    cfg = TrainConfig(
        recipe=recipe,
        budget_s=None if args.budget is None else 60.0 * args.budget,
        holdout_fraction=0.2 if recipe else 0.0,
        lr_head=args.lr_head,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        crop_size=args.crop_size,
        scale_range=args.scale_range,
        loss=args.loss,
        class_weights=args.class_weights,
        freeze_bn=args.freeze_bn,
        freeze_encoder=args.freeze_encoder,
        num_workers=args.workers,
        device=args.device,
        seed=args.seed,
        val_every=args.val_every,
        max_steps=args.max_steps,
        hflip=not args.no_hflip,
        vflip=args.vflip,
        rotate=args.rotate,
        translate=args.translate,
        elastic=args.elastic,
        color_jitter=args.jitter,
        sync_bn=args.sync_bn,
        dist_timeout_s=args.dist_timeout,
    )
    from segstudio.engine.distributed import PeerFailure, env_rank, launched_by_torchrun

    rank = env_rank() if launched_by_torchrun() else 0
    if rank > 0:  # under torchrun only rank 0 reports progress and INFO messages
        logging.getLogger().setLevel(logging.WARNING)
    bar = None

    def progress(event: str, info: dict) -> None:
        nonlocal bar
        if event == "step":
            if bar is None:
                bar = tqdm(total=info["total_steps"], initial=info["global_step"] - 1, unit="step", dynamic_ncols=True)
            if bar.total != info["total_steps"]:  # a time budget re-plans the number of steps
                bar.total = info["total_steps"]
                bar.refresh()
            bar.update(1)
            bar.set_postfix(epoch=info["epoch"] + 1, loss=f"{info['loss']:.3f}", lr=f"{info['lr']:.1e}")
        elif event == "epoch":
            msg = f"epoch {info['epoch']}: train loss {info['train_loss']:.4f}"
            if "val_miou" in info:
                msg += f", val mIoU {100 * info['val_miou']:.2f}"
            (bar.write if bar else print)(msg)
        elif event == "done" and bar is not None:
            bar.close()

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
            callbacks=[progress],
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


def _collect_images(items: list[str]) -> list[Path]:
    from segstudio.io import list_images

    out: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            out.extend(list_images(p))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def _load(args):
    from segstudio.engine import load_checkpoint
    from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR

    if getattr(args, "backend", "torch") == "onnxruntime":
        return _load_onnx(args)
    if getattr(args, "model", None):
        # A bundled model by name (segstudio/resources/models/<name>.safetensors).
        cand = DEFAULT_MODEL_DIR / f"{args.model}.safetensors"
        if not cand.is_file():
            names = sorted(p.stem for p in DEFAULT_MODEL_DIR.glob("*.safetensors"))
            raise FileNotFoundError(f"no bundled model {args.model!r}; bundled: {', '.join(names) or 'none'}")
        return load_checkpoint(cand)
    return load_checkpoint(args.checkpoint)


def _load_onnx(args):
    """``predict --backend onnxruntime``: the ``--checkpoint`` is an ONNX file written by ``segstudio export``."""
    from segstudio.engine.export import load_onnx

    if not args.checkpoint or Path(args.checkpoint).suffix.lower() != ".onnx":
        raise ValueError("--backend onnxruntime runs an exported model: pass --checkpoint FILE.onnx (see `segstudio export`)")
    return load_onnx(args.checkpoint)


def cmd_export(args) -> int:
    """``segstudio export``: checkpoint → ONNX / TorchScript file, verified on a real image (engine/export.py)."""
    from segstudio.engine import load_checkpoint
    from segstudio.engine.export import ExportError, export_model
    from segstudio.io import read_image

    from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR

    bundled = DEFAULT_MODEL_DIR / f"{args.checkpoint}.safetensors"
    if args.checkpoint == "default":
        loaded = load_checkpoint(None)
    elif not Path(args.checkpoint).exists() and bundled.is_file():  # a bundled model by name, e.g. isbi2012_unet
        loaded = load_checkpoint(bundled)
    else:
        loaded = load_checkpoint(args.checkpoint)
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


def _predict_output_names(images: list[Path], max_bytes: int = 255) -> dict[Path, tuple[str, str]]:
    """``{image: (label file name, overlay file name)}`` for ``segstudio predict``: ``<stem>.png`` and
    ``<stem>_overlay.png``, made unique when two inputs share a stem (``a.png``, ``a.jpg`` -> ``a.jpg.png``; the
    same name in two folders gets ``~<hash>``) and shortened (stem cut, 8-hex hash of the full name added) when a name would exceed ``max_bytes``."""
    import hashlib
    import os
    from collections import Counter

    stems = Counter(p.stem for p in images)
    names = Counter(p.name for p in images)
    out = {}
    for p in images:
        stem = p.stem if stems[p.stem] == 1 else p.name
        tag = hashlib.sha1(os.fsencode(str(p.resolve()))).hexdigest()[:8]
        if names[p.name] > 1:  # same file name in two input folders
            stem = f"{stem}~{tag}"
        if len(os.fsencode(stem + "_overlay.png")) > max_bytes:
            stem = os.fsdecode(os.fsencode(stem)[: max_bytes - 40]) + "~" + tag
        out[p] = (f"{stem}.png", f"{stem}_overlay.png")
    return out


def cmd_predict(args) -> int:
    from tqdm import tqdm

    from segstudio.core import blend_overlay
    from segstudio.engine import Predictor
    from segstudio.io import ImageReadError, atomic_write_bytes, write_index_png
    from segstudio.io.atomic import sweep_stale_temps

    import io as _io

    from PIL import Image

    images = _collect_images(args.inputs)
    if not images:
        raise FileNotFoundError("no images found in " + ", ".join(args.inputs))
    out = Path(args.output)
    names = _predict_output_names(images)
    inputs = {p.resolve() for p in images}
    clash = [out / n for pair in names.values() for n in pair if (out / n).resolve() in inputs]
    if clash:
        raise ValueError(f"writing to {out} would overwrite the input image {clash[0]}; choose another output folder (-o)")
    predictor = Predictor(_load(args), device=args.device, tile_size=args.tile_size, scale=args.scale)
    crf = _crf_params(args)
    out.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(out)  # temps a killed earlier run left behind (segstudio.io.atomic)
    failed = 0
    post = crf is not None or args.morph is not None  # --crf / --morph: post-process the probabilities
    # predict_many decodes the next images on a prefetch thread and batches same-size images.
    results = predictor.predict_many(
        images, batch_size=args.batch_size, output="proba" if post else "labels", errors="yield"
    )
    for res in tqdm(results, total=len(images), unit="img", dynamic_ncols=True):
        path = images[res.index]
        if res.error is not None:
            if isinstance(res.error, ImageReadError):
                log.error("%s", res.error)
            else:
                log.error("%s: prediction not written (%s: %s)", path, type(res.error).__name__, res.error)
            failed += 1
            continue
        image = res.image
        label_name, overlay_name = names[path]
        try:
            if post:
                from segstudio.postprocess import refine

                labels = refine(image, res.output, crf, args.morph, num_classes=len(predictor.classes.names))
            else:
                labels = res.output
            write_index_png(out / label_name, labels)
            buf = _io.BytesIO()
            Image.fromarray(blend_overlay(image, labels, predictor.classes, args.opacity)).save(buf, format="PNG")
            atomic_write_bytes(out / overlay_name, buf.getvalue())
        except Exception as exc:  # one bad file must not end the run (nor print a traceback)
            log.error("%s: prediction not written (%s: %s)", path, type(exc).__name__, exc)
            failed += 1
    print(f"wrote {len(images) - failed} label maps to {out}" + (f" ({failed} unreadable images skipped)" if failed else ""))
    return 1 if failed else 0


def cmd_evaluate(args) -> int:
    from tqdm import tqdm

    from segstudio.engine import Predictor, evaluate
    from segstudio.io import atomic_write_bytes

    predictor = Predictor(_load(args), device=args.device)
    bar = tqdm(unit="img", dynamic_ncols=True)

    def progress(i, n):
        bar.total = n
        bar.update(1)

    res = evaluate(predictor, args.data, args.split, progress, save_vis=args.save_vis, crf=_crf_params(args), morph=args.morph)
    bar.close()
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731  (None: no labelled pixels)
    print(
        f"pixel accuracy {pct(res['pixel_accuracy'])}  mean class accuracy {pct(res['mean_class_accuracy'])}  "
        f"mIoU {pct(res['miou'])}  fwIoU {pct(res['fw_iou'])}  mean F1 {pct(res['mean_f1'])}  ({res['images']} images)"
    )
    for name, v in res["iou"].items():
        print(
            f"  {name:<16} IoU {pct(v):>6}  precision {pct(res['precision'][name]):>6}  "
            f"recall {pct(res['recall'][name]):>6}  F1 {pct(res['f1'][name]):>6}"
        )
    out = Path(args.output) if args.output else Path("metrics.json")
    atomic_write_bytes(out, (json.dumps(res, indent=1) + "\n").encode())
    print(f"wrote {out}" + (f"; pictures and confusion_matrix.png in {args.save_vis}" if args.save_vis else ""))
    return 0


def cmd_convert(args) -> int:
    from segstudio.io.formats import convert

    try:
        written = convert(args.src, args.dst, args.to, classes=args.classes, from_format=args.from_format,
                          overwrite=args.overwrite)
    except FileExistsError as exc:
        print(f"segstudio convert: error: {exc}", file=sys.stderr)
        return 2
    n = sum(1 for p in written if p.name != "classes.json")
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


def _postprocess_spec(name: str):
    """argparse ``type=`` for a post-processing spec parsed by ``segstudio.postprocess.pipeline.<name>``."""

    def convert(text: str):
        from segstudio.postprocess import pipeline

        try:
            return getattr(pipeline, name)(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _add_postprocess_args(parser: argparse.ArgumentParser) -> None:
    """``--crf``, ``--crf-params``, ``--morph`` (shared by ``predict`` and ``evaluate``)."""
    post = parser.add_argument_group("post-processing (segstudio.postprocess)")
    post.add_argument("--crf", action="store_true", help="refine with a dense CRF (Kraehenbuehl & Koltun 2011; DeepLab v2 defaults)")
    post.add_argument(
        "--crf-params",
        type=_postprocess_spec("parse_crf_params"),
        metavar="K=V,...",
        help="CRF parameters, implies --crf: iterations (10), pos_w (3), pos_xy_std (1), bi_w (4), bi_xy_std (67), "
        "bi_rgb_std (3), clip (1e-5); e.g. iterations=5,bi_w=5",
    )
    post.add_argument(
        "--morph",
        type=_postprocess_spec("parse_morph_spec"),
        metavar="SPEC",
        help="per-class morphology after argmax, sizes in pixels: min-area=N (reassign smaller components), "
        "open=D, close=D (element diameter), fill-holes=N (max hole area), shape=ellipse|rect|cross, "
        "connectivity=4|8; e.g. open=3,close=3,min-area=64,fill-holes=256",
    )


def _crf_params(args):
    """The CRF parameters asked for on the command line (``--crf-params`` implies ``--crf``), or ``None``."""
    crf = args.crf_params
    if crf is None and args.crf:
        from segstudio.postprocess import CRFParams

        crf = CRFParams()
    return crf


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="segstudio", description="SegStudio: predict, correct, retrain semantic segmentation.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train or fine-tune a model on a dataset folder")
    t.add_argument(
        "--data",
        required=True,
        help="dataset folder (images/, masks/, train.txt, classes.json), image folder with labels/, or a dataset "
        "manifest .json (written by the app for cluster runs)",
    )
    t.add_argument("--model", help="architecture name (see `segstudio models`)")
    t.add_argument("--init", help="checkpoint to start from, or 'default' for the embedded model")
    t.add_argument("--encoder", help="encoder name (e.g. mobilenet_v2)")
    t.add_argument("--output-stride", type=int, help="8 or 16 for DeepLab models")
    t.add_argument(
        "--model-arg",
        type=_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="extra builder argument for a new model, repeatable (e.g. --model-arg base_channels=16 for unet)",
    )
    t.add_argument(
        "--budget",
        type=float,
        metavar="MIN",
        help="time budget in minutes: the step time is measured and the schedule fills the budget (default with "
        "--init: 3 on a CPU, 1 on a GPU, unless --epochs/--max-steps are given)",
    )
    t.add_argument(
        "--no-recipe",
        action="store_true",
        help="with --init: do not let the fine-tune recipe choose the unset options (use the plain defaults)",
    )
    t.add_argument("--epochs", type=int, help="passes over the training set (default 10; with --init: the budget decides)")
    t.add_argument(
        "--batch-size",
        type=int,
        help="global batch: images per step over all processes (under torchrun each loads batch/nproc; default 8, "
        "with --init: the recipe's)",
    )
    t.add_argument("--lr", type=float, help="AdamW peak learning rate (default 1e-3; with --init: the recipe's)")
    t.add_argument("--lr-head", type=float, help="learning rate of a newly initialised classifier (default: --lr or the recipe's)")
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--crop-size", type=_pair, help="H,W of random crops (default 256,256; with --init: the recipe's)")
    t.add_argument("--scale-range", type=_floats, help="random rescale LO,HI (default 0.5,2.0; with --init: the recipe's)")
    t.add_argument(
        "--loss",
        metavar="SPEC",
        help="loss: ce, focal, dice, jaccard (alias iou), lovasz, or a weighted sum such as ce+dice or "
        "ce+0.5*dice (default ce; with --init: the recipe's)",
    )
    t.add_argument(
        "--class-weights",
        choices=("none", "median", "inverse"),
        help="weight the ce/focal terms per class, computed from the training masks: median-frequency "
        "balancing (SegNet) or inverse frequency (default none; with --init: the recipe's)",
    )
    aug = t.add_argument_group("augmentation (mask-aware, torchvision.transforms.v2)")
    aug.add_argument("--no-hflip", action="store_true", help="no random horizontal flips")
    aug.add_argument("--vflip", action="store_true", help="random vertical flips (microscopy, aerial)")
    aug.add_argument("--rotate", type=float, default=0.0, metavar="DEG", help="random rotation up to +-DEG degrees")
    aug.add_argument("--translate", type=float, default=0.0, metavar="FRAC", help="random shift up to FRAC of the size")
    aug.add_argument("--elastic", type=float, default=0.0, metavar="ALPHA", help="elastic deformation strength, pixels")
    aug.add_argument("--jitter", type=float, default=0.2, help="colour jitter strength (0 disables, default 0.2)")
    t.add_argument("--freeze-bn", action="store_true", default=None, help="keep BatchNorm statistics fixed")
    t.add_argument("--freeze-encoder", action="store_true", help="train only the decoder/head (encoder weights and BN fixed)")
    t.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun on CUDA: SyncBatchNorm (BatchNorm statistics over the global batch)",
    )
    t.add_argument(
        "--dist-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="under torchrun: how long a rank waits for its peers before the job fails (default 600)",
    )
    t.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    t.add_argument("--device", default="auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--val-every", type=int, default=1, help="validate every N epochs")
    t.add_argument("--max-steps", type=int, help="stop after this many steps")
    t.add_argument("--resume", action="store_true", help="continue the run in -o from its last checkpoint")
    t.add_argument("-o", "--output", required=True, help="run folder")
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
        "--batch-size", type=int, default=None, help="same-size images stacked per forward pass (default: 4 on a GPU, 1 on the CPU)"
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

    _add_postprocess_args(pr)
    pr.set_defaults(func=cmd_predict)

    ev = sub.add_parser("evaluate", help="pixel accuracy, IoU/mIoU/fwIoU, precision/recall/F1 on a dataset split")
    ev.add_argument("--data", required=True)
    ev.add_argument("--split", default="val")
    g = ev.add_mutually_exclusive_group()
    g.add_argument("--model", help="bundled model name")
    g.add_argument("--checkpoint", help="model.safetensors or a run folder")
    ev.add_argument("--device", default="auto")
    ev.add_argument("-o", "--output", help="metrics JSON (default metrics.json)")
    ev.add_argument(
        "--save-vis",
        metavar="DIR",
        help="write one picture per image into DIR (image | ground truth | prediction | error map: correct, "
        "wrong, ignore) and DIR/confusion_matrix.png (row-normalised, class names on the axes)",
    )
    _add_postprocess_args(ev)
    ev.set_defaults(func=cmd_evaluate)

    cv = sub.add_parser(
        "convert",
        help="convert label files between index, VOC palette, colour-coded, COCO RLE and labelme formats",
        description="Convert label maps between formats. SRC is a label file or a folder of them (.png/.json; "
        "classes.json is skipped). Formats: index (8-bit PNG, value = class id), voc (palette PNG), color "
        "(RGB PNG in classes.json colours), coco (one COCO JSON with RLE segmentations), labelme (JSON polygons). "
        "Inputs are never overwritten; existing outputs only with --overwrite.",
    )
    cv.add_argument("src", metavar="SRC", help="label file or folder of label files")
    cv.add_argument(
        "dst",
        metavar="DST",
        help="output folder (gets <stem>.png/.json per label map and classes.json), or an output file when SRC is "
        "one file (for --to coco: a .json file, or a folder that gets annotations.json)",
    )
    formats = ("index", "voc", "color", "coco", "labelme")
    cv.add_argument("--to", required=True, choices=formats, help="output format")
    cv.add_argument("--from", dest="from_format", choices=formats, help="input format (default: detected per file)")
    cv.add_argument(
        "--classes",
        metavar="CLASSES_JSON",
        help="classes.json (default: beside SRC or one folder up; a COCO source brings its own categories); "
        "needed to read color/labelme and to write voc/color/labelme/coco",
    )
    cv.add_argument("--overwrite", action="store_true", help="replace existing output files")
    cv.set_defaults(func=cmd_convert)

    sy = sub.add_parser(
        "synth",
        help="write a synthetic-shapes dataset (for tests and demos)",
        description="Write a seeded, reproducible synthetic dataset: coloured circles, rectangles, triangles and "
        "rings over a textured noisy background, in the dataset layout (images/, masks/ with 255 = ignore, "
        "train.txt/val.txt/test.txt 70/15/15, classes.json).",
    )
    sy.add_argument("--n", type=int, default=200, help="number of images (default 200)")
    sy.add_argument("-o", "--output", required=True, help="output folder (refused if it already holds a dataset, unless --overwrite)")
    sy.add_argument("--size", type=_pair, default=(128, 128), help="image size H,W or one number (default 128)")
    sy.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same files")
    sy.add_argument(
        "--ignore-border",
        type=int,
        default=1,
        metavar="PX",
        help="width of the ignore (255) band along the inside of every shape's outline, as VOC's void borders "
        "(0: none; default 1)",
    )
    sy.add_argument("--overwrite", action="store_true", help="write into a folder that already holds a dataset")
    sy.set_defaults(func=cmd_synth)

    ex = sub.add_parser(
        "export",
        help="write a checkpoint as ONNX or TorchScript (with its normalisation and classes), verified on a real image",
    )
    ex.add_argument(
        "--checkpoint", required=True, help="model.safetensors, a run folder, 'default', or a bundled model's name (isbi2012_unet)"
    )
    ex.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="onnx (default) or torchscript")
    ex.add_argument("-o", "--output", required=True, help="file to write (e.g. model.onnx, model.pt)")
    ex.add_argument("--dynamic-shapes", action="store_true", help="any batch size, height and width (default: the size of the check image)")
    ex.add_argument("--fp16", action="store_true", help="float16 weights and arithmetic (float32 inputs and outputs)")
    ex.add_argument("--image", help="image to verify the export on and to take the fixed input size from (default: a bundled sample)")
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
