"""A class-agnostic object set for click training, from every dataset folder in ``../shared`` (issue 34, item 1).

Objects of one labelled image (:func:`image_objects`) are

* the connected components (8-connected, >= 0.5 % of the image) of every class — what the NoC benchmark
  measures (:func:`~segstudio.engine.click.protocol.object_masks`), and
* **unions of adjacent parts** (:func:`part_unions`): in a dataset with a class named ``background`` and at least
  two other classes (car parts: 18 part types; JSRT: lung, heart, clavicle), each 8-connected component of
  "not background" that spans two or more classes is one more object — the parts of a car make the whole car.

:class:`ObjectBank` reads the **train** split of each dataset (val/test are never opened: they are held out for
measuring), keeps every image in memory (longer side at most ``max_side`` px) with its objects, and samples
training crops: a domain uniformly, then one of its objects (in a domain with part unions, a whole object -- a union --
as often as a part, :meth:`ObjectBank.sample`), cut out at either the image's own scale
or a scale that gives the object a random share of the crop; with probability ``copy_paste`` the object is instead
pasted onto a crop of another image (any domain) at a random scale and position, so that shape and boundary matter
more than the domain (Ghiasi et al., "Simple Copy-Paste is a Strong Data Augmentation Method for Instance
Segmentation", CVPR 2021; RITM trains on tens of thousands of varied objects for the same reason, Sofiiuk et al.,
ICIP 2022).

numpy and OpenCV only (no torch): the training loop in :mod:`segstudio.engine.click.train` turns samples into
tensors.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segstudio.core.labels import IGNORE_INDEX
from segstudio.engine.click.protocol import MIN_OBJECT_FRACTION, object_masks

log = logging.getLogger(__name__)

#: The dataset folders under ``../shared/datasets`` that train the class-agnostic click model (train splits only).
DOMAINS = ("camvid", "isbi2012_membrane", "drive", "crackforest", "jsrt_scr", "car_parts")
#: Class id given to a union of adjacent parts (no single class).
UNION_CLASS = -1


def part_unions(labels: np.ndarray, part_ids: list[int] | set[int], min_fraction: float = MIN_OBJECT_FRACTION) -> list[np.ndarray]:
    """Unions of adjacent parts: 8-connected components of ``labels ∈ part_ids`` that contain >= 2 classes.

    Args:
        labels: uint8 (H, W) label map (``IGNORE_INDEX`` is never a part).
        part_ids: class ids that are parts of a larger object (e.g. every class but background).
        min_fraction: smallest union, as a fraction of H·W.

    Returns:
        bool (H, W) masks, largest first; a component made of one class only is not returned (it is already an
        object of that class).

    Raises:
        ValueError: ``labels`` is not 2-D.
    """
    if labels.ndim != 2:
        raise ValueError(f"expected a (H, W) label map, got shape {labels.shape}")
    ids = [int(c) for c in part_ids if int(c) != IGNORE_INDEX]
    if len(ids) < 2:
        return []
    fg = np.isin(labels, ids)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    min_px = max(1, int(math.ceil(min_fraction * labels.size)))
    out = []
    for i in sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA]):
        if stats[i, cv2.CC_STAT_AREA] < min_px:
            continue
        m = comp == i
        if len(np.unique(labels[m])) >= 2:
            out.append(m)
    return out


def union_part_ids(class_names: list[str]) -> list[int]:
    """The class ids whose adjacent components form larger objects: every class but ``background`` when the
    dataset has a class of that name (case-insensitive) and at least two others; otherwise none (``[]``)."""
    names = [n.strip().lower() for n in class_names]
    if "background" not in names or len(names) < 3:
        return []
    return [i for i, n in enumerate(names) if n != "background"]


def image_objects(labels: np.ndarray, part_ids: list[int] | None = None,
                  min_fraction: float = MIN_OBJECT_FRACTION) -> list[tuple[int, np.ndarray]]:
    """Every training object of one label map: per-class components, then unions of adjacent parts.

    Args:
        labels: uint8 (H, W) label map.
        part_ids: classes whose adjacent components are also joined (:func:`union_part_ids`); ``None``/``[]``: none.
        min_fraction: smallest object, as a fraction of H·W.

    Returns:
        ``[(class_id, bool (H, W) mask), ...]``; unions carry :data:`UNION_CLASS`.

    Raises:
        ValueError: ``labels`` is not 2-D.
    """
    out = object_masks(labels, min_fraction=min_fraction)
    if part_ids:
        out += [(UNION_CLASS, m) for m in part_unions(labels, part_ids, min_fraction)]
    return out


@dataclass(frozen=True)
class ObjectRecord:
    """One object of the bank: image index within its domain, class id (:data:`UNION_CLASS` for unions), bounding
    box ``(y0, y1, x0, x1)`` (inclusive) in the stored image, the bool mask of that box, and ``in_union``: the
    object is a part of a larger object of the bank (a component of a part class inside a union), so one click on
    it alone does not say whether the part or the whole object is meant."""

    image: int
    cls: int
    box: tuple[int, int, int, int]
    mask: np.ndarray
    in_union: bool = False


class ObjectBank:
    """Objects of the train splits of several dataset folders, and training crops sampled from them.

    Args:
        roots: dataset folders (``images/``, ``masks/``, ``<split>.txt``, ``classes.json``).
        split: the split list to read; only this split is ever opened (default ``train``).
        max_side: images (and masks, nearest) are downscaled so their longer side is at most this, px.
        rng: random source (default ``random.Random(0)``).
        min_fraction: smallest object, as a fraction of the image.

    Attributes:
        domains: dataset names (folder names) with at least one object.
        images, labels: per domain, the uint8 (H, W, 3) RGB images and uint8 (H, W) label maps.
        objects: per domain, the :class:`ObjectRecord` list.
        unions, singles: per domain, the indices into ``objects`` of the part unions and of the other objects.
        files: per domain, the image files read (for the model card's content keys).

    Raises:
        ValueError: no object in any of ``roots``.
        FileNotFoundError: a dataset folder lacks the split list, an image or a mask (from ``find_samples``).
    """

    def __init__(self, roots: list[str | Path], split: str = "train", max_side: int = 640,
                 rng: random.Random | None = None, min_fraction: float = MIN_OBJECT_FRACTION) -> None:
        from segstudio.io.datasets import find_samples
        from segstudio.io.images import read_image
        from segstudio.io.labels import read_index_png

        self.rng = rng or random.Random(0)
        self.split = split
        self.domains: list[str] = []
        self.images: list[list[np.ndarray]] = []
        self.labels: list[list[np.ndarray]] = []
        self.objects: list[list[ObjectRecord]] = []
        self.files: list[list[Path]] = []
        for root in roots:
            samples, classes = find_samples(root, split)
            parts = union_part_ids(list(classes.names))
            imgs, labs, objs, files = [], [], [], []
            for s in samples:
                image, labels = read_image(s.image), read_index_png(s.mask)
                h, w = labels.shape
                f = min(1.0, max_side / max(h, w))
                if f < 1.0:
                    size = (max(1, round(w * f)), max(1, round(h * f)))
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                    labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
                k = len(imgs)
                found = image_objects(labels, parts, min_fraction)
                unions = [m for c, m in found if c == UNION_CLASS]
                for c, m in found:
                    ys, xs = np.nonzero(m)
                    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
                    inside = c != UNION_CLASS and c in parts and any(u[ys[0], xs[0]] for u in unions)
                    objs.append(ObjectRecord(k, int(c), (y0, y1, x0, x1), m[y0:y1 + 1, x0:x1 + 1].copy(), inside))
                imgs.append(image)
                labs.append(labels)
                files.append(Path(s.image))
            n_union = sum(o.cls == UNION_CLASS for o in objs)
            log.info("%s (%s): %d images, %d objects (%d part unions)", root, split, len(imgs), len(objs), n_union)
            if objs:
                self.domains.append(Path(root).name)
                self.images.append(imgs)
                self.labels.append(labs)
                self.objects.append(objs)
                self.files.append(files)
        self.unions = [[i for i, o in enumerate(ob) if o.cls == UNION_CLASS] for ob in self.objects]
        self.singles = [[i for i, o in enumerate(ob) if o.cls != UNION_CLASS] for ob in self.objects]
        if not self.domains:
            raise ValueError(f"no objects found in {[str(r) for r in roots]} ({split})")

    @classmethod
    def from_shared(cls, datasets_dir: str | Path, domains: tuple[str, ...] | list[str] = DOMAINS, **kw) -> ObjectBank:
        """The bank of the named ``domains`` under ``datasets_dir`` (``../shared/datasets``); a missing domain folder
        is skipped with a warning (``ValueError`` if none is left)."""
        datasets_dir = Path(datasets_dir)
        roots = []
        for d in domains:
            if (datasets_dir / d).is_dir():
                roots.append(datasets_dir / d)
            else:
                log.warning("%s: no such dataset folder, skipped", datasets_dir / d)
        if not roots:
            raise ValueError(f"none of {list(domains)} is under {datasets_dir}")
        return cls(roots, **kw)

    def __len__(self) -> int:
        return sum(len(o) for o in self.objects)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per domain: ``{"images": n, "objects": n, "part_unions": n, "parts_in_unions": n}``."""
        return {d: {"images": len(im), "objects": len(ob), "part_unions": sum(o.cls == UNION_CLASS for o in ob),
                    "parts_in_unions": sum(o.in_union for o in ob)}
                for d, im, ob in zip(self.domains, self.images, self.objects)}

    # -- sampling ----------------------------------------------------------------------------------------------
    def sample(self, crop: int = 224, copy_paste: float = 0.0, union_share: float | None = None,
               whole_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One training crop: a domain uniformly, then one of its objects.

        Args:
            crop: side of the square crop, px.
            copy_paste: probability that the object is pasted onto another image (:meth:`paste_sample`)
                instead of cut from its own (:meth:`crop_sample`).
            union_share: in a domain with part unions, the probability that the object is a union (a whole object,
                drawn uniformly among the unions) rather than a part or other component (drawn uniformly among
                those); ``None``: every object of the domain equally likely. Car parts has about ten parts per car
                and one union, so drawing uniformly teaches a click inside a door to mean the door about nine times
                in ten; ``0.5`` makes "the whole car" as likely a target of a first click as "this part".
            whole_only: a part inside a larger object (``in_union``) is only ever pasted onto another image
                (:meth:`paste_sample`, where it stands alone), never cut from its own image, where the one click on
                it would equally ask for the whole object. For the steps that train the answer to a lone first
                click: that click then means the whole object, and a part takes one more (negative) click, as on
                the whole-object datasets click models are trained on (RITM: COCO + LVIS).

        Returns:
            ``(image uint8 (crop, crop, 3) RGB, object bool (crop, crop), ignore bool (crop, crop))``.

        Raises:
            RuntimeError: no usable crop in 20 tries (objects that vanish at the drawn scale).
        """
        rng = self.rng
        for _ in range(20):
            d = rng.randrange(len(self.domains))
            if union_share is not None and self.unions[d] and self.singles[d]:
                pool = self.unions[d] if rng.random() < union_share else self.singles[d]
                rec = self.objects[d][rng.choice(pool)]
            else:
                rec = rng.choice(self.objects[d])
            paste = rng.random() < copy_paste or (whole_only and rec.in_union)
            out = self.paste_sample(d, rec, crop) if paste else self.crop_sample(d, rec, crop)
            if out is not None:
                if rng.random() < 0.5:
                    out = tuple(np.ascontiguousarray(a[:, ::-1]) for a in out)
                return out
        raise RuntimeError("could not sample an object crop in 20 tries")

    def crop_sample(self, d: int, rec: ObjectRecord, crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The object ``rec`` of domain ``d`` cut from its own image: half the time at the image's scale (× 0.75–1.25,
        as the benchmark sees it), half the time scaled so its box's longer side is 25–90 % of ``crop``; the crop
        window is centred on a random pixel of the box. Pixels outside the image are ignore. ``None`` when fewer
        than 20 object pixels land in the crop."""
        rng = self.rng
        image, labels = self.images[d][rec.image], self.labels[d][rec.image]
        y0, y1, x0, x1 = rec.box
        ext = max(y1 - y0 + 1, x1 - x0 + 1)
        if rng.random() < 0.5:
            s = rng.uniform(0.75, 1.25)
        else:
            s = min(max(rng.uniform(0.25, 0.9) * crop / ext, 0.2), 4.0)
        size = max(8, int(round(crop / s)))
        cy, cx = rng.randint(y0, y1), rng.randint(x0, x1)
        ya, xa = cy - size // 2, cx - size // 2
        h, w = labels.shape
        full = np.zeros((h, w), bool)
        full[y0:y1 + 1, x0:x1 + 1] = rec.mask
        img = np.zeros((size, size, 3), np.uint8)
        obj = np.zeros((size, size), bool)
        ign = np.ones((size, size), bool)
        ys0, xs0, ys1, xs1 = max(ya, 0), max(xa, 0), min(ya + size, h), min(xa + size, w)
        dst = (slice(ys0 - ya, ys1 - ya), slice(xs0 - xa, xs1 - xa))
        img[dst] = image[ys0:ys1, xs0:xs1]
        obj[dst] = full[ys0:ys1, xs0:xs1]
        ign[dst] = labels[ys0:ys1, xs0:xs1] == IGNORE_INDEX
        img = cv2.resize(img, (crop, crop), interpolation=cv2.INTER_AREA if size > crop else cv2.INTER_LINEAR)
        obj = cv2.resize(obj.astype(np.uint8), (crop, crop), interpolation=cv2.INTER_NEAREST).astype(bool)
        ign = cv2.resize(ign.astype(np.uint8), (crop, crop), interpolation=cv2.INTER_NEAREST).astype(bool)
        obj &= ~ign
        return (img, obj, ign) if obj.sum() >= 20 else None

    def paste_sample(self, d: int, rec: ObjectRecord, crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Copy-paste: the object ``rec`` of domain ``d`` (its pixels under its mask) scaled so its box's longer
        side is 20–80 % of ``crop`` and pasted at a random position onto a random ``crop``-px window (at the
        image's scale × 0.75–1.25) of a random image of a random domain. The target is the pasted mask; nothing is
        ignored except padding of a background image smaller than the window. ``None`` when the scaled object has
        fewer than 20 pixels."""
        rng = self.rng
        y0, y1, x0, x1 = rec.box
        src = self.images[d][rec.image][y0:y1 + 1, x0:x1 + 1]
        bh, bw = rec.mask.shape
        f = rng.uniform(0.2, 0.8) * crop / max(bh, bw)
        oh, ow = max(1, min(crop, round(bh * f))), max(1, min(crop, round(bw * f)))
        patch = cv2.resize(src, (ow, oh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        pmask = cv2.resize(rec.mask.astype(np.uint8), (ow, oh), interpolation=cv2.INTER_NEAREST).astype(bool)
        if pmask.sum() < 20:
            return None
        # the background window
        bd = rng.randrange(len(self.domains))
        bimg = self.images[bd][rng.randrange(len(self.images[bd]))]
        s = rng.uniform(0.75, 1.25)
        size = max(8, int(round(crop / s)))
        h, w = bimg.shape[:2]
        ya, xa = rng.randint(min(0, h - size), max(0, h - size)), rng.randint(min(0, w - size), max(0, w - size))
        img = np.zeros((size, size, 3), np.uint8)
        ign = np.ones((size, size), bool)
        ys0, xs0, ys1, xs1 = max(ya, 0), max(xa, 0), min(ya + size, h), min(xa + size, w)
        img[ys0 - ya:ys1 - ya, xs0 - xa:xs1 - xa] = bimg[ys0:ys1, xs0:xs1]
        ign[ys0 - ya:ys1 - ya, xs0 - xa:xs1 - xa] = False
        img = cv2.resize(img, (crop, crop), interpolation=cv2.INTER_AREA if size > crop else cv2.INTER_LINEAR)
        ign = cv2.resize(ign.astype(np.uint8), (crop, crop), interpolation=cv2.INTER_NEAREST).astype(bool)
        py, px = rng.randint(0, crop - oh), rng.randint(0, crop - ow)
        obj = np.zeros((crop, crop), bool)
        obj[py:py + oh, px:px + ow] = pmask
        img[obj] = patch[pmask]
        ign &= ~obj
        return img, obj, ign
