"""Give every bundled model card the content keys of its training and validation images (issue 30, item 2).

The held-out rule (:mod:`segstudio.engine.heldout`) recognises a model's training and validation images by the
SHA-1 of their bytes and their perceptual key (``training_data.image_sha1`` / ``val_image_sha1`` /
``image_phash`` / ``val_image_phash``). A card without them falls back to its ``training_data.path`` on the
machine it was trained on, which is missing anywhere else. This script reads, for each card in
``resources/models/`` (and ``interactive/``), which dataset it names (the last component of ``training_data.path``, looked up
under ``--shared/datasets``; a card with a ``training_data.datasets`` list instead — the click model — names
several, each read with ``training_data.split``), which splits trained it (``training_data.splits``, default ``["train"]``) and, when
``training_data.val_images`` > 0 and ``val`` did not train it, that ``val`` selected its checkpoint; it checks the
image counts against the card and, where the card already lists SHA-1s, that the files give the same set (so a
wrong folder cannot overwrite a card's record), then writes the four lists atomically. Re-running it is a no-op
when nothing changed.

Usage (repo root, in the venv)::

    python scripts/bundled_card_keys.py [--shared ../shared] [--check]

``--check`` writes nothing and exits 1 when a card lacks keys or they differ from the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segstudio.engine.heldout import image_phash  # noqa: E402
from segstudio.engine.heldout import file_sha1  # noqa: E402
from segstudio.io import atomic_write_bytes  # noqa: E402

MODELS = REPO / "resources" / "models"


def _split_images(root: Path, split: str) -> list[Path]:
    stems = [s.strip() for s in (root / f"{split}.txt").read_text(encoding="utf-8").splitlines() if s.strip()]
    out = []
    for s in stems:
        found = sorted((root / "images").glob(f"{s}.*"))
        if not found:
            raise FileNotFoundError(f"{root}/images/{s}.*: listed in {split}.txt but missing")
        out.append(found[0])
    return out


def card_keys(card: dict, shared: Path) -> dict[str, list[str]]:
    """The four key lists of ``card``'s training and validation images, read from ``shared/datasets``.

    Raises:
        FileNotFoundError: the dataset or one of its images is missing.
        ValueError: the image counts or the card's existing SHA-1s disagree with the files.
    """
    td = card["training_data"]
    if "datasets" in td and "path" not in td:  # a model trained on several datasets (the click model): their splits
        split = td.get("split", "train")
        train = [p for d in td["datasets"] for p in _split_images(shared / "datasets" / Path(d).name, split)]
        val: list[Path] = []
        root = ", ".join(Path(d).name for d in td["datasets"])
        if "images" in td and len(train) != td["images"]:
            raise ValueError(f"{card.get('name')}: {root} give {len(train)} training images, the card says {td['images']}")
        return _keys(card, root, train, val, td)
    root = shared / "datasets" / Path(td["path"]).name
    splits = list(td.get("splits") or ["train"])
    train = [p for sp in splits for p in _split_images(root, sp)]
    val = _split_images(root, "val") if td.get("val_images", 0) and "val" not in splits else []
    if len(train) != td["images"] or len(val) != td.get("val_images", 0):
        raise ValueError(f"{card.get('name')}: {root} gives {len(train)} training / {len(val)} validation images, "
                         f"the card says {td['images']} / {td.get('val_images', 0)}")
    return _keys(card, root, train, val, td)


def _keys(card: dict, root, train: list[Path], val: list[Path], td: dict) -> dict[str, list[str]]:
    keys = {
        "image_sha1": [file_sha1(p) for p in train],
        "val_image_sha1": [file_sha1(p) for p in val],
        "image_phash": [image_phash(p) for p in train],
        "val_image_phash": [image_phash(p) for p in val],
    }
    for f in ("image_sha1", "val_image_sha1"):
        if f in td and sorted(td[f]) != sorted(keys[f]):
            raise ValueError(f"{card.get('name')}: the card's {f} differs from {root}'s files; not overwritten")
    if None in keys["image_phash"] + keys["val_image_phash"]:
        raise ValueError(f"{card.get('name')}: an image of {root} could not be read")
    return keys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a card lacks its keys")
    args = ap.parse_args(argv)
    stale = 0
    for path in sorted([*MODELS.glob("*.json"), *MODELS.glob("interactive/*.json")]):
        card = json.loads(path.read_text(encoding="utf-8"))
        if "training_data" not in card or "architecture" not in card:
            continue
        keys = card_keys(card, args.shared)
        td = card["training_data"]
        if all(td.get(f) == v for f, v in keys.items()):
            print(f"{path.name}: up to date ({len(keys['image_sha1'])} training, {len(keys['val_image_sha1'])} validation images)")
            continue
        stale += 1
        if args.check:
            print(f"{path.name}: keys missing or stale")
            continue
        td.update(keys)
        atomic_write_bytes(path, (json.dumps(card, indent=1) + "\n").encode("utf-8"))
        print(f"{path.name}: wrote keys of {len(keys['image_sha1'])} training and {len(keys['val_image_sha1'])} validation images "
              f"({path.stat().st_size / 1024:.0f} KiB)")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
