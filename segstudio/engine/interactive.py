"""Click-to-segment: click simulation, the NoC protocol, GrabCut driven by clicks, training and an
encode-once inference session for :class:`segstudio.models.clicknet.ClickNet`.

Protocol and training follow RITM (Sofiiuk, Petrov, Konushin, "Reviving Iterative Training with Mask
Guidance for Interactive Segmentation", ICIP 2022, arXiv:2102.06583):

* objects are connected components of one class covering at least 0.5 % of the image
  (:func:`object_masks`);
* a click goes to the interior point of the largest error region, i.e. the false-negative or
  false-positive pixel farthest from the region's boundary (Euclidean distance transform, the image border
  counting as boundary), positive for a false negative, negative for a false positive
  (:func:`next_click`; RITM's ``Clicker`` and the protocol of Xu et al., "Deep Interactive Object
  Selection", CVPR 2016). The first click, with an empty prediction, lands on the object's most interior
  point;
* clicks are encoded as disks of radius 5 px (RITM Sec. 3.1), plus the previous mask (Sec. 3.2);
* NoC@k is the number of clicks until IoU >= k, capped at ``max_clicks`` (20) when never reached
  (:func:`noc`);
* training is iterative (RITM Sec. 3.2, Alg. 1): a few clicks are added from the model's own errors
  without gradient, feeding its previous prediction back, before the step that is back-propagated.

Deviation: RITM's normalized focal loss is replaced by BCE + soft IoU (:func:`click_loss`), and the
ImageNet encoder is kept frozen by default so a CPU can train the decoder in minutes (see the model card).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from segstudio.core.labels import IGNORE_INDEX
from segstudio.data.transforms import IMAGENET_MEAN, IMAGENET_STD, to_model_input
from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, CheckpointError, save_checkpoint
from segstudio.models.clicknet import ClickNet

log = logging.getLogger(__name__)

#: Click disk radius in pixels (RITM Sec. 3.1).
CLICK_RADIUS = 5
#: Smallest object, as a fraction of the image's pixels (the NoC benchmark's rule).
MIN_OBJECT_FRACTION = 0.005
#: Folder and name of the shipped click model.
CLICK_MODEL_DIR = DEFAULT_MODEL_DIR / "interactive"
CLICK_MODEL_NAME = "clicknet_mobilenetv2"


@dataclass(frozen=True)
class Click:
    """One user click: pixel ``(y, x)`` (ints, row/column) and its sign (True = positive, object)."""

    y: int
    x: int
    positive: bool


# ---------------------------------------------------------------------------------------------------------
# objects, clicks, metrics (numpy)
# ---------------------------------------------------------------------------------------------------------
def object_masks(
    labels: np.ndarray, classes: list[int] | None = None, min_fraction: float = MIN_OBJECT_FRACTION
) -> list[tuple[int, np.ndarray]]:
    """The objects of a label map: 8-connected components of each class covering >= ``min_fraction`` of it.

    Args:
        labels: uint8 (H, W) label map; ``IGNORE_INDEX`` pixels belong to no object.
        classes: class ids to take (default: every id present except ``IGNORE_INDEX``).
        min_fraction: smallest component, as a fraction of H·W, in [0, 1].

    Returns:
        ``[(class_id, bool (H, W) mask), ...]``, by class id then component size (largest first).

    Raises:
        ValueError: ``labels`` is not 2-D.
    """
    if labels.ndim != 2:
        raise ValueError(f"expected a (H, W) label map, got shape {labels.shape}")
    min_px = max(1, int(math.ceil(min_fraction * labels.size)))
    ids = [int(c) for c in np.unique(labels) if c != IGNORE_INDEX] if classes is None else [int(c) for c in classes]
    out = []
    for c in ids:
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == c).astype(np.uint8), connectivity=8)
        big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_px]
        big.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
        out.extend((c, comp == i) for i in big)
    return out


def _inner_distance(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of each True pixel to the nearest False pixel or the image border (float32 (H, W))."""
    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def next_click(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> Click | None:
    """The next simulated click (RITM / Xu et al. 2016 protocol): at the interior point of the largest error.

    False negatives ``gt & ~pred`` and false positives ``pred & ~gt`` (outside ``ignore``) are each
    distance-transformed (the image border counts as boundary); the click goes to the pixel with the larger
    distance, positive when it is a false negative. With an empty ``pred`` this is the object's most
    interior point (the first click).

    Args:
        gt, pred: bool (H, W) object masks (ground truth, current prediction).
        ignore: optional bool (H, W) mask of pixels where errors do not count.

    Returns:
        the :class:`Click`, or ``None`` when there is no error left.

    Raises:
        ValueError: shapes differ.
    """
    if gt.shape != pred.shape or (ignore is not None and ignore.shape != gt.shape):
        raise ValueError(f"gt {gt.shape}, pred {pred.shape} and ignore masks must have one shape")
    gt, pred = gt.astype(bool), pred.astype(bool)
    valid = ~ignore.astype(bool) if ignore is not None else np.ones_like(gt)
    fn, fp = gt & ~pred & valid, pred & ~gt & valid
    if not fn.any() and not fp.any():
        return None
    dfn, dfp = _inner_distance(fn), _inner_distance(fp)
    mfn, mfp = float(dfn.max()), float(dfp.max())
    positive = mfn >= mfp
    dist = dfn if positive else dfp
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(int(y), int(x), bool(positive))


def iou(a: np.ndarray, b: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union of two bool (H, W) masks, pixels in ``ignore`` excluded (1.0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    if ignore is not None:
        keep = ~ignore.astype(bool)
        a, b = a & keep, b & keep
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def noc(ious: list[float], threshold: float, max_clicks: int = 20) -> int:
    """Number of clicks to reach ``threshold`` IoU: ``1 + index`` of the first ``ious[i] >= threshold``,
    ``max_clicks`` when none does (the NoC@k of Xu et al. 2016 / RITM). ``ious[i]`` is the IoU after click i+1.

    Raises:
        ValueError: ``max_clicks < 1``.
    """
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks}")
    for i, v in enumerate(ious[:max_clicks]):
        if v >= threshold:
            return i + 1
    return max_clicks


def guidance_maps(clicks: list[Click], shape: tuple[int, int], prev_mask: np.ndarray | None = None,
                  radius: float = CLICK_RADIUS) -> np.ndarray:
    """Model guidance: float32 (3, H, W) = positive-click disks, negative-click disks, previous mask, in {0, 1}.

    A disk holds the pixels within ``radius`` px (Euclidean) of a click (RITM's ``DistMaps(use_disks=True)``).

    Raises:
        ValueError: ``prev_mask`` does not have ``shape``.
    """
    h, w = shape
    g = np.zeros((3, h, w), np.float32)
    r = int(math.ceil(radius))
    for c in clicks:
        y0, y1, x0, x1 = max(c.y - r, 0), min(c.y + r + 1, h), max(c.x - r, 0), min(c.x + r + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        disk = (yy - c.y) ** 2 + (xx - c.x) ** 2 <= radius * radius
        g[0 if c.positive else 1, y0:y1, x0:x1][disk] = 1.0
    if prev_mask is not None:
        if prev_mask.shape != (h, w):
            raise ValueError(f"previous mask {prev_mask.shape} does not match the image {(h, w)}")
        g[2] = prev_mask.astype(np.float32)
    return g


def evaluate_object(predict, gt: np.ndarray, max_clicks: int = 20, ignore: np.ndarray | None = None,
                    stop_iou: float | None = None) -> list[float]:
    """Run the NoC click protocol on one object.

    Args:
        predict: ``predict(clicks: list[Click], prev_mask: bool (H, W) | None) -> bool (H, W)``.
        gt: bool (H, W) object mask.
        max_clicks: clicks to simulate.
        ignore: bool (H, W) pixels that count for neither IoU nor errors.
        stop_iou: stop early once IoU reaches it (the NoC values below it are unaffected).

    Returns:
        IoU after each click (``len <= max_clicks``).
    """
    clicks: list[Click] = []
    pred = np.zeros(gt.shape, bool)
    prev = None
    ious = []
    for _ in range(max_clicks):
        c = next_click(gt, pred, ignore)
        if c is None:  # no error left: the last IoU stands (1.0 with nothing to click at all)
            if not ious:
                ious.append(1.0)
            break
        clicks.append(c)
        pred = predict(clicks, prev)
        prev = pred
        ious.append(iou(pred, gt, ignore))
        if stop_iou is not None and ious[-1] >= stop_iou:
            break
    return ious


# ---------------------------------------------------------------------------------------------------------
# GrabCut driven by clicks (the baseline)
# ---------------------------------------------------------------------------------------------------------
def grabcut_from_clicks(image: np.ndarray, clicks: list[Click], prev_mask: np.ndarray | None = None,
                        radius: int = CLICK_RADIUS, iterations: int = 5, seed: int = 0) -> np.ndarray:
    """GrabCut (Rother et al., SIGGRAPH 2004; :func:`cv2.grabCut`) seeded by clicks.

    Trimap: outside a box around the positive clicks and ``prev_mask`` (padded by half its size, at least
    20 % of the image's longer side) is sure background; inside, ``prev_mask`` is probable foreground and
    the rest probable background — or, with no previous mask, everything inside is probable foreground
    (rectangle initialisation); positive / negative click disks are sure foreground / background.

    Args:
        image: uint8 (H, W, 3) RGB.
        clicks: at least one; with no positive click the result is empty.
        prev_mask: bool (H, W) previous result, or ``None``.

    Returns:
        bool (H, W) foreground.
    """
    h, w = image.shape[:2]
    pos = [c for c in clicks if c.positive]
    if not pos:
        return np.zeros((h, w), bool)
    ys = [c.y for c in pos]
    xs = [c.x for c in pos]
    if prev_mask is not None and prev_mask.any():
        py, px = np.nonzero(prev_mask)
        ys += [int(py.min()), int(py.max())]
        xs += [int(px.min()), int(px.max())]
    y0, y1, x0, x1 = min(ys), max(ys), min(xs), max(xs)
    pad_y = max((y1 - y0) // 2, int(0.2 * max(h, w)))
    pad_x = max((x1 - x0) // 2, int(0.2 * max(h, w)))
    y0, y1, x0, x1 = max(y0 - pad_y, 0), min(y1 + pad_y + 1, h), max(x0 - pad_x, 0), min(x1 + pad_x + 1, w)
    trimap = np.full((h, w), cv2.GC_BGD, np.uint8)
    if prev_mask is not None and prev_mask.any():
        inside = np.where(prev_mask[y0:y1, x0:x1], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    else:
        inside = np.full((y1 - y0, x1 - x0), cv2.GC_PR_FGD)
    trimap[y0:y1, x0:x1] = inside
    g = guidance_maps(clicks, (h, w), radius=radius)
    trimap[g[1] > 0] = cv2.GC_BGD
    trimap[g[0] > 0] = cv2.GC_FGD
    if (trimap == cv2.GC_BGD).any() and ((trimap == cv2.GC_PR_FGD) | (trimap == cv2.GC_PR_BGD)).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(int(seed))
        try:
            cv2.grabCut(np.ascontiguousarray(image[:, :, ::-1]), trimap, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error as exc:  # degenerate colour models (e.g. a flat image): keep the seeds
            log.debug("grabCut failed: %s", exc)
    return (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)


# ---------------------------------------------------------------------------------------------------------
# the model and its inference session
# ---------------------------------------------------------------------------------------------------------
def default_click_model_path() -> Path:
    """Weights of the shipped click model (``resources/models/interactive/clicknet_mobilenetv2.safetensors``)."""
    return CLICK_MODEL_DIR / f"{CLICK_MODEL_NAME}.safetensors"


def load_click_model(path: str | Path | None = None, map_location: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Load a click model (``.safetensors`` + ``.json`` card) in eval mode; default: the shipped one.

    Raises:
        CheckpointError: missing file or card, or weights that do not fit the card's architecture.
    """
    from safetensors.torch import load_file

    path = Path(path) if path is not None else default_click_model_path()
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        raise CheckpointError(f"{path}: click model weights or its card {card_path.name} missing")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if card.get("architecture") != "clicknet":
        raise CheckpointError(f"{path}: not a click model (architecture {card.get('architecture')!r})")
    model = ClickNet(num_classes=1, **{**card.get("model_kwargs", {}), "pretrained": False})
    state = {k: v.float() for k, v in load_file(str(path), device=map_location).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit clicknet {card.get('model_kwargs')}: {exc}") from None
    return model.eval(), card


class ClickSession:
    """Encode an image once, then answer each click set fast (the click-dependent decoder only).

    Args:
        model: a :class:`~segstudio.models.clicknet.ClickNet` (set to eval mode here).
        image: uint8 (H, W, 3) RGB.
        max_side: images whose longer side exceeds it are processed at that size (probabilities are
            resized back), in px.
        device: torch device string.

    Attributes:
        encoder_runs: how many times the image encoder ran (1 after construction).
        shape: (H, W) of ``image``.

    Raises:
        ValueError: not a uint8 RGB image.
    """

    def __init__(self, model: torch.nn.Module, image: np.ndarray, max_side: int = 1024, device: str = "cpu") -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
        self.model = model.eval()
        self.device = device
        self.shape = image.shape[:2]
        h, w = self.shape
        self.scale = min(1.0, max_side / max(h, w))
        self.work_shape = (max(1, round(h * self.scale)), max(1, round(w * self.scale)))
        if self.scale < 1.0:
            image = cv2.resize(image, self.work_shape[::-1], interpolation=cv2.INTER_AREA)
        self.encoder_runs = 0
        x = to_model_input(image, IMAGENET_MEAN, IMAGENET_STD)[None].to(device)
        with torch.inference_mode():
            self.enc = model.encode_image(x)
        self.encoder_runs += 1

    def probabilities(self, clicks: list[Click], prev_mask: np.ndarray | None = None) -> np.ndarray:
        """Object probability float32 (H, W) in [0, 1] for ``clicks`` (image pixels) and an optional bool
        (H, W) previous mask.

        Raises:
            ValueError: no click, or ``prev_mask`` of the wrong shape.
        """
        if not clicks:
            raise ValueError("at least one click is needed")
        s = self.scale
        hw = self.work_shape
        cl = [Click(min(int(c.y * s), hw[0] - 1), min(int(c.x * s), hw[1] - 1), c.positive) for c in clicks]
        prev = None
        if prev_mask is not None:
            if prev_mask.shape != self.shape:
                raise ValueError(f"previous mask {prev_mask.shape} does not match the image {self.shape}")
            prev = prev_mask if s == 1.0 else cv2.resize(prev_mask.astype(np.uint8), hw[::-1], interpolation=cv2.INTER_NEAREST)
        g = torch.from_numpy(guidance_maps(cl, hw, prev))[None].to(self.device)
        with torch.inference_mode():
            prob = torch.sigmoid(self.model.decode_clicks(self.enc, g))[0, 0].float().cpu().numpy()
        if s < 1.0:
            prob = cv2.resize(prob, self.shape[::-1], interpolation=cv2.INTER_LINEAR)
        return prob

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None = None, threshold: float = 0.5) -> np.ndarray:
        """bool (H, W) object mask: :meth:`probabilities` > ``threshold``."""
        return self.probabilities(clicks, prev_mask) > threshold


# ---------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------
@dataclass
class ClickTrainConfig:
    """Training settings (RITM-style iterative click simulation on object crops).

    Attributes:
        datasets: dataset folders (``../shared`` layout) to take objects from.
        split: split list to read.
        crop: square crop side, px.
        batch_size: crops per step.
        minutes: wall-clock training budget (the LR follows a cosine over it).
        max_steps: stop after this many steps as well (0: no limit).
        lr: AdamW learning rate of the trained parts.
        train_encoder: also train the encoder's last two stages (10x lower LR); False = frozen encoder.
        max_iter_clicks: up to this many extra clicks simulated from the model's own errors per step.
        out: folder for ``model.safetensors`` + ``model.json`` (written every ``save_every`` steps and at the end).
        seed: RNG seed.
    """

    datasets: list[str] = field(default_factory=list)
    split: str = "train"
    crop: int = 224
    batch_size: int = 8
    minutes: float = 20.0
    max_steps: int = 0
    lr: float = 1e-3
    train_encoder: bool = False
    max_iter_clicks: int = 3
    out: str = "runs/clicknet"
    save_every: int = 100
    seed: int = 0
    width: int = 96


class ObjectCrops:
    """Random crops around objects of dataset folders, for click training.

    Every image and label map is read once into memory; objects are :func:`object_masks` of each image
    (every class, >= 0.5 % of the image). A sample picks a dataset uniformly, then an object uniformly,
    rescales by a random factor in [0.75, 1.25] and cuts a ``crop``-px square around a random point of the
    object's bounding box.

    :meth:`sample` returns uint8 (crop, crop, 3) RGB, bool object mask, bool ignore mask.
    """

    def __init__(self, roots: list[str | Path], split: str = "train", crop: int = 224, rng: random.Random | None = None) -> None:
        from segstudio.io.datasets import find_samples
        from segstudio.io.images import read_image
        from segstudio.io.labels import read_index_png

        self.crop = crop
        self.rng = rng or random.Random(0)
        self.sets: list[list[tuple[np.ndarray, np.ndarray, list]]] = []
        for root in roots:
            samples, _ = find_samples(root, split)
            items = []
            for s in samples:
                image, labels = read_image(s.image), read_index_png(s.mask)
                boxes = []
                for c, m in object_masks(labels):
                    ys, xs = np.nonzero(m)
                    boxes.append((c, int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())))
                if boxes:
                    items.append((image, labels, boxes))
            log.info("%s (%s): %d images, %d objects", root, split, len(items), sum(len(b) for _, _, b in items))
            if items:
                self.sets.append(items)
        if not self.sets:
            raise ValueError(f"no objects found in {roots} ({split})")

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self.rng
        for _ in range(20):
            image, labels, boxes = rng.choice(rng.choice(self.sets))
            c, y0, y1, x0, x1 = rng.choice(boxes)
            s = rng.uniform(0.75, 1.25)
            cy, cx = rng.randint(y0, y1), rng.randint(x0, x1)
            half = self.crop / (2 * s)
            h, w = labels.shape
            ya, xa = int(round(cy - half)), int(round(cx - half))
            size = int(round(2 * half))
            # crop window in source px, padded with ignore outside the image
            ys0, xs0, ys1, xs1 = max(ya, 0), max(xa, 0), min(ya + size, h), min(xa + size, w)
            img = np.zeros((size, size, 3), np.uint8)
            lab = np.full((size, size), IGNORE_INDEX, np.uint8)
            img[ys0 - ya : ys1 - ya, xs0 - xa : xs1 - xa] = image[ys0:ys1, xs0:xs1]
            lab[ys0 - ya : ys1 - ya, xs0 - xa : xs1 - xa] = labels[ys0:ys1, xs0:xs1]
            # the object = the component of class c under (cy, cx) in the crop... take the crop's component
            n, comp = cv2.connectedComponents((lab == c).astype(np.uint8), connectivity=8)
            k = comp[cy - ya, cx - xa] if labels[cy, cx] == c else 0
            if k == 0:
                counts = np.bincount(comp.ravel(), minlength=n)
                counts[0] = 0
                if counts.max() < 0.002 * size * size:
                    continue
                k = int(np.argmax(counts))
            obj = comp == k
            if rng.random() < 0.5:
                img, lab, obj = img[:, ::-1], lab[:, ::-1], obj[:, ::-1]
            img = cv2.resize(np.ascontiguousarray(img), (self.crop, self.crop), interpolation=cv2.INTER_LINEAR)
            obj = cv2.resize(obj.astype(np.uint8), (self.crop, self.crop), interpolation=cv2.INTER_NEAREST).astype(bool)
            ign = cv2.resize((lab == IGNORE_INDEX).astype(np.uint8), (self.crop, self.crop), interpolation=cv2.INTER_NEAREST).astype(bool)
            if obj.sum() >= 20:
                return img, obj, ign
        raise RuntimeError("could not sample an object crop in 20 tries")


def click_loss(logits: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """BCE + (1 - soft IoU) over valid pixels: logits, gt (0/1) and valid (0/1) float (N, 1, H, W) → scalar."""
    bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
    bce = (bce * valid).sum() / valid.sum().clamp_min(1.0)
    p = torch.sigmoid(logits) * valid
    inter = (p * gt).sum((1, 2, 3))
    union = (p + gt * valid - p * gt).sum((1, 2, 3)).clamp_min(1.0)
    return bce + (1 - inter / union).mean()


def _simulate_clicks(gts: np.ndarray, preds: np.ndarray, igns: np.ndarray, clicks: list[list[Click]]) -> None:
    for i in range(len(gts)):
        c = next_click(gts[i], preds[i], igns[i])
        if c is not None:
            clicks[i].append(c)


def train_click_model(cfg: ClickTrainConfig, progress=None) -> dict:
    """Train ClickNet by RITM-style iterative click simulation; writes ``cfg.out/model.{safetensors,json}``.

    Each step: a batch of object crops (:class:`ObjectCrops`); first click at each object's most interior
    point (:func:`next_click` on an empty prediction) or, half of the time, at a random object pixel at least
    0.3 × the maximum distance from its border (RITM samples initial clicks at random too); with
    probability 0.3 one more negative click in the background; then 0..``max_iter_clicks`` clicks from the model's own errors with its previous mask fed
    back (no gradient; RITM Alg. 1); then one gradient step of :func:`click_loss` on the last click set.

    Args:
        cfg: the settings.
        progress: optional ``progress(step, loss, elapsed_s)`` callback.

    Returns:
        the training summary also written into the card (steps, minutes, final loss average).
    """
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    data = ObjectCrops(cfg.datasets, cfg.split, cfg.crop, rng)
    model = ClickNet(num_classes=1, pretrained=True, width=cfg.width)
    encoder_pretrained = bool(model.encoder.pretrained)
    enc_params = list(model.encoder.parameters())
    for p in enc_params:
        p.requires_grad_(False)
    groups = [{"params": [p for n, p in model.named_parameters() if not n.startswith("encoder.")], "lr": cfg.lr}]
    if cfg.train_encoder:
        late = [p for st in model.encoder.stages[3:] for p in st.parameters()]
        for p in late:
            p.requires_grad_(True)
        groups.append({"params": late, "lr": cfg.lr / 10})
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    t0, step, losses = time.monotonic(), 0, []
    budget = cfg.minutes * 60.0

    def card(summary: dict) -> dict:
        return {
            "architecture": "clicknet",
            "name": CLICK_MODEL_NAME,
            "model_kwargs": {"encoder": "mobilenet_v2", "width": cfg.width},
            "classes": [{"id": 0, "name": "object", "color": [255, 255, 0]}],
            "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "input": "RGB uint8 / 255"},
            "encoder_pretrained": encoder_pretrained,
            "guidance": {"channels": ["positive disks", "negative disks", "previous mask"], "click_radius_px": CLICK_RADIUS},
            "training_data": {"datasets": [str(d) for d in cfg.datasets], "split": cfg.split},
            "training": {**{k: v for k, v in vars(cfg).items() if k != "datasets"}, **summary},
        }

    def save(summary: dict) -> None:
        save_checkpoint(out, model, card(summary))

    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= budget or (cfg.max_steps and step >= cfg.max_steps):
            break
        frac = min(elapsed / budget, 1.0)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        batch = [data.sample() for _ in range(cfg.batch_size)]
        imgs = np.stack([b[0] for b in batch])
        gts = np.stack([b[1] for b in batch])
        igns = np.stack([b[2] for b in batch])
        x = (torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255 - mean) / std
        model.train()
        model.encoder.eval()  # frozen BN statistics
        clicks: list[list[Click]] = [[] for _ in batch]
        _simulate_clicks(gts, np.zeros_like(gts), igns, clicks)
        for i in range(len(batch)):  # users do not hit the exact centre: half the first clicks are jittered
            if clicks[i] and rng.random() < 0.5:
                d = _inner_distance(gts[i] & ~igns[i])
                ys, xs = np.nonzero(d >= 0.3 * d.max())
                j = rng.randrange(len(ys))
                clicks[i][0] = Click(int(ys[j]), int(xs[j]), True)
        for i in range(len(batch)):
            if rng.random() < 0.3:  # an extra negative click in the background
                bg = ~gts[i] & ~igns[i]
                ys, xs = np.nonzero(bg)
                if len(ys):
                    j = rng.randrange(len(ys))
                    clicks[i].append(Click(int(ys[j]), int(xs[j]), False))
        prev = np.zeros_like(gts)
        with torch.set_grad_enabled(cfg.train_encoder):
            f = model.encoder(x)  # crops are multiples of 16: no padding
        enc = model.project(f, x.shape[-2:])
        n_iter = rng.randint(0, cfg.max_iter_clicks)
        if n_iter:
            model.eval()
            with torch.no_grad():
                enc_d = {"feats": [f.detach() for f in enc["feats"]], "size": enc["size"]}
                for _ in range(n_iter):
                    g = torch.from_numpy(np.stack([guidance_maps(c, gts.shape[1:], p) for c, p in zip(clicks, prev)]))
                    prev = (model.decode_clicks(enc_d, g)[:, 0] > 0).numpy()
                    _simulate_clicks(gts, prev, igns, clicks)
            model.train()
            model.encoder.eval()
        g = torch.from_numpy(np.stack([guidance_maps(c, gts.shape[1:], p) for c, p in zip(clicks, prev)]))
        logits = model.decode_clicks(enc, g)
        gt_t = torch.from_numpy(gts)[:, None].float()
        valid = torch.from_numpy(~igns)[:, None].float()
        loss = click_loss(logits, gt_t, valid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item())
        if progress is not None:
            progress(step, losses[-1], time.monotonic() - t0)
        if step % 20 == 0:
            log.info("step %d loss %.4f (avg20 %.4f) %.1f min", step, losses[-1], np.mean(losses[-20:]), (time.monotonic() - t0) / 60)
        if step % cfg.save_every == 0:
            save({"steps": step, "train_minutes": round((time.monotonic() - t0) / 60, 2), "loss_last100": float(np.mean(losses[-100:]))})
    summary = {"steps": step, "train_minutes": round((time.monotonic() - t0) / 60, 2),
               "loss_last100": float(np.mean(losses[-100:])) if losses else None}
    save(summary)
    return summary
