"""Small builders shared by the engine and CLI tests (not a test module)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core import ClassSpec
from segstudio.io import read_index_png, save_labels

TINY_UNET = {"depth": 2, "base_channels": 4}
"""A U-Net small enough to build, train and run in milliseconds on a CPU."""


def camvid_stems(camvid: Path, split: str, n: int) -> list[str]:
    return (camvid / f"{split}.txt").read_text().split()[:n]


def load_small(camvid: Path, stem: str, size: tuple[int, int] = (120, 90)) -> tuple[np.ndarray, np.ndarray]:
    """A CamVid image and mask downscaled to ``size`` = (W, H): bilinear image, nearest mask."""
    with Image.open(camvid / "images" / f"{stem}.png") as im:
        image = np.asarray(im.convert("RGB").resize(size, Image.BILINEAR))
    mask = Image.fromarray(read_index_png(camvid / "masks" / f"{stem}.png")).resize(size, Image.NEAREST)
    return np.ascontiguousarray(image), np.asarray(mask)


def make_dataset_folder(root: Path, camvid: Path, splits: dict[str, list[str]], size=(120, 90)) -> Path:
    """A dataset-layout folder (images/, masks/, <split>.txt, classes.json) of downscaled CamVid pairs."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shutil.copy(camvid / "classes.json", root / "classes.json")
    for split, stems in splits.items():
        for stem in stems:
            image, mask = load_small(camvid, stem, size)
            Image.fromarray(image).save(root / "images" / f"{stem}.png")
            Image.fromarray(mask, mode="L").save(root / "masks" / f"{stem}.png")
        (root / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return root


def make_app_folder(
    root: Path, camvid: Path, stems: list[str], classes: ClassSpec | None = None, size=(120, 90)
) -> Path:
    """An image folder with labels/ saved by :func:`save_labels`.

    With ``classes`` of K < 11 classes, CamVid ids are folded into K classes (``id % K``), ignore kept.
    """
    root.mkdir(parents=True)
    for stem in stems:
        image, mask = load_small(camvid, stem, size)
        Image.fromarray(image).save(root / f"{stem}.png")
        if classes is None:
            cs = ClassSpec.from_json(__import__("json").loads((camvid / "classes.json").read_text()))
        else:
            cs = classes
            mask = np.where(mask == 255, 255, mask % cs.num_classes).astype(np.uint8)
        save_labels(root / f"{stem}.png", mask, cs)
    return root


def load_script(name: str):
    """Import ``scripts/<name>.py`` (not a package) as a module, for testing its functions."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"script_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def small_camvid_folder(dst: Path, camvid: Path, n: int, size: tuple[int, int] = (240, 180)) -> Path:
    """``dst`` holding the first ``n`` CamVid val frames resized to ``size`` (W, H) as ``f0.png, f1.png, ...`` (an
    image folder for the GUI tests whose model work must stay short on a CPU)."""
    for i, stem in enumerate(camvid_stems(camvid, "val", n)):
        Image.open(camvid / "images" / f"{stem}.png").convert("RGB").resize(size, Image.BILINEAR).save(dst / f"f{i}.png")
    return dst
