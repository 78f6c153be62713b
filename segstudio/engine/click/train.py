"""Training a click model (:class:`segstudio.models.clicknet.ClickNet`), RITM-style (Sofiiuk et al., ICIP 2022,
Sec. 3.2, Alg. 1): random crops around objects of dataset folders (:class:`ObjectCrops`), a few clicks simulated
from the model's own errors without gradient before the step that is back-propagated (:func:`train_click_model`).
Deviation: RITM's normalized focal loss is replaced by BCE + soft IoU (:func:`click_loss`); the ImageNet encoder is
frozen by default. Run by ``scripts/train_click_model.py``.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from segstudio.core.labels import IGNORE_INDEX
from segstudio.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from segstudio.engine.checkpoint import save_checkpoint
from segstudio.engine.click.protocol import CLICK_RADIUS, Click, _inner_distance, guidance_maps, next_click, object_masks
from segstudio.engine.click.session import CLICK_MODEL_NAME
from segstudio.models.clicknet import ClickNet

log = logging.getLogger(__name__)


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
        out: folder for ``model.safetensors`` + ``model.json`` (written every ``save_every`` steps and at the end)
            and the resumable ``train_state.pt`` (model, optimizer, step, elapsed time, RNG states).
        seed: RNG seed.
        objects_from: a ``../shared/datasets`` folder: train on the class-agnostic
            :class:`~segstudio.engine.click.objects.ObjectBank` of ``domains`` there (train splits only) instead of
            :class:`ObjectCrops` of ``datasets``.
        domains: dataset names under ``objects_from`` (default :data:`~segstudio.engine.click.objects.DOMAINS`).
        copy_paste: probability of a copy-paste sample (object pasted onto another image), with ``objects_from``.
        init: start from these click-model weights (``.safetensors`` with its card; e.g. the shipped model).
        resume: continue from ``out/train_state.pt`` when it exists (the minutes budget counts the earlier runs).
        encoder_lr_factor: learning rate of the unfrozen encoder stages relative to ``lr``.
        union_share: with ``objects_from``, the probability that an object of a domain with part unions is a whole
            object (a union) rather than a part (:meth:`~segstudio.engine.click.objects.ObjectBank.sample`);
            ``None``: every object equally likely (before issue 34's first-click fix).
        first_click_whole: with ``objects_from``, the steps that train the answer to the first click alone (no
            simulated clicks after it) never cut a part of a larger object from its own image (``whole_only`` of
            :meth:`~segstudio.engine.click.objects.ObjectBank.sample`): a lone click means the whole object.
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
    objects_from: str = ""
    domains: tuple[str, ...] = ()
    copy_paste: float = 0.0
    init: str = ""
    resume: bool = False
    encoder_lr_factor: float = 0.1
    union_share: float | None = None
    first_click_whole: bool = False


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


def _without_keys(data: dict | None) -> dict | None:
    """A card's ``training_data`` without its per-image content keys (:data:`segstudio.engine.heldout.KEY_FIELDS`;
    they stay in the parent's own card)."""
    from segstudio.engine.heldout import KEY_FIELDS

    if not isinstance(data, dict):
        return data
    return {k: v for k, v in data.items() if k not in KEY_FIELDS}


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

    Each step: the number of error-driven clicks (0..``max_iter_clicks``) is drawn, then a batch of object crops
    (:class:`ObjectCrops`, or the object bank; with ``first_click_whole`` a step with no error-driven click never
    cuts a part of a larger object from its own image); first click at each object's most interior
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
    if cfg.objects_from:
        from segstudio.engine.click.objects import DOMAINS, ObjectBank

        bank = ObjectBank.from_shared(cfg.objects_from, tuple(cfg.domains) or DOMAINS, split=cfg.split, rng=rng)
        data_info = {"datasets": [str(Path(cfg.objects_from) / d) for d in bank.domains], "split": cfg.split,
                     "images": sum(len(f) for f in bank.files),
                     "objects": bank.stats(), "copy_paste": cfg.copy_paste, "union_share": cfg.union_share,
                     "first_click_whole": cfg.first_click_whole,
                     "objects_rule": "8-connected components per class >= 0.5 % of the image, plus unions of adjacent "
                                     "parts (datasets with a 'background' class and >= 2 others)"}

        def draw(whole_only: bool = False):
            return bank.sample(cfg.crop, cfg.copy_paste, cfg.union_share, whole_only=whole_only and cfg.first_click_whole)
    else:
        crops = ObjectCrops(cfg.datasets, cfg.split, cfg.crop, rng)
        data_info = {"datasets": [str(d) for d in cfg.datasets], "split": cfg.split}

        def draw(whole_only: bool = False):
            return crops.sample()
    model = ClickNet(num_classes=1, pretrained=True, width=cfg.width)
    encoder_pretrained = bool(model.encoder.pretrained)
    parent = None
    if cfg.init:
        from segstudio.engine.click.session import load_click_model

        init_model, parent = load_click_model(cfg.init)
        model.load_state_dict(init_model.state_dict())
        encoder_pretrained = bool(parent.get("encoder_pretrained", encoder_pretrained))
    enc_params = list(model.encoder.parameters())
    for p in enc_params:
        p.requires_grad_(False)
    groups = [{"params": [p for n, p in model.named_parameters() if not n.startswith("encoder.")], "lr": cfg.lr}]
    if cfg.train_encoder:
        late = [p for st in model.encoder.stages[3:] for p in st.parameters()]
        for p in late:
            p.requires_grad_(True)
        groups.append({"params": late, "lr": cfg.lr * cfg.encoder_lr_factor})
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    t0, step, losses = time.monotonic(), 0, []
    budget = cfg.minutes * 60.0
    state_path = out / "train_state.pt"
    if cfg.resume and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        step, losses = int(st["step"]), list(st["losses"])
        t0 -= float(st["elapsed_s"])
        rng.setstate(st["py_rng"])
        torch.set_rng_state(st["torch_rng"])
        log.info("resumed %s at step %d (%.1f min done)", state_path, step, st["elapsed_s"] / 60)

    def save_state() -> None:
        import io as _io

        from segstudio.io import atomic_write_bytes

        buf = _io.BytesIO()
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "losses": losses[-200:],
                    "elapsed_s": time.monotonic() - t0, "py_rng": rng.getstate(), "torch_rng": torch.get_rng_state()}, buf)
        atomic_write_bytes(state_path, buf.getvalue())

    def card(summary: dict) -> dict:
        return {
            "architecture": "clicknet",
            "name": CLICK_MODEL_NAME,
            "model_kwargs": {"encoder": "mobilenet_v2", "width": cfg.width},
            "classes": [{"id": 0, "name": "object", "color": [255, 255, 0]}],
            "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "input": "RGB uint8 / 255"},
            "encoder_pretrained": encoder_pretrained,
            "guidance": {"channels": ["positive disks", "negative disks", "previous mask"], "click_radius_px": CLICK_RADIUS},
            "training_data": data_info,
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
            "training": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items() if k != "datasets"}, **summary},
            **({"parent": {"name": parent.get("name"), "created": parent.get("created"), "weights": str(cfg.init),
                           "training": parent.get("training"), "training_data": _without_keys(parent.get("training_data")),
                           "parent": parent.get("parent")}} if parent else {}),
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
        n_iter = rng.randint(0, cfg.max_iter_clicks)
        batch = [draw(whole_only=n_iter == 0) for _ in range(cfg.batch_size)]
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
            save_state()
            save({"steps": step, "train_minutes": round((time.monotonic() - t0) / 60, 2), "loss_last100": float(np.mean(losses[-100:]))})
    summary = {"steps": step, "train_minutes": round((time.monotonic() - t0) / 60, 2),
               "loss_last100": float(np.mean(losses[-100:])) if losses else None}
    save_state()
    save(summary)
    return summary
