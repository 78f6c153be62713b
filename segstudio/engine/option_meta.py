"""Field metadata of the training options: :class:`CliOption` (a field's ``segstudio train`` flag and help text),
:func:`option` (the ``dataclasses.field(metadata=...)`` helper) and the argparse ``type=`` parsers the fields name.

A leaf module: it imports nothing from :mod:`segstudio.engine`, so :mod:`segstudio.engine.train_config` (the
config, whose fields carry this metadata) and :mod:`segstudio.engine.options` (the parsers generated from it) both
import it without importing each other in a circle.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

CLI_KEY = "cli"
"""Key of the :class:`CliOption` in a dataclass field's ``metadata``."""


def parse_pair(text: str) -> tuple[int, int]:
    """``"H,W"``, ``"HxW"`` or one size ``"N"`` → ``(h, w)`` ints; argparse ``type=``.

    Raises:
        argparse.ArgumentTypeError: not one or two integers.
    """
    parts = text.lower().replace("x", ",").split(",")
    if len(parts) == 1:
        parts = parts * 2
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W or a single size, got {text!r}") from None
    return h, w


def parse_floats(text: str) -> tuple[float, float]:
    """``"LO,HI"`` → ``(lo, hi)`` floats; argparse ``type=``.

    Raises:
        argparse.ArgumentTypeError: not two numbers.
    """
    try:
        a, b = (float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI, got {text!r}") from None
    return a, b


@dataclass(frozen=True)
class CliOption:
    """How one TrainConfig field appears on the ``segstudio train`` command line.

    Attributes:
        flag: the long option, e.g. ``"--batch-size"`` (for a ``True``-default boolean: the ``--no-x`` switch).
        help: help text.
        type: argparse ``type=`` (``None`` for booleans and plain strings).
        metavar: argparse ``metavar``.
        choices: allowed values.
        scale: the field holds ``scale × value on the command line`` (``budget_s`` in seconds from minutes).
        group: argparse argument group title (``None``: the command's own options).
        unset: the command-line default is ``None`` (the command derives the value, e.g. ``recipe`` from
            ``--init``), whatever the field's default.
    """

    flag: str
    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple | None = None
    scale: float | None = None
    group: str | None = None
    unset: bool = False


def option(flag: str, help: str, **kw) -> dict:
    """Field metadata ``{"cli": CliOption(flag, help, **kw)}`` for ``dataclasses.field(metadata=...)``."""
    return {CLI_KEY: CliOption(flag, help, **kw)}
