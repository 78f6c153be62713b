"""Shared fixtures: offscreen Qt, offline ImageNet weights from ../shared, paths to real data."""

from __future__ import annotations

import gc
import inspect
import io
import os
import re
import shutil
import textwrap
import tokenize
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGSTUDIO_SHARED", REPO.parent / "shared"))
CAMVID = SHARED / "datasets" / "camvid"
ISBI = SHARED / "datasets" / "isbi2012_membrane"
SAMPLES = REPO / "resources" / "samples"


def _seed_torch_home(root: Path) -> None:
    """Put ../shared's MobileNetV2 weights where torchvision looks first, so nothing is downloaded."""
    ckpt = root / "hub" / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    src = SHARED / "weights" / "mobilenet_v2-b0353104.pth"
    if src.is_file() and not (ckpt / src.name).exists():
        shutil.copy(src, ckpt / src.name)


_TORCH_HOME = Path(os.environ.get("SEGSTUDIO_TEST_TORCH_HOME", REPO / ".torch"))
_seed_torch_home(_TORCH_HOME)
os.environ["TORCH_HOME"] = str(_TORCH_HOME)


# -- the `data` marker: tests that read ../shared --------------------------------------------------------------
# `pytest -m "not data"` runs without ../shared. A test is marked `data` when its code, or the code of a fixture it
# uses (directly or through other fixtures), names one of the data roots below or a module-level helper that does
# (to a fixed point), or asks for ImageNet weights (_WEIGHTS). Comments and strings do not count. A test that needs
# ../shared in another way can carry @pytest.mark.data itself.
_DATA_NAMES = {"SHARED", "CAMVID", "ISBI", "DRIVE", "camvid"}
_WEIGHTS = re.compile(r"pretrained=True|\"pretrained\": True|imagenet_weights_on_disk\(\"mobilenet_v2\"\)")
"""ImageNet weights: offline, only ../shared/weights (seeded into $TORCH_HOME below) provides them."""


def _source(obj) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _names(source: str) -> set[str]:
    """The identifiers in ``source`` (code only: comments and strings do not count)."""
    try:
        toks = tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline)
        return {t.string for t in toks if t.type == tokenize.NAME}
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", source))


def _module_data_names(module, cache: dict) -> set[str]:
    """``_DATA_NAMES`` plus the module's functions whose code refers to one of them (transitively)."""
    if module in cache:
        return cache[module]
    funcs = {}
    for name, obj in vars(module).items():
        fn = getattr(obj, "__wrapped__", obj)  # fixtures wrap their function
        if inspect.isfunction(fn) and fn.__module__ == module.__name__:
            funcs[name] = _names(_source(fn))
    names = set(_DATA_NAMES)
    if getattr(module, "ISBI", None) is not None and not str(getattr(module, "ISBI")).startswith(str(SHARED)):
        names.discard("ISBI")  # a module may reuse the name for something else (a bundled checkpoint)
    changed = True
    while changed:
        changed = False
        for name, words in funcs.items():
            if name not in names and words & names:
                names.add(name)
                changed = True
    cache[module] = names
    return names


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    # -- the `cuda` marker: tests that need an NVIDIA GPU are deselected (not skipped) where there is none, and the
    # run says how many (CI has no GPU; a GPU machine runs them with plain `python -m pytest`).
    cuda_items = [i for i in items if i.get_closest_marker("cuda")]
    if cuda_items and not _cuda_available():
        config.hook.pytest_deselected(items=cuda_items)
        items[:] = [i for i in items if not i.get_closest_marker("cuda")]
        config._segstudio_cuda_deselected = len(cuda_items)
    cache: dict = {}
    if "slow" not in (config.getoption("-m") or ""):  # nightly-style runs only when asked for (`-m slow`): deselected
        slow = [i for i in items if i.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [i for i in items if not i.get_closest_marker("slow")]
            config._segstudio_slow_deselected = len(slow)
    for item in items:
        fn = getattr(item, "function", None)
        if fn is None or item.get_closest_marker("data"):
            continue
        names = _module_data_names(item.module, cache)
        text = _source(fn)
        words = _names(text) | set(item.fixturenames)
        if _WEIGHTS.search(text):
            item.add_marker(pytest.mark.data)
            continue
        fixture_defs = item._fixtureinfo.name2fixturedefs.values() if hasattr(item, "_fixtureinfo") else ()
        for defs in fixture_defs:
            for d in defs:
                words |= _names(_source(d.func))
        if words & names:
            item.add_marker(pytest.mark.data)


@pytest.fixture(scope="session")
def camvid() -> Path:
    if not (CAMVID / "classes.json").is_file():
        pytest.fail(f"CamVid not found at {CAMVID}; tests need ../shared beside the repo (or SEGSTUDIO_SHARED)")
    return CAMVID


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(autouse=True)
def _collect_cycles_on_main_thread():
    """The GUI disables automatic cyclic GC (it must only run on the GUI thread, see
    segstudio.gui.qtutil.collect_garbage_on_gui_thread); collect after every test, on the main thread."""
    yield
    if not gc.isenabled():
        gc.collect()


@pytest.fixture(autouse=True)
def _private_qsettings(tmp_path_factory):
    """Every test gets its own QSettings folder: the window's saved layout never touches the user's settings
    (and one test's layout never leaks into another)."""
    try:
        from PySide6.QtCore import QSettings
    except ImportError:  # pragma: no cover  (engine-only installs)
        yield None
        return
    folder = tmp_path_factory.mktemp("qsettings")
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
    yield folder


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    n = getattr(config, "_segstudio_cuda_deselected", 0)
    if n:
        terminalreporter.write_line(f"{n} test(s) marked cuda deselected: no CUDA device here (they run on a GPU machine)")
    n = getattr(config, "_segstudio_slow_deselected", 0)
    if n:
        terminalreporter.write_line(f"{n} nightly-style test(s) marked slow deselected: run them with -m slow")
