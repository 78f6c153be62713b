"""One schema for the training options: each :class:`~segstudio.engine.train_config.TrainConfig` field carries its
``segstudio train`` flag and help text as dataclass field metadata (:func:`option`); the train parser
(:func:`add_config_arguments`), the config built from parsed flags (:func:`config_from_args`) and the flags that
reproduce a config (:func:`config_to_args`, used by the cluster command) are all generated from it.

Command-line defaults: a field the fine-tune recipe fills (:data:`~segstudio.engine.train_config.RECIPE_FIELDS`)
is ``None`` when its flag is not given, so the recipe (with ``--init``) or :func:`train_on_folder` (without)
chooses it; every other field takes its TrainConfig default. Booleans: a field whose command-line default is
``None`` gets ``--x`` / ``--no-x``; one defaulting to ``False`` a switch ``--x``; one defaulting to ``True`` a
switch ``--no-x``.

Also here, so that ``segstudio/cli.py`` stays a short list of commands: the parsers of ``train``, ``evaluate``,
``convert``, ``synth`` and ``export`` and the post-processing options shared by ``predict`` and ``evaluate``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Callable

from segstudio.engine.option_meta import CLI_KEY, CliOption, option, parse_floats, parse_pair  # noqa: F401 (re-exported)


def parse_key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → ``(key, value)``; the value is read as JSON when it parses (16, 0.5, true), else kept as text.

    Raises:
        argparse.ArgumentTypeError: no ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _config_type():
    from segstudio.engine.train_config import TrainConfig  # torch-free: `segstudio train --help` stays fast

    return TrainConfig


def _recipe_fields() -> tuple[str, ...]:
    from segstudio.engine.train_config import RECIPE_FIELDS

    return RECIPE_FIELDS


def cli_fields(config_type=None) -> list[tuple[dataclasses.Field, CliOption, Any]]:
    """``[(field, option, command-line default)]`` of every TrainConfig field, in declaration order.

    Raises:
        TypeError: a field without a :class:`CliOption` (every option must be expressible on the command line).
    """
    config_type = config_type or _config_type()
    recipe_fields = set(_recipe_fields())
    out = []
    for f in dataclasses.fields(config_type):
        opt = f.metadata.get(CLI_KEY)
        if opt is None:
            raise TypeError(f"TrainConfig.{f.name} has no command-line option (metadata=option(...))")
        cli_default = None if f.name in recipe_fields or opt.unset else f.default
        out.append((f, opt, cli_default))
    return out


def dest(f: dataclasses.Field, opt: CliOption) -> str:
    """The argparse ``dest`` of a field's flag: argparse's own (``--budget`` → ``budget``), except a ``--no-x``
    switch of a ``True``-default field, whose dest is the field (``--no-hflip`` stores ``hflip=False``)."""
    if opt.flag.startswith("--no-") and f.default is True:
        return f.name
    return opt.flag[2:].replace("-", "_")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one argument per TrainConfig field to ``parser`` (dest: see :func:`dest`), with its flag, help, type,
    choices and command-line default (see the module docstring)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f, opt, default in cli_fields():
        target = parser
        if opt.group:
            target = groups.get(opt.group) or groups.setdefault(opt.group, parser.add_argument_group(opt.group))
        kw: dict[str, Any] = {"dest": dest(f, opt), "help": opt.help}
        if _is_bool(f):
            if default is None:
                kw.update(action=argparse.BooleanOptionalAction, default=None)
            elif default is False:
                kw.update(action="store_true", default=False)
            else:
                kw.update(action="store_false", default=True)
        else:
            kw["default"] = default if default is None or opt.scale is None else default / opt.scale
            if opt.type is not None:
                kw["type"] = opt.type
            if opt.metavar:
                kw["metavar"] = opt.metavar
            if opt.choices is not None:
                kw["choices"] = opt.choices
        target.add_argument(opt.flag, **kw)


def _is_bool(f: dataclasses.Field) -> bool:
    """``bool`` or ``bool | None`` (annotations are strings under ``from __future__ import annotations``)."""
    return str(f.type).replace(" ", "") in ("bool", "bool|None", "<class'bool'>")


def config_from_args(args: argparse.Namespace, **derived):
    """The TrainConfig given by parsed flags (from :func:`add_config_arguments`).

    Args:
        args: the parsed namespace.
        derived: values for fields whose flag was not given (left ``None``), e.g. ``recipe=True`` with ``--init``;
            a flag given on the command line wins.
    """
    values = {}
    for f, opt, _ in cli_fields():
        v = getattr(args, dest(f, opt))
        if v is None and f.name in derived:
            v = derived[f.name]
        elif v is not None and opt.scale is not None:
            v = v * opt.scale
        values[f.name] = v
    return _config_type()(**values)


def _format(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def config_to_args(config, skip: tuple[str, ...] = ()) -> list[str]:
    """The ``segstudio train`` flags that reproduce ``config`` (every field outside ``skip``, defaults included;
    ``None`` fields are left out, i.e. unset).

    ``config_from_args(parse(config_to_args(config)))`` equals ``config`` (tests/test_cli.py checks every field).
    """
    out: list[str] = []
    for f, opt, default in cli_fields(type(config)):
        if f.name in skip:
            continue
        value = getattr(config, f.name)
        if value is None:
            continue
        if _is_bool(f):
            if default is None:
                out.append(opt.flag if value else "--no-" + opt.flag[2:])
            elif value != default:
                out.append(opt.flag)
            continue
        if opt.scale is not None:
            value = value / opt.scale
        out += [opt.flag, _format(value)]
    return out


def _postprocess_spec(name: str):
    """argparse ``type=`` for a post-processing spec parsed by ``segstudio.postprocess.pipeline.<name>``."""

    def convert(text: str):
        from segstudio.postprocess import pipeline

        try:
            return getattr(pipeline, name)(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


TTA_HELP = (
    "horizontal-flip test-time augmentation: also predict each image mirrored and average the two logit maps "
    "(about 2x the model time; CamVid figures in docs/benchmarks.md, `python -m bench tta`)"
)


def add_tta_argument(parser: argparse.ArgumentParser) -> None:
    """``--tta`` (shared by ``predict`` and ``evaluate``): :class:`segstudio.engine.Predictor` ``tta=True``."""
    parser.add_argument("--tta", action="store_true", help=TTA_HELP)


def add_postprocess_arguments(parser: argparse.ArgumentParser) -> None:
    """``--crf``, ``--crf-params``, ``--morph`` (shared by ``predict`` and ``evaluate``; see :func:`crf_from_args`)."""
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


def crf_from_args(args: argparse.Namespace):
    """The :class:`segstudio.postprocess.CRFParams` asked for (``--crf-params`` implies ``--crf``), or ``None``."""
    crf = args.crf_params
    if crf is None and args.crf:
        from segstudio.postprocess import CRFParams

        crf = CRFParams()
    return crf


class LazyChoices(Sequence):
    """argparse ``choices=`` computed on first use, so that building a parser does not import the module that knows
    them (``segstudio --help`` stays fast). Give the argument a ``metavar`` too: without one argparse lists the
    choices as soon as the argument is added. ``"%(choices)s"`` in its help lists them when that help is shown.

    Args:
        load: ``() -> tuple[str, ...]``, called once, the first time the choices are read.
    """

    def __init__(self, load: Callable[[], tuple[str, ...]]) -> None:
        self._load = load
        self._items: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._items is None:
            self._items = tuple(self._load())
        return self._items

    def __getitem__(self, i):
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __contains__(self, value) -> bool:
        return value in self._get()

    def __iter__(self):
        return iter(self._get())


def _label_format_names() -> tuple[str, ...]:
    from segstudio.io.formats import FORMATS  # imports numpy, Pillow, OpenCV, pycocotools

    return FORMATS


# Parsers of the commands whose options have no dataclass (segstudio/cli.py creates the sub-commands).

def add_evaluate_parser(sub) -> argparse.ArgumentParser:
    """``segstudio evaluate``: model, dataset split, metrics JSON, pictures, post-processing."""
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
    ev.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="evaluate only the first N images of the split, in the split list's order (default: all)",
    )
    add_tta_argument(ev)
    add_postprocess_arguments(ev)
    return ev


def add_convert_parser(sub) -> argparse.ArgumentParser:
    """``segstudio convert``: label files between index, VOC, colour, COCO and labelme formats."""
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
    formats = LazyChoices(_label_format_names)  # the label-format registry names them once
    cv.add_argument("--to", required=True, choices=formats, metavar="FORMAT", help="output format: %(choices)s")
    cv.add_argument("--from", dest="from_format", choices=formats, metavar="FORMAT",
                    help="input format: %(choices)s (default: detected per file)")
    cv.add_argument(
        "--classes",
        metavar="CLASSES_JSON",
        help="classes.json (default: beside SRC or one folder up; a COCO source brings its own categories); "
        "needed to read color/labelme and to write voc/color/labelme/coco",
    )
    cv.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return cv


def add_synth_parser(sub) -> argparse.ArgumentParser:
    """``segstudio synth``: a synthetic-shapes dataset."""
    sy = sub.add_parser(
        "synth",
        help="write a synthetic-shapes dataset (for tests and demos)",
        description="Write a seeded, reproducible synthetic dataset: coloured circles, rectangles, triangles and "
        "rings over a textured noisy background, in the dataset layout (images/, masks/ with 255 = ignore, "
        "train.txt/val.txt/test.txt 70/15/15, classes.json).",
    )
    sy.add_argument("--n", type=int, default=200, help="number of images (default 200)")
    sy.add_argument("-o", "--output", required=True, help="output folder (refused if it already holds a dataset, unless --overwrite)")
    sy.add_argument("--size", type=parse_pair, default=(128, 128), help="image size H,W or one number (default 128)")
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
    return sy


def add_export_parser(sub) -> argparse.ArgumentParser:
    """``segstudio export``: ONNX / TorchScript export of a checkpoint."""
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
    return ex


def add_train_parser(sub) -> argparse.ArgumentParser:
    """``segstudio train``: data, model / checkpoint, one flag per TrainConfig field (:func:`add_config_arguments`),
    ``--resume``, ``-o``."""
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
        type=parse_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="extra builder argument for a new model, repeatable (e.g. --model-arg base_channels=16 for unet)",
    )
    add_config_arguments(t)  # one flag per TrainConfig field (segstudio.engine.options)
    t.add_argument("--resume", action="store_true", help="continue the run in -o from its last checkpoint")
    t.add_argument("-o", "--output", required=True, help="run folder")
    return t
