"""Which images a model has seen: the honest held-out set of the Metrics dock.

A fine-tune records its images by content in the model card (``training_data.image_sha1`` for training,
``training_data.val_image_sha1`` for the held-out images that picked the best checkpoint; SHA-1 of the image
file's bytes, :func:`segstudio.engine.trainer.file_sha1`). An image is *held out* only when neither the model
nor any model it was fine-tuned from (the card's ``parent`` chain) trained on it or selected a checkpoint with
it. Content keys make the rule independent of where the folder lies: a training image copied elsewhere, or
the same folder on another machine, is still recognised. Cards written before the hashes existed fall back to
the old rule (absolute folder + file name, or a dataset folder's ``train.txt`` stems).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

ROLE_TRAIN = "train"
ROLE_VAL = "validation"
ROLE_HELD_OUT = "held-out"


def _read_card(weights: str | Path) -> dict | None:
    p = Path(weights).with_suffix(".json")
    try:
        card = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def card_lineage(card: dict, max_depth: int = 32, read_card: Callable[[str], dict | None] = _read_card) -> list[dict]:
    """``[card, parent card, grandparent card, ...]`` following ``card["parent"]`` (a weights path) while the
    parent's ``model.json`` can be read, at most ``max_depth`` cards (a cycle cannot loop forever)."""
    chain, cur = [], card
    while cur is not None and len(chain) < max_depth:
        chain.append(cur)
        parent = cur.get("parent")
        cur = read_card(parent) if parent else None
    return chain


def _legacy_keys(chain: list[dict]) -> tuple[set, set, set]:
    """(folder, name) train / val pairs and (images folder, stem) pairs of cards without content hashes."""
    trained, stems, val = set(), set(), set()
    for depth, card in enumerate(chain):
        td = card.get("training_data") or {}
        root = td.get("path")
        if not root or "image_sha1" in td:
            continue
        root = str(Path(root).resolve())
        if "files" in td:
            trained.update((root, n) for n in td["files"])
            val.update((root, n) for n in td.get("val_files", []))
        else:
            try:
                lines = (Path(root) / "train.txt").read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                lines = []
            stems.update((str(Path(root) / "images"), s.strip()) for s in lines if s.strip())
    return trained, stems, val


def image_roles(chain: list[dict], paths: Iterable[Path], digest: Callable[[Path], str] | None = None) -> dict[Path, str]:
    """Role of each image for the models of ``chain`` (:func:`card_lineage`).

    Args:
        chain: the model's card first, then its ancestors'.
        paths: image files to classify.
        digest: content key of an image file (default SHA-1 of its bytes), called only when some card of the
            chain records hashes.

    Returns:
        ``{path: role}``: :data:`ROLE_TRAIN` (some model of the chain trained on the content),
        :data:`ROLE_VAL` (not trained on, but used to select a checkpoint) or :data:`ROLE_HELD_OUT` (neither).
    """
    from segstudio.engine.trainer import file_sha1

    digest = digest or file_sha1
    train_h, val_h = set(), set()
    for card in chain:
        td = card.get("training_data") or {}
        train_h.update(td.get("image_sha1") or [])
        val_h.update(td.get("val_image_sha1") or [])
    trained, stems, val = _legacy_keys(chain)
    roles = {}
    for p in paths:
        p = Path(p)
        h = None
        if train_h or val_h:
            try:
                h = digest(p)
            except OSError as exc:
                log.warning("cannot read %s to tell whether it was trained on: %s", p, exc)
        key = (str(p.parent.resolve()), p.name)
        if h in train_h or key in trained or (key[0], p.stem) in stems:
            roles[p] = ROLE_TRAIN
        elif h in val_h or key in val:
            roles[p] = ROLE_VAL
        else:
            roles[p] = ROLE_HELD_OUT
    return roles


def held_out_images(card: dict, paths: Iterable[Path], read_card: Callable[[str], dict | None] = _read_card) -> list[Path]:
    """The images of ``paths`` that neither training nor checkpoint selection of the model behind ``card``
    (nor of any model it was fine-tuned from) saw, in the order given. See :func:`image_roles`."""
    paths = [Path(p) for p in paths]
    roles = image_roles(card_lineage(card, read_card=read_card), paths)
    return [p for p in paths if roles[p] == ROLE_HELD_OUT]
