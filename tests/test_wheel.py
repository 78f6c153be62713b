"""A non-editable install ships the bundled models and samples (issue 20).

Builds the wheel from a copy of the sources (the repo is not written to), installs it into a fresh venv outside
the repo, and runs the installed ``segstudio predict`` with the default model on a bundled sample from a folder
outside the repo. torch & co. are not downloaded again: after the wheel is installed, a ``.pth`` file makes the
current environment's site-packages visible to the new venv (after its own site-packages, so the installed
``segstudio`` wins over any editable install there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT = "camvid_deeplabv3plus_mobilenetv2"


def _clean_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(OMP_NUM_THREADS="1", HOME=str(tmp / "home"), SEGSTUDIO_HOME=str(tmp / "home"))
    return env


def _build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    for folder in ("segstudio", "resources"):  # the bundled models and samples: top-level resources/ (issue 32)
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        check=True, capture_output=True, text=True, cwd=tmp, env=_clean_env(tmp),
    )
    (wheel,) = dist.glob("segstudio-*.whl")
    return wheel


def test_wheel_installs_and_predicts_with_the_bundled_default_model(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for suffix in (".safetensors", ".json"):
        assert f"segstudio/resources/models/{DEFAULT}{suffix}" in names
    assert any(n.startswith("segstudio/resources/samples/") and n.endswith(".png") for n in names)
    assert not any(n.startswith(("tests/", "bench/", "scripts/", "resources/")) for n in names)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    env = _clean_env(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "zz_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    installed = site / "segstudio" / "resources"
    sample = installed / "samples" / "0001TP_008970.png"
    assert (installed / "models" / f"{DEFAULT}.safetensors").is_file() and sample.is_file()

    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(sample, work / "street.png")
    where = subprocess.run(
        [str(py), "-c", "import segstudio, segstudio.engine.checkpoint as c; print(segstudio.__file__); print(c.default_checkpoint())"],
        check=True, capture_output=True, text=True, cwd=work, env=env,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(site) and Path(where[1]).is_relative_to(site)
    assert not Path(where[1]).is_relative_to(REPO)

    res = subprocess.run(
        [str(env_dir / "bin" / "segstudio"), "predict", "street.png", "-o", "out", "--device", "cpu"],
        capture_output=True, text=True, cwd=work, env=env, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "wrote 1 label maps" in res.stdout
    with Image.open(work / "out" / "street.png") as im:
        labels = np.asarray(im)
    with Image.open(sample) as im:
        assert labels.shape == (im.height, im.width)
    classes = json.loads((installed / "models" / f"{DEFAULT}.json").read_text())["classes"]
    assert labels.dtype == np.uint8 and int(labels.max()) < len(classes)
    # A real street scene, not a constant map: the default model finds several classes.
    assert len(np.unique(labels)) >= 3
    assert (work / "out" / "street_overlay.png").is_file()


def test_pyproject_lists_every_package():
    """The wheel's packages are listed explicitly (the ``package-dir`` mapping of the top-level ``resources/`` folder
    to ``segstudio.resources`` rules out ``packages.find``): a sub-package missing from the list would be left out of
    the wheel without any error, so the list must name every folder of ``segstudio/`` holding an ``__init__.py``."""
    import tomllib

    setup = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "segstudio").rglob("__init__.py")}
    assert set(setup["packages"]) == found | {"segstudio.resources"}
    assert setup["package-dir"] == {"segstudio": "segstudio", "segstudio.resources": "resources"}
    assert (REPO / "resources" / "models" / f"{DEFAULT}.safetensors").is_file()
    assert not (REPO / "segstudio" / "resources").exists()  # one copy, at the top level (issue 32)
