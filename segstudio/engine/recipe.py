"""The fine-tune recipe: a training plan derived from the data, the model, the device and a time budget.

Pure functions (numpy only, no torch state, no I/O) so each choice is testable on its own; the
:class:`~segstudio.engine.trainer.Trainer` applies the plan and measures the step time. The rules follow
from the *data* (image size, class pixel frequencies, thickness of the labelled structures), the device and
the budget, never from a particular data set; the measurements that justify them are in
``docs/labelling-loop.md`` ("The fine-tune recipe") and ``docs/benchmarks.md`` ("HITL").

Choices (each overridable by an explicit :class:`~segstudio.engine.trainer.TrainConfig` field, see
:func:`apply_recipe`; a choice derived from another follows an explicit value: the batch from a given crop,
BatchNorm from a given batch):

- **Scale** (:func:`choose_scale_range`): relative to each image's native size, because that is what the
  Predictor shows the model (``scale="auto"`` shrinks only photos much larger than the training images): from
  ``lo`` (shrink for context, but keep the thinnest labelled structure :data:`MIN_STRUCTURE_PX` thick, never
  below :data:`MIN_SCALE`) up to the enlargement new images can show: the training images' own size spread
  (largest over median image side, a side being the square root of the pixel count), at least 1 and at most
  ``1 / AUTO_SCALE_BELOW`` (the largest object scale ``"auto"`` leaves as is). Images of one size give
  ``hi = 1``: never enlarge, within the device's default budget; a longer budget enlarges up to
  ``1 / AUTO_SCALE_BELOW`` (many passes over the same images).
- **Crop** (:func:`choose_crop`): a step's pixels (:data:`PIXELS_PER_STEP`, per device) shared by
  :data:`TARGET_BATCH` crops (256² on a CPU), at least four times the thickest structure, rounded to 32,
  within ``[MIN_CROP, MAX_CROP[device]]`` and never larger than the image.
- **Batch** (:func:`choose_batch`): the pixels per step divided by the crop area, at least :data:`MIN_BATCH`
  and at most the number of training images.
- **Loss** (:func:`choose_loss`): cross-entropy with median-frequency class weights (Eigen & Fergus, ICCV
  2015; SegNet), clipped to :data:`MAX_CLASS_WEIGHT` because frequencies from a handful of images are noisy,
  plus soft Dice (Milletari et al., V-Net, 3DV 2016), which scores each present class equally whatever its
  size — the combination nnU-Net uses (Isensee et al., Nature Methods 2021).
- **Learning rates** (:func:`choose_lrs`): AdamW; a freshly initialised classifier on pretrained layers gets
  :data:`HEAD_LR_MULT` × their rate for two classes (the "new layers learn faster" rule of fine-tuning, e.g.
  Long et al. FCN, CVPR 2015 / Girshick et al. R-CNN), divided by ``sqrt(K − 1)`` for K labelled classes
  (:func:`head_lr_mult`), and the pretrained layers warm up linearly over the first
  :data:`WARMUP_FRACTION` of the steps (a soft form of the head-only warm-up of Howard & Ruder, ULMFiT, ACL
  2018). A model trained from scratch has one rate and no warm-up.
- **BatchNorm** (:func:`choose_bn`): with small batches the statistics are re-estimated once on the new
  domain's training crops and then frozen (AdaBN, Li et al., "Revisiting Batch Normalization for Practical
  Domain Adaptation", ICLR-W 2017); with batches of :data:`BN_TRAIN_MIN_BATCH` crops or more, or of two or
  three crops holding :data:`BN_TRAIN_MIN_PIXELS` pixels, BN trains normally.
- **Schedule** (:func:`plan_total_steps`): measure the step time over the first steps, then the number of
  steps that fit the remaining budget (less a reserve for validation and checkpoint writes); the poly
  decay of DeepLab runs over that number, re-planned as the measured step time changes; training stops on
  budget and the **final weights** are the model. Every corrected image trains; no checkpoint is picked and no
  run is stopped early on one or two held-out images (they cannot see overfitting: docs/labelling-loop.md).
  Images the person set aside for validation (``labels/validation.txt``) draw the validation curve only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from segstudio.core.labels import IGNORE_INDEX

DEFAULT_BUDGET_S = {"cpu": 180.0, "cuda": 60.0, "mps": 120.0}
"""Default time budget of a one-click fine-tune, seconds, by device type (a few minutes on a CPU)."""
BUDGET_CHOICES_MIN = (1, 3, 10)
"""Budgets offered in the GUI's options dialog, minutes."""
MIN_STRUCTURE_PX = 3.0
"""Smallest thickness (pixels) a labelled structure may shrink to under scale augmentation."""
MIN_SCALE = 0.5
"""Smallest random rescale factor: at most half size (context for the crop; as the DeepLab/PSPNet 0.5 lower end)."""
AUTO_SCALE_BELOW = 0.75
"""The Predictor's ``scale="auto"`` shows a photo at native size unless that is below this factor of the model's
training size (:data:`segstudio.engine.predictor.AUTO_SCALE_BELOW`; repeated here because the recipe imports no
torch, a test checks they are equal): objects can reach ``1 / AUTO_SCALE_BELOW`` × their training size."""
MIN_CROP, CROP_MULTIPLE = 64, 32
MAX_CROP = {"cpu": 512, "cuda": 1024, "mps": 512}
"""Largest crop side per device type (pixels): a structure 4× thicker than MAX_CROP / 4 is context-free anyway."""
PIXELS_PER_STEP = {"cpu": 4 * 256 * 256, "cuda": 16 * 512 * 512, "mps": 8 * 256 * 256}
"""Pixels per optimizer step (batch × crop area) per device type: what one step costs (about 1 s on 2 CPU cores
for DeepLab v3+/MobileNetV2)."""
TARGET_BATCH = {"cpu": 4, "cuda": 16, "mps": 8}
"""Crops per step the crop side is derived for: ``crop = sqrt(PIXELS_PER_STEP / TARGET_BATCH)`` (256 on a CPU, 512
on CUDA), so a step sees a few distinct crops."""
MIN_BATCH = 2
MAX_BATCH = 16
MAX_CLASS_WEIGHT = 10.0
"""Upper clip of the median-frequency class weights (the median class has weight 1)."""
BASE_LR = {"cpu": 1e-3, "cuda": 1e-3, "mps": 1e-3}
"""AdamW learning rate of the pretrained layers (3e-4 learnt less in the same 40 steps on both proxy domains:
docs/benchmarks.md, HITL ablations)."""
HEAD_LR_MULT = 10.0
"""Learning-rate factor of a freshly initialised two-class classifier (:func:`head_lr_mult` for K classes)."""
WARMUP_FRACTION = 0.1
"""Share of the planned steps over which the pretrained layers' learning rate ramps up from 0."""
BN_TRAIN_MIN_BATCH = 4
"""Batches of at least this many crops train BatchNorm; smaller ones train it when they hold
:data:`BN_TRAIN_MIN_PIXELS` pixels, else use AdaBN statistics, then freeze. Four crops of 256² (a CPU step) train BN
better than frozen AdaBN statistics on the proxy suite's val splits over a 3-min budget (JSRT chest X-rays +12.5
mIoU, DRIVE +1.7, ISBI −0.7, CrackForest −0.6: docs/labelling-loop.md); the earlier choice of 8 came from 40-step
runs on two domains."""
BN_TRAIN_MIN_PIXELS = 3 * 256 * 256
"""A batch of two or three crops trains BatchNorm when it holds at least this many pixels (batch × crop area): a BN
layer's batch statistics are averages over the batch's pixels. On the proxy suite's val splits over a 3-min budget,
two crops of 384² (the batch a crop raised for thick structures gets on a CPU) trained BN better than AdaBN on all
five proxies (+1.0 to +6.1 mIoU), two crops of 256² did not (−3.5 to +1.7, as often below as above); the threshold,
three crops of 256², lies between the two and below the pixels :func:`choose_batch` gives any crop from 256 px up
(its rounding keeps a step at >= 0.8 of its pixels). A batch of one crop never trains BN (the ASPP image-pooling
branch would have one value per channel)."""
MEASURE_STEPS = 3
"""Steps timed before the first plan (the first step, with its one-off costs, is not timed)."""
REPLAN_EVERY = 10
"""Re-plan the number of steps every this many steps from the recent step times."""
VALIDATIONS_PER_BUDGET = 8
"""About this many validations on held-out images within a budget (best checkpoint, early stopping)."""
PATIENCE = VALIDATIONS_PER_BUDGET // 2
"""Early stop after this many validations without improvement (half the budget's validations), once half the
budget is spent: the best checkpoint did not change during the second half."""


def default_budget_s(device_type: str) -> float:
    """Default budget (seconds) for a device type ``"cpu"``, ``"cuda"``, ``"mps"`` (unknown: the CPU's)."""
    return DEFAULT_BUDGET_S.get(device_type, DEFAULT_BUDGET_S["cpu"])


# -- statistics of the training data ----------------------------------------------------------------
def structure_thickness(labels: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """Per-class area and boundary length of one label map, for the thickness ``2 A / P``.

    The boundary ``P_c`` counts the 4-neighbour pairs inside the image whose labels differ and one of which
    is ``c`` (pairs touching ``ignore_index`` count too: an annotated structure ends there). For a line of
    width ``w`` and length ``L >> w``, ``2 A / P = w``; for a disc of radius ``r`` it is ``r``.

    Args:
        labels: integer label map (H, W), values ``0..K-1`` or ``ignore_index``.
        num_classes: K.

    Returns:
        ``(area, perimeter)``: int64 (K,) each.

    Raises:
        ValueError: ``labels`` is not 2-D.
    """
    m = np.asarray(labels)
    if m.ndim != 2:
        raise ValueError(f"label map must be 2-D (H, W), got shape {m.shape}")
    m = m.astype(np.int64)
    valid = m != ignore_index
    area = np.bincount(m[valid], minlength=num_classes)[:num_classes]
    perim = np.zeros(num_classes, np.int64)
    for a, b in ((m[:, 1:], m[:, :-1]), (m[1:, :], m[:-1, :])):
        diff = a != b
        for side in (a, b):
            s = side[diff]
            s = s[s != ignore_index]
            perim += np.bincount(s, minlength=num_classes)[:num_classes]
    return area.astype(np.int64), perim


@dataclass(frozen=True)
class DataStats:
    """What the recipe needs to know about the training images.

    Attributes:
        image_sizes: ``(H, W)`` of each training image, pixels.
        class_pixels: int64 (K,) labelled pixels per class.
        class_image_pixels: int64 (K,) labelled pixels of the images that contain the class (for
            median-frequency balancing, see :mod:`segstudio.losses.weights`).
        thickness_px: float64 (K,) typical thickness ``2 A / P`` of each class's structures (0: absent).
        num_val: held-out images available for validation.
    """

    image_sizes: tuple[tuple[int, int], ...]
    class_pixels: np.ndarray
    class_image_pixels: np.ndarray
    thickness_px: np.ndarray
    num_val: int = 0

    @property
    def num_images(self) -> int:
        return len(self.image_sizes)

    @property
    def num_classes(self) -> int:
        return int(len(self.class_pixels))

    @property
    def present(self) -> np.ndarray:
        """bool (K,): classes with labelled training pixels."""
        return np.asarray(self.class_pixels) > 0

    @property
    def short_side(self) -> int:
        """Median short side of the training images, pixels."""
        return int(np.median([min(h, w) for h, w in self.image_sizes]))


def data_stats(label_maps: Iterable[np.ndarray], num_classes: int, num_val: int = 0, ignore_index: int = IGNORE_INDEX) -> DataStats:
    """Collect :class:`DataStats` from the training label maps (each (H, W), values ``0..K-1`` or ignore).

    Raises:
        ValueError: no label maps, or a value outside ``0..K-1`` other than ``ignore_index``.
    """
    sizes, pixels, image_pixels = [], np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64)
    area, perim = np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64)
    for i, m in enumerate(label_maps):
        m = np.asarray(m)
        v = m[m != ignore_index]
        if v.size and (int(v.min()) < 0 or int(v.max()) >= num_classes):
            raise ValueError(f"label map {i} holds values outside 0..{num_classes - 1} (and {ignore_index})")
        sizes.append((int(m.shape[0]), int(m.shape[1])))
        a, p = structure_thickness(m, num_classes, ignore_index)
        area += a
        perim += p
        pixels += a
        image_pixels[a > 0] += int(v.size)
    if not sizes:
        raise ValueError("no training label maps to plan a fine-tune from")
    thick = np.zeros(num_classes, np.float64)
    here = area > 0
    short = float(np.median([min(s) for s in sizes]))
    # A class with no boundary fills its images: its thickness is the image's.
    thick[here] = np.where(perim[here] > 0, 2.0 * area[here] / np.maximum(perim[here], 1), short)
    return DataStats(tuple(sizes), pixels, image_pixels, thick, int(num_val))


# -- the individual choices --------------------------------------------------------------------------
def _round_to(x: float, multiple: int) -> int:
    return int(multiple * max(1, round(x / multiple)))


def size_spread(image_sizes: Sequence[tuple[int, int]]) -> float:
    """How much larger than the median training image the largest one is, as a side factor:
    ``max_i sqrt(h_i w_i) / median_i sqrt(h_i w_i)`` (>= 1; 1.0 for images of one size or no images)."""
    if not image_sizes:
        return 1.0
    sides = np.sqrt(np.asarray([float(h) * float(w) for h, w in image_sizes]))
    return float(max(1.0, sides.max() / max(float(np.median(sides)), 1e-9)))


def choose_scale_range(thinnest_px: float, spread: float = 1.0, long_budget: bool = False) -> tuple[float, float]:
    """Random rescale range ``(lo, hi)`` of each training image relative to its native size.

    The Predictor works at native size (``scale="auto"`` only shrinks photos much larger than the training
    images), so a new image shows the model its objects at the training scale times the new image's size over
    the training images'. The training images' own spread (:func:`size_spread`, largest over median side) is the
    estimate of how much larger new images of the domain come, and ``"auto"`` shrinks anything beyond
    ``1 / AUTO_SCALE_BELOW``: ``hi = clip(spread, 1, 1 / AUTO_SCALE_BELOW)``. Images of one size (one camera,
    one microscope) give ``hi = 1`` within the device's default budget: a short run spends its steps at the scales
    it will predict. A **budget longer than the default** (``long_budget``) makes several times more passes over
    the same few images, and then the widest range ``"auto"`` allows, ``hi = 1 / AUTO_SCALE_BELOW``, keeps the
    model from fitting one scale of them: on the proxy suite's val splits, 10-min runs gained 0.4 to 21 mIoU
    from it on all five proxies, while 3-min runs were within seed noise of never enlarging
    (docs/labelling-loop.md; the length of a run as a reason for stronger augmentation: Steiner et al., "How to
    train your ViT?", TMLR 2022). Shrinking
    gives a crop more context, down to ``lo = clip(MIN_STRUCTURE_PX / thinnest_px, MIN_SCALE, 1)``, so the
    thinnest labelled structure stays at least :data:`MIN_STRUCTURE_PX` pixels thick. ``thinnest_px <= 0``
    (unknown) gives ``lo = MIN_SCALE``.

    Args:
        thinnest_px: thickness ``2 A / P`` of the thinnest labelled class, pixels.
        spread: :func:`size_spread` of the training images (>= 1; values below are read as 1).
        long_budget: the time budget is longer than the device's :func:`default_budget_s`.
    """
    lo = MIN_SCALE if thinnest_px <= 0 else float(np.clip(MIN_STRUCTURE_PX / thinnest_px, MIN_SCALE, 1.0))
    hi = 1.0 / AUTO_SCALE_BELOW if long_budget else float(np.clip(spread, 1.0, 1.0 / AUTO_SCALE_BELOW))
    return round(lo, 3), round(hi, 3)


def _device(table: dict, device_type: str):
    return table.get(device_type, table["cpu"])


def _crop_hw(crop: int | Sequence[int]) -> tuple[int, int]:
    """A crop given as a side or ``(h, w)``, as ``(h, w)`` ints."""
    return (int(crop), int(crop)) if isinstance(crop, (int, np.integer)) else (int(crop[0]), int(crop[1]))


def choose_crop(short_side: int, thickest_px: float, device_type: str = "cpu") -> int:
    """Square crop side (pixels).

    ``sqrt(PIXELS_PER_STEP / TARGET_BATCH)`` (a step's pixels shared by a few crops: 256 on a CPU, 512 on CUDA),
    raised to ``4 × thickest_px`` so a crop holds the labelled structures with context, a multiple of 32 within
    ``[MIN_CROP, MAX_CROP[device]]``, and at most the image's short side rounded down to 32 (a larger crop
    would only pad with ignored pixels).

    Raises:
        ValueError: ``short_side < 1``.
    """
    if short_side < 1:
        raise ValueError(f"image short side must be >= 1 pixel, got {short_side}")
    base = math.sqrt(_device(PIXELS_PER_STEP, device_type) / _device(TARGET_BATCH, device_type))
    want = max(base, 4.0 * max(thickest_px, 0.0))
    crop = min(max(_round_to(want, CROP_MULTIPLE), MIN_CROP), _device(MAX_CROP, device_type))
    fit = max(CROP_MULTIPLE, short_side // CROP_MULTIPLE * CROP_MULTIPLE)
    return int(min(crop, fit))


def choose_batch(crop: int | tuple[int, int], num_images: int, device_type: str = "cpu") -> int:
    """Images per step: ``PIXELS_PER_STEP[device] / crop area``, within ``[MIN_BATCH, MAX_BATCH]`` and at most
    ``num_images`` (at least 1). ``crop`` is a side or ``(h, w)`` (an explicit crop size sets the batch too).

    Raises:
        ValueError: a crop side < 1 or ``num_images < 1``.
    """
    h, w = _crop_hw(crop)
    if min(h, w) < 1 or num_images < 1:
        raise ValueError(f"crop and number of images must be >= 1, got {crop}, {num_images}")
    b = int(np.clip(round(_device(PIXELS_PER_STEP, device_type) / (h * w)), MIN_BATCH, MAX_BATCH))
    return max(1, min(b, num_images))


def balanced_class_weights(class_pixels: Sequence[int], class_image_pixels: Sequence[int], max_weight: float = MAX_CLASS_WEIGHT) -> np.ndarray:
    """Median-frequency weights (Eigen & Fergus 2015) clipped to ``max_weight``.

    ``freq_c = pixels_c / image_pixels_c``; ``w_c = median_k(freq_k) / freq_c`` over the classes with pixels,
    then ``min(w_c, max_weight)``. Classes without pixels get 0.

    Returns:
        float64 (K,).

    Raises:
        ValueError: no labelled pixels, or ``max_weight <= 0``.
    """
    pix = np.asarray(class_pixels, np.float64)
    img = np.asarray(class_image_pixels, np.float64)
    if max_weight <= 0:
        raise ValueError(f"max_weight must be > 0, got {max_weight}")
    present = pix > 0
    if not present.any():
        raise ValueError("cannot weight classes: the training labels have no labelled pixels")
    freq = np.zeros_like(pix)
    freq[present] = pix[present] / img[present]
    w = np.zeros_like(pix)
    w[present] = np.median(freq[present]) / freq[present]
    return np.minimum(w, max_weight)


def choose_loss(present: Sequence[bool]) -> tuple[str, str]:
    """``(loss spec, class-weight method)``: ``("ce+dice", "median")`` when two or more classes have
    labelled pixels, else ``("ce", "none")`` (nothing to balance)."""
    return ("ce+dice", "median") if int(np.sum(present)) >= 2 else ("ce", "none")


def head_lr_mult(num_classes: int) -> float:
    """Learning-rate factor of a freshly initialised classifier over ``num_classes`` labelled classes:
    ``max(1, HEAD_LR_MULT / sqrt(K − 1))`` (10× for two classes, 5.8× for 4, 2.4× for 19, 1× from 101).

    Why: AdamW normalises each weight's step, so every row of the new 1×1 classifier moves at the head's rate
    however few pixels its class has, and a softmax over K classes has K − 1 free logit directions: at one rate
    the step in logit space grows about as ``sqrt(K − 1)``, and the rows of rare classes move as far on a few
    hundred pixels as the background's on millions. Measured on the proxy suite's val splits (3 min, CPU;
    docs/benchmarks.md, HITL, "Decisions on val"): dropping the 10× rate to 1× cost the two-class proxies up to
    9 points (ISBI), was neutral on JSRT's 4 classes and gained on car parts' 19, and ``10 / sqrt(K − 1)``
    gained on both many-class proxies while leaving every two-class run as it was.

    Raises:
        ValueError: ``num_classes < 1``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return max(1.0, HEAD_LR_MULT / math.sqrt(max(1, num_classes - 1)))


def choose_lrs(fresh_head: bool, device_type: str = "cpu", num_classes: int = 2) -> tuple[float, float]:
    """``(lr of the pretrained layers, lr of the classifier)``: a freshly initialised head (new classes) gets
    :func:`head_lr_mult` ``(num_classes)`` × (``num_classes``: classes with labelled pixels), otherwise the same
    rate."""
    base = BASE_LR.get(device_type, BASE_LR["cpu"])
    return base, base * (head_lr_mult(num_classes) if fresh_head else 1.0)


def choose_bn(batch_size: int, crop: int | tuple[int, int]) -> str:
    """``"train"`` for batches of :data:`BN_TRAIN_MIN_BATCH` crops or more, and for batches of two or more crops
    holding :data:`BN_TRAIN_MIN_PIXELS` pixels (``batch_size × crop area``); else ``"adabn"`` (re-estimate, then
    freeze). ``crop`` is a side or ``(h, w)`` in pixels."""
    h, w = _crop_hw(crop)
    if batch_size >= BN_TRAIN_MIN_BATCH or (batch_size >= 2 and batch_size * h * w >= BN_TRAIN_MIN_PIXELS):
        return "train"
    return "adabn"


def plan_total_steps(budget_s: float, elapsed_s: float, step_s: float, steps_done: int, reserve_s: float = 0.0, min_steps: int = 1) -> int:
    """Total steps that fit the budget: ``steps_done + floor((budget_s − elapsed_s − reserve_s) / step_s)``.

    Args:
        budget_s: the whole budget, seconds (from the start of the fine-tune).
        elapsed_s: seconds spent so far (statistics, BN adaptation, steps, validation).
        step_s: measured seconds per optimizer step (> 0).
        steps_done: steps already taken.
        reserve_s: seconds kept for the remaining validations and checkpoint writes.
        min_steps: never plan fewer steps in total than this.

    Raises:
        ValueError: ``step_s <= 0`` or ``budget_s <= 0``.
    """
    if step_s <= 0 or budget_s <= 0:
        raise ValueError(f"budget and step time must be > 0 seconds, got {budget_s}, {step_s}")
    more = math.floor(max(0.0, budget_s - elapsed_s - reserve_s) / step_s)
    return max(int(min_steps), int(steps_done) + int(more))


def validation_interval_s(budget_s: float, num_val: int) -> float | None:
    """Seconds between validations: ``budget_s / VALIDATIONS_PER_BUDGET`` with held-out images, else ``None``."""
    return None if num_val <= 0 else budget_s / VALIDATIONS_PER_BUDGET


def warmup_steps(total_steps: int) -> int:
    """Steps over which the pretrained layers' learning rate ramps up: :data:`WARMUP_FRACTION` of the plan."""
    return int(round(WARMUP_FRACTION * max(0, total_steps)))


def lr_factor(step: int, total_steps: int, warmup: int = 0, power: float = 0.9) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up ``(step + 1) / (warmup + 1)`` for ``step < warmup``,
    times the poly decay ``(1 − step / total_steps) ** power`` (DeepLab, Chen et al., TPAMI 2018); in [0, 1]."""
    poly = max(0.0, 1.0 - step / max(1, total_steps)) ** power
    ramp = min(1.0, (step + 1) / (warmup + 1)) if warmup > 0 else 1.0
    return float(ramp * poly)


# -- the plan ----------------------------------------------------------------------------------------
@dataclass
class Recipe:
    """A fine-tune plan (JSON-able via :meth:`to_json`; the Trainer adds the measured schedule).

    Attributes:
        budget_s: time budget, seconds.
        crop_size: ``(h, w)`` pixels; scale_range: random rescale ``(lo, hi)`` around native resolution.
        batch_size: images per step; loss: loss spec; class_weights: method name;
        class_weight_max: clip of the weights.
        lr_body, lr_head: AdamW learning rates of the pretrained layers and of the (fresh) classifier.
        bn: ``"train"``, ``"adabn"`` or ``"frozen"``.
        val_interval_s: seconds between validations (``None``: no held-out images).
        reasons: one sentence per choice, for the model card and the log.
    """

    budget_s: float
    crop_size: tuple[int, int]
    scale_range: tuple[float, float]
    batch_size: int
    loss: str
    class_weights: str
    class_weight_max: float
    lr_body: float
    lr_head: float
    bn: str
    val_interval_s: float | None
    reasons: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["crop_size"], d["scale_range"] = list(self.crop_size), list(self.scale_range)
        return d


def choose_recipe(
    stats: DataStats,
    fresh_head: bool,
    device_type: str = "cpu",
    budget_s: float | None = None,
    given: dict | None = None,
) -> Recipe:
    """Derive the whole :class:`Recipe` from the training data, the model, the device and explicit choices.

    Args:
        stats: :func:`data_stats` of the training images.
        fresh_head: a freshly initialised classifier sits on pretrained layers (the classes differ from the
            starting checkpoint's): it gets :func:`head_lr_mult` × the rate. ``False`` for a model trained from
            scratch (every layer is new: one rate) and for a fine-tune that keeps its classes.
        device_type: ``"cpu"``, ``"cuda"`` or ``"mps"``.
        budget_s: seconds (default :func:`default_budget_s`).
        given: explicit choices (``crop_size``, ``batch_size``, ``freeze_bn``/``adapt_bn``, ...): a choice derived
            from another follows the explicit value (the batch from a given crop, BatchNorm from a given batch).

    Raises:
        ValueError: no labelled pixels, or a budget <= 0.
    """
    given = dict(given or {})
    budget = default_budget_s(device_type) if budget_s is None else float(budget_s)
    if budget <= 0:
        raise ValueError(f"the time budget must be > 0 seconds, got {budget}")
    present = stats.present
    if not present.any():
        raise ValueError("the training labels have no labelled pixels: paint some classes first")
    thick = stats.thickness_px[present]
    thinnest, thickest = float(thick.min()), float(np.median(thick)) if len(thick) > 2 else float(thick.min())
    # The crop must hold the structures of the classes that are not the background: with two classes the
    # thinner is the structure of interest, with more the median thickness (a huge background is no guide).
    spread = size_spread(stats.image_sizes)
    default_s = default_budget_s(device_type)
    long_budget = budget > default_s
    scale = choose_scale_range(thinnest, spread, long_budget)
    if given.get("crop_size") is not None:
        crop_hw = _crop_hw(given["crop_size"])
    else:
        c = choose_crop(stats.short_side, thickest, device_type)
        crop_hw = (c, c)
    batch = int(given["batch_size"]) if given.get("batch_size") is not None else choose_batch(crop_hw, stats.num_images, device_type)
    loss, weights = choose_loss(present)
    num_present = int(present.sum())
    lr_body, lr_head = choose_lrs(fresh_head, device_type, num_present)
    bn = choose_bn(batch, crop_hw)
    pix = _device(PIXELS_PER_STEP, device_type)
    reasons = {
        "scale_range": (f"native size as the Predictor sees it, enlarged up to 1/{AUTO_SCALE_BELOW:g} (a budget longer "
                        f"than the {default_s:g} s default: many passes over the same images)"
                        if long_budget else
                        f"native size as the Predictor sees it, enlarged up to the training images' size spread "
                        f"({spread:.2f}x, <= 1/{AUTO_SCALE_BELOW:g})") + "; shrink so the "
                       f"thinnest labelled structure (~{thinnest:.1f} px) stays >= {MIN_STRUCTURE_PX:g} px",
        "crop_size": "given" if "crop_size" in given else
                     f"{pix} pixels per step over {_device(TARGET_BATCH, device_type)} crops, >= 4x the {thickest:.1f} px "
                     f"structures, <= the {stats.short_side} px short side",
        "batch_size": "given" if "batch_size" in given else
                      f"{pix} pixels per step on {device_type} / the {crop_hw[0]}x{crop_hw[1]} crop, <= {stats.num_images} images",
        "loss": "median-frequency weighted CE (clipped) + Dice: rare classes count" if weights != "none" else "one labelled class",
        "lr": f"new classifier x{lr_head / lr_body:.3g} ({HEAD_LR_MULT:g} / sqrt({num_present} - 1) labelled "
              f"classes, at least 1)" if fresh_head else "one rate for every layer",
        "bn": f"AdaBN statistics, then frozen (batch {batch} < {BN_TRAIN_MIN_BATCH} and {batch} x {crop_hw[0]}x{crop_hw[1]} "
              f"px < {BN_TRAIN_MIN_PIXELS} px)" if bn == "adabn"
              else f"batch {batch} of {crop_hw[0]}x{crop_hw[1]} px large enough to train BatchNorm",
        "checkpoint": "the final weights (poly decay to 0 over the budget); no checkpoint is picked on a few images",
    }
    return Recipe(
        budget_s=budget,
        crop_size=crop_hw,
        scale_range=scale,
        batch_size=batch,
        loss=loss,
        class_weights=weights,
        class_weight_max=MAX_CLASS_WEIGHT,
        lr_body=lr_body,
        lr_head=lr_head,
        bn=bn,
        val_interval_s=validation_interval_s(budget, stats.num_val),
        reasons=reasons,
    )
