"""Which images a model has seen: the honest held-out set of the Metrics dock.

A fine-tune records its images by content in the model card: ``training_data.image_sha1`` for training and
``training_data.val_image_sha1`` for the held-out images that picked the best checkpoint (SHA-1 of the image
file's bytes, :func:`file_sha1`), and the same images' perceptual keys
(``image_phash`` / ``val_image_phash``, :func:`perceptual_key`). An image is *held out* only when neither the
model nor any model it was fine-tuned from trained on it or selected a checkpoint with it.

* **The lineage travels in the card.** A fine-tuned card keeps every ancestor's content keys in
  ``training_data.lineage`` (:func:`lineage_keys`, written by :func:`card_content_keys` when the card is made),
  so the rule needs no file of the parent: a moved folder, another machine or a reinstalled package does not
  cut the chain. The card's ``parent`` path is still followed (:func:`card_lineage`) for cards written before.
* **Near-duplicates count as seen.** A left-right mirrored, re-encoded (JPEG) or resized copy of a training
  image has other bytes but nearly the same perceptual key (Hamming distance at most
  :data:`NEAR_DUPLICATE_MAX_BITS`; crops only up to about 0.5 % of each side, see there); such images take
  the role of the image they copy, and are reported (:class:`ImageRoles`.near_duplicates) so the Metrics dock
  can say how many it excluded.
* **Roles depend on content only**: an image's role is a function of its own bytes and the cards, never of the
  other files in its folder, so adding or replacing a file changes no other image's role.

Cards written before the hashes existed fall back to the old rule (absolute folder + file name, or a dataset
folder's ``train.txt`` stems).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ROLE_TRAIN = "train"
ROLE_VAL = "validation"
ROLE_HELD_OUT = "held-out"

KEY_FIELDS = ("image_sha1", "val_image_sha1", "image_phash", "val_image_phash")
"""The content-key lists of a card's ``training_data`` (and of its ``lineage``)."""

PHASH_THUMB = 64
"""Side (px) of the grayscale thumbnail the perceptual key is computed from."""
PHASH_BLOCK = 16
"""Rows and (even) columns of low DCT frequencies kept: 16 x 16 = 256 coefficients, 255 bits without the DC term."""
PHASH_BITS = PHASH_BLOCK * PHASH_BLOCK - 1
"""Bits of a perceptual key (:func:`perceptual_key`)."""
NEAR_DUPLICATE_MAX_BITS = 12
"""Two images whose perceptual keys differ in at most this many of the :data:`PHASH_BITS` bits are the same
picture. Measured by ``scripts/measure_near_duplicates.py`` (record: ``docs/near_duplicates.json``) on the 468
CamVid train+val frames, consecutive video frames 1 s apart: a mirrored copy differs in 0 bits, a JPEG re-encoded
one (quality 40..95) in at most 6, a resized one (0.25x..2x) in at most 10, mirrored + JPEG 60 + 0.6x in at most 8;
the nearest *other* frame differs in at least 10 (1st percentile 15, median 86), and only 3 frames are within 12
bits of another: 0016E5_04470/04500/04530, taken while the car stood at a red light (near-identical pictures).
The six first-start samples are 88+ bits from every CamVid train+val frame, the ISBI test slices 98+ from its
train+val slices. Crops: a crop of 0.5 % of each side stays within the threshold for 68 % of the frames, 1 % for
2 %: a moving camera's next frame is itself nearly a crop of this one (consecutive frames: 5th percentile 22
bits, a 1 % crop: median 26), so a key tolerant to larger crops would merge different frames."""


# -- perceptual key -----------------------------------------------------------------------------------
def perceptual_key(image: np.ndarray) -> str:
    """Perceptual key of an image, invariant to left-right mirroring, JPEG re-encoding and resizing.

    Method: the DCT perceptual hash (pHash; Zauner, "Implementation and Benchmarking of Perceptual Image Hash
    Functions", 2010: grayscale, shrink, DCT, low frequencies compared with their median), made mirror-symmetric:
    the grayscale thumbnail (:data:`PHASH_THUMB` square, area interpolation, so the aspect ratio and the image
    size drop out) is averaged with its mirror image, which zeroes every odd horizontal DCT frequency; the key
    keeps rows ``0..B-1`` x even columns ``0..2B-2`` (``B`` = :data:`PHASH_BLOCK`) without the DC term, one bit
    per coefficient (above the median or not). A mirrored image gives the identical key; compare keys with
    :func:`hamming` and :data:`NEAR_DUPLICATE_MAX_BITS`.

    Args:
        image: uint8 or uint16 (H, W) grayscale or (H, W, 3|4) RGB[A], H, W >= 1.

    Returns:
        :data:`PHASH_BITS` bits as a 64-character lower-case hex string (most significant bit first).

    Raises:
        ValueError: not a 2-D or 3-D array with 1, 3 or 4 channels, or empty.
    """
    import cv2

    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ValueError(f"perceptual key needs an (H, W) or (H, W, 3|4) image, got shape {a.shape}")
    g = a.astype(np.float32)
    if g.ndim == 3:  # ITU-R BT.601 luma, as cv2.COLOR_RGB2GRAY
        g = g[..., 0] * 0.299 + g[..., 1] * 0.587 + g[..., 2] * 0.114
    g = cv2.resize(np.ascontiguousarray(g), (PHASH_THUMB, PHASH_THUMB), interpolation=cv2.INTER_AREA)
    g = 0.5 * (g + g[:, ::-1])
    coeffs = cv2.dct(g)[:PHASH_BLOCK, 0 : 2 * PHASH_BLOCK : 2].ravel()[1:]
    bits = coeffs > np.median(coeffs)
    return np.packbits(np.concatenate([[False], bits])).tobytes().hex()


def image_phash(path: str | Path) -> str | None:
    """:func:`perceptual_key` of an image file (read with :func:`segstudio.io.read_image`, so EXIF
    orientation is applied), or ``None`` (with a warning) when the file cannot be read as an image."""
    from segstudio.io import read_image

    try:
        return perceptual_key(read_image(path))
    except (OSError, ValueError) as exc:
        log.warning("no perceptual key for %s: %s", path, exc)
        return None


def file_sha1(path: str | Path) -> str:
    """Hex SHA-1 of a file's bytes (the content key of an image in the model card)."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def _key_bytes(keys: Iterable[str]) -> np.ndarray:
    rows = []
    for k in keys:
        try:
            b = bytes.fromhex(k)
        except (TypeError, ValueError):
            continue
        if len(b) == (PHASH_BITS + 1) // 8:
            rows.append(np.frombuffer(b, dtype=np.uint8))
    return np.stack(rows) if rows else np.zeros((0, (PHASH_BITS + 1) // 8), dtype=np.uint8)


def hamming(keys: Iterable[str], key: str) -> np.ndarray:
    """Hamming distances (int, shape (N,)) between ``key`` and each of ``keys`` (hex keys of
    :func:`perceptual_key`; malformed entries of ``keys`` are skipped).

    Raises:
        ValueError: ``key`` is not a key of :func:`perceptual_key`.
    """
    q = _key_bytes([key])
    if not len(q):
        raise ValueError(f"not a perceptual key: {key!r}")
    return np.unpackbits(_key_bytes(keys) ^ q[0], axis=1).sum(1).astype(int)


# -- cards and their lineage ----------------------------------------------------------------------------
def _read_card(weights: str | Path) -> dict | None:
    p = Path(weights).with_suffix(".json")
    try:
        card = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def card_lineage(card: dict, max_depth: int = 32, read_card: Callable[[str], dict | None] = _read_card) -> list[dict]:
    """``[card, parent card, grandparent card, ...]`` following ``card["parent"]`` (a weights path) while the
    parent's ``model.json`` can be read, at most ``max_depth`` cards (a cycle cannot loop forever).

    This is the fallback for cards written before ``training_data.lineage`` existed; a card that carries its
    lineage needs only itself (:func:`lineage_keys`)."""
    chain, cur = [], card
    while cur is not None and len(chain) < max_depth:
        chain.append(cur)
        parent = cur.get("parent")
        cur = read_card(parent) if parent else None
    return chain


def lineage_keys(chain: list[dict]) -> dict[str, list[str]]:
    """The content keys of every training and validation image of the cards in ``chain`` (pure function).

    Merges each card's ``training_data`` lists :data:`KEY_FIELDS` with the ``training_data.lineage`` it
    carries (its ancestors' keys), without duplicates, in first-seen order.

    Args:
        chain: model cards (dicts), e.g. ``[parent card]`` or :func:`card_lineage` of it.

    Returns:
        ``{"image_sha1": [...], "val_image_sha1": [...], "image_phash": [...], "val_image_phash": [...]}``
        (hex strings): what a child card stores as ``training_data.lineage``.
    """
    out: dict[str, dict[str, None]] = {f: {} for f in KEY_FIELDS}
    for card in chain:
        td = card.get("training_data") or {}
        for src in (td, td.get("lineage") or {}):
            for f in KEY_FIELDS:
                for k in src.get(f) or []:
                    if isinstance(k, str):
                        out[f][k] = None
    return {f: list(v) for f, v in out.items()}


def card_content_keys(train_images: list[Path], val_images: list[Path], parent_card: dict | None,
                      read_card: Callable[[str], dict | None] = _read_card) -> dict:
    """The ``training_data`` fields a new card gets besides its SHA-1s: perceptual keys and the lineage.

    Args:
        train_images: image files the new model trains on.
        val_images: image files that select its checkpoint.
        parent_card: the card of the checkpoint it starts from, or ``None`` for a new model.
        read_card: reads an older ancestor's card (only for a parent card without ``lineage``).

    Returns:
        ``{"image_phash": [...], "val_image_phash": [...], "lineage": {...}}`` (``lineage`` only with a
        parent): the parent's own keys and everything it carried (:func:`lineage_keys` of the parent's
        :func:`card_lineage`, so cards written before ``lineage`` existed still hand their chain down; an
        ancestor without any hashes gets its training and validation files keyed here while they are on disk).
        Unreadable images get no perceptual key (their SHA-1 still identifies them).
    """
    out: dict = {
        "image_phash": [k for k in map(image_phash, train_images) if k],
        "val_image_phash": [k for k in map(image_phash, val_images) if k],
    }
    if parent_card is not None:
        chain = card_lineage(parent_card, read_card=read_card)
        lineage = lineage_keys(chain)
        legacy_train, legacy_val = _legacy_files(chain)  # an old ancestor without hashes: key its files while they are here
        for f, files in (("image", legacy_train), ("val_image", legacy_val)):
            lineage[f"{f}_sha1"] += [h for h in map(file_sha1, files) if h not in lineage[f"{f}_sha1"]]
            lineage[f"{f}_phash"] += [k for k in map(image_phash, files) if k and k not in lineage[f"{f}_phash"]]
        out["lineage"] = lineage
    return out


def _split_stems(root: str, split: str) -> list[str]:
    try:
        lines = (Path(root) / f"{split}.txt").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [s.strip() for s in lines if s.strip()]


def _legacy_names(td: dict) -> tuple[str, bool, list[str], list[str]]:
    """``(root, by_file, train, val)`` of a card without content hashes: file names of an app folder
    (``by_file``) or stems of a dataset folder's split lists (``splits``, default train; val.txt when the card
    counts validation images that did not train it)."""
    root = str(Path(td["path"]).resolve())
    if "files" in td:
        return root, True, list(td["files"]), list(td.get("val_files", []))
    splits = list(td.get("splits") or ["train"])
    train = [s for sp in splits for s in _split_stems(root, sp)]
    val = _split_stems(root, "val") if td.get("val_images") and "val" not in splits else []
    return root, False, train, val


def _legacy_keys(chain: list[dict]) -> tuple[set, set, set, set]:
    """(folder, name) train / val pairs and (images folder, stem) train / val pairs of cards without content hashes."""
    trained, stems, val, val_stems = set(), set(), set(), set()
    for card in chain:
        td = card.get("training_data") or {}
        if not td.get("path") or "image_sha1" in td:
            continue
        root, by_file, train_names, val_names = _legacy_names(td)
        if by_file:
            trained.update((root, n) for n in train_names)
            val.update((root, n) for n in val_names)
        else:
            images = str(Path(root) / "images")
            stems.update((images, s) for s in train_names)
            val_stems.update((images, s) for s in val_names)
    return trained, stems, val, val_stems


def _legacy_files(chain: list[dict]) -> tuple[list[Path], list[Path]]:
    """The training and validation image files of the cards without content hashes that exist on this machine."""
    train, val = [], []
    for card in chain:
        td = card.get("training_data") or {}
        if not td.get("path") or "image_sha1" in td:
            continue
        root, by_file, train_names, val_names = _legacy_names(td)
        for names, out in ((train_names, train), (val_names, val)):
            for n in names:
                found = [Path(root) / n] if by_file else sorted((Path(root) / "images").glob(f"{n}.*"))
                out.extend(f for f in found[:1] if f.is_file())
    return train, val


@dataclass
class ImageRoles:
    """Result of :func:`classify_images`.

    Attributes:
        roles: ``{path: role}`` (:data:`ROLE_TRAIN`, :data:`ROLE_VAL` or :data:`ROLE_HELD_OUT`).
        near_duplicates: ``{path: Hamming distance}`` of the images that got their role only from a perceptual
            key (a mirrored, re-encoded or resized copy of a training or validation image), not from their bytes.
    """

    roles: dict[Path, str] = field(default_factory=dict)
    near_duplicates: dict[Path, int] = field(default_factory=dict)


def classify_images(chain: list[dict], paths: Iterable[Path], digest: Callable[[Path], str] | None = None,
                    phash: Callable[[Path], str | None] = image_phash,
                    max_bits: int = NEAR_DUPLICATE_MAX_BITS) -> ImageRoles:
    """Role of each image for the models of ``chain``, by content, with the near-duplicates named.

    An image is :data:`ROLE_TRAIN` when some model of the chain trained on its bytes (SHA-1) or, for legacy
    cards, on its folder + name; else :data:`ROLE_VAL` when one selected a checkpoint on it in those senses.
    Only an image not recognised so is compared by perceptual key: within ``max_bits`` of a training image's key
    it is :data:`ROLE_TRAIN`, else of a validation image's :data:`ROLE_VAL` (named in ``near_duplicates``);
    otherwise :data:`ROLE_HELD_OUT`.
    The keys come from every card of ``chain`` and the ``lineage`` each carries (:func:`lineage_keys`).
    Each image's role depends on its own content only, never on the other files given.

    Args:
        chain: the model's card first, then its ancestors' (:func:`card_lineage`; ``[card]`` suffices for a
            card that carries its lineage).
        paths: image files to classify.
        digest: content key of an image file (default SHA-1 of its bytes), called only when some card
            records hashes.
        phash: perceptual key of an image file (default :func:`image_phash`), called only for an image not
            recognised by its bytes when some card records perceptual keys.
        max_bits: largest Hamming distance of a near-duplicate (default :data:`NEAR_DUPLICATE_MAX_BITS`).

    Returns:
        :class:`ImageRoles`.
    """
    digest = digest or file_sha1
    keys = lineage_keys(chain)
    train_h, val_h = set(keys["image_sha1"]), set(keys["val_image_sha1"])
    train_p, val_p = _key_bytes(keys["image_phash"]), _key_bytes(keys["val_image_phash"])
    trained, stems, val, val_stems = _legacy_keys(chain)
    out = ImageRoles()
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
            out.roles[p] = ROLE_TRAIN
            continue
        if h in val_h or key in val or (key[0], p.stem) in val_stems:
            out.roles[p] = ROLE_VAL
            continue
        out.roles[p] = ROLE_HELD_OUT
        if len(train_p) or len(val_p):
            q = phash(p)
            if q is None:
                continue
            qb = _key_bytes([q])[0]
            for role, ref in ((ROLE_TRAIN, train_p), (ROLE_VAL, val_p)):
                d = np.unpackbits(ref ^ qb, axis=1).sum(1) if len(ref) else np.zeros(0, int)
                if len(d) and int(d.min()) <= max_bits:
                    out.roles[p] = role
                    out.near_duplicates[p] = int(d.min())
                    break
    return out


def image_roles(chain: list[dict], paths: Iterable[Path], digest: Callable[[Path], str] | None = None) -> dict[Path, str]:
    """Role of each image for the models of ``chain`` (:func:`card_lineage`): ``{path: role}`` of
    :func:`classify_images` (which also names the images recognised as near-duplicates).

    Args:
        chain: the model's card first, then its ancestors'.
        paths: image files to classify.
        digest: content key of an image file (default SHA-1 of its bytes), called only when some card of the
            chain records hashes.

    Returns:
        ``{path: role}``: :data:`ROLE_TRAIN` (some model of the chain trained on the content),
        :data:`ROLE_VAL` (not trained on, but used to select a checkpoint) or :data:`ROLE_HELD_OUT` (neither).
    """
    return classify_images(chain, paths, digest).roles


def held_out_images(card: dict, paths: Iterable[Path], read_card: Callable[[str], dict | None] = _read_card) -> list[Path]:
    """The images of ``paths`` that neither training nor checkpoint selection of the model behind ``card``
    (nor of any model it was fine-tuned from) saw, in the order given. See :func:`classify_images`."""
    paths = [Path(p) for p in paths]
    roles = image_roles(card_lineage(card, read_card=read_card), paths)
    return [p for p in paths if roles[p] == ROLE_HELD_OUT]
