"""Each architecture's docstring carries a runnable Example (as smp's do); run them as doctests."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = [
    "deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3plus", "fcn", "gcn", "ksac", "lraspp", "parsenet", "pspnet",
    "segnet", "simple_cnn", "unet",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_example_runs(name):
    torch.set_num_threads(1)
    module = importlib.import_module(f"segstudio.models.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 3, f"{name}: no Example in its docstrings"
    assert result.failed == 0
