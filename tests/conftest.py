"""Shared fixtures: offscreen Qt, offline ImageNet weights from ../shared, paths to real data."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGSTUDIO_SHARED", REPO.parent / "shared"))
CAMVID = SHARED / "datasets" / "camvid"
ISBI = SHARED / "datasets" / "isbi2012_membrane"
SAMPLES = REPO / "segstudio" / "resources" / "samples"


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
