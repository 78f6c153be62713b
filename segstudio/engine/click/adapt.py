"""Online adaptation of the click model to the user's own objects (issue 34, item 3).

Every object a person finishes with the click tool is a perfect training example for the click model on *their*
domain. :func:`adapt_click_decoder` fine-tunes the click-dependent decoder (the guidance pyramid, the fusion
stages and the head, :data:`ADAPTED_PREFIXES`) for a few seconds on such objects, the image encoder and its neck
frozen — so the image encodings the GUI caches stay valid and only the cheap decoder runs per step. This follows
Kontogianni, Gygli, Uijlings, Ferrari, "Continuous Adaptation for Interactive Object Segmentation by Learning from
Corrections", ECCV 2020: the model is updated during the labelling session from the user's finished objects.
Deviation: they adapt with the sparse corrections as labels while an object is being labelled and the whole
model; here the target is the accepted (dense) mask after an object is finished and only the decoder is trained,
with the RITM click simulation (clicks from the model's own errors, previous mask fed back) so the adapted model
sees the click sequences the protocol produces; the recorded click sequence is replayed as well when given.

The adapted weights are a small set of tensors kept with the project (:func:`adapted_path`,
``labels/models/click_adapted.safetensors``), saved atomically (:func:`save_adapted`), read back
(:func:`load_adapted`) and applied to a copy of the shipped model (:func:`apply_adapted`); :func:`reset_adapted`
deletes them.

No Qt here; the GUI runs :func:`adapt_click_decoder` in a worker job.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from segstudio.engine.click.adapt_policy import ADAPT_SECONDS, KEEP_OBJECTS, LR, MAX_STEPS
from segstudio.engine.click.protocol import Click, evaluate_object, guidance_maps, next_click, noc

log = logging.getLogger(__name__)

#: Parameter/buffer name prefixes of ClickNet that adaptation trains (the click-dependent decoder).
ADAPTED_PREFIXES = ("guidance.", "fuse16.", "fuse8.", "fuse4.", "head.")
#: The key of an adaptation cache that holds the optimizer state continued from one adaptation to the next.
OPTIMIZER_KEY = "optimizer"
#: The key of an adaptation cache that holds one encoding per image (objects of one image share it).
IMAGES_KEY = "images"
#: The key of an adaptation cache that maps ``id(example)`` to each example already scored for the :class:`AdaptGuard`
#: (the example itself, matched by identity: a freed example's id can be reused by a new one).
SCORED_KEY = "scored"
#: Where a project keeps its adapted click decoder, relative to the project (image) folder.
ADAPTED_RELPATH = Path("labels") / "models" / "click_adapted.safetensors"


@dataclass
class AdaptExample:
    """One finished object.

    Attributes:
        image: uint8 (H, W, 3) RGB.
        mask: bool (H, W) accepted object mask (the target).
        clicks: the user's click sequence in image pixels (optional; replayed besides simulated clicks).
        ignore: optional bool (H, W) pixels that count for no loss.
    """

    image: np.ndarray
    mask: np.ndarray
    clicks: list[Click] | None = None
    ignore: np.ndarray | None = None


def prune_cache(cache: dict, examples: list) -> dict:
    """The adaptation ``cache`` without the entries of examples no longer in ``examples`` and the encodings of
    images none of them shows (the optimizer state under :data:`OPTIMIZER_KEY` stays)."""
    by_id = {id(e): e for e in examples}
    live_images = {id(e.image) for e in examples}
    out = {k: v for k, v in cache.items() if k == OPTIMIZER_KEY or k in by_id}
    if IMAGES_KEY in cache:
        out[IMAGES_KEY] = {k: v for k, v in cache[IMAGES_KEY].items() if k in live_images}
    if SCORED_KEY in cache:
        out[SCORED_KEY] = {k: e for k, e in cache[SCORED_KEY].items() if by_id.get(k) is e}
    return out


def guard_new_examples(guard: "AdaptGuard", adapted: torch.nn.Module, base: torch.nn.Module, examples: list,
                       cache: dict) -> int:
    """Score each example not scored yet (:data:`SCORED_KEY` of ``cache``) with both decoders (:func:`clicks_needed`)
    into ``guard``, before it trains the adapted one; returns how many were scored."""
    scored = cache.setdefault(SCORED_KEY, {})
    n = 0
    for ex in examples:
        if scored.get(id(ex)) is ex:
            continue
        guard.add(clicks_needed(adapted, ex, cache=cache), clicks_needed(base, ex, cache=cache))
        scored[id(ex)] = ex
        n += 1
    return n


def load_guard(path: str | Path) -> AdaptGuard:
    """The :class:`AdaptGuard` saved in the card beside the adapted decoder ``path`` (a new one when there is none)."""
    try:
        card = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return AdaptGuard()
    return AdaptGuard.from_json(card.get("guard"))


def decoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The adapted part of ``model``'s state dict (keys under :data:`ADAPTED_PREFIXES`), detached float32 CPU copies."""
    return {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items() if k.startswith(ADAPTED_PREFIXES)}


def apply_adapted(model: torch.nn.Module, state: dict[str, torch.Tensor], copy_model: bool = True) -> torch.nn.Module:
    """``model`` (a copy by default) with the adapted decoder tensors ``state`` loaded, in eval mode.

    Raises:
        ValueError: ``state`` has keys outside :data:`ADAPTED_PREFIXES` or that the model lacks, or shapes differ.
    """
    own = model.state_dict()
    bad = [k for k in state if not k.startswith(ADAPTED_PREFIXES) or k not in own or own[k].shape != state[k].shape]
    if bad:
        raise ValueError(f"adapted weights do not fit this click model: {bad[:5]}")
    m = copy.deepcopy(model) if copy_model else model
    m.load_state_dict({**m.state_dict(), **{k: v.to(own[k].dtype) for k, v in state.items()}})
    return m.eval()


def _loss(logits: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    from segstudio.engine.click.train import click_loss

    return click_loss(logits, gt, valid)


def _prepare(model: torch.nn.Module, ex: AdaptExample, max_side: int, cache: dict | None):
    """``(encoding, gt, ignore, clicks)`` of one finished object at most ``max_side`` px (cached by ``id(ex)`` with
    ``ex`` itself, so an entry left by a freed example whose id() is reused does not match; the
    objects of one image share its encoding under :data:`IMAGES_KEY`), or ``None`` for an empty mask.

    Raises:
        ValueError: a non-uint8-RGB image or a mask of another shape.
    """
    import cv2

    from segstudio.data.transforms import IMAGENET_MEAN, IMAGENET_STD, to_model_input

    hit = cache.get(id(ex)) if cache is not None else None
    if hit is not None and hit[4] is ex:  # the entry keeps its example: a reused id() of a freed one never matches
        return hit[:4]
    if ex.image.ndim != 3 or ex.image.shape[2] != 3 or ex.image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {ex.image.dtype} {ex.image.shape}")
    if ex.mask.shape != ex.image.shape[:2]:
        raise ValueError(f"mask {ex.mask.shape} does not match the image {ex.image.shape[:2]}")
    if not ex.mask.any():
        return None
    # Encodings by image (the image object itself is kept to check identity, so a reused id() never matches).
    images: dict = cache.setdefault(IMAGES_KEY, {}) if cache is not None else {}
    h, w = ex.mask.shape
    s = min(1.0, max_side / max(h, w))
    img, gt = ex.image, ex.mask.astype(bool)
    ign = ex.ignore.astype(bool) if ex.ignore is not None else np.zeros((h, w), bool)
    clicks = list(ex.clicks or [])
    if s < 1.0:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        gt = cv2.resize(gt.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        ign = cv2.resize(ign.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        clicks = [Click(min(int(c.y * s), size[1] - 1), min(int(c.x * s), size[0] - 1), c.positive) for c in clicks]
    if not gt.any():
        return None
    shared = images.get(id(ex.image))
    if shared is not None and shared[0] is ex.image:  # another object of the same image: one encoding
        enc = shared[1]
    else:
        with torch.no_grad():
            enc = model.encode_image(to_model_input(img, IMAGENET_MEAN, IMAGENET_STD)[None])
        enc = {"feats": [f.detach() for f in enc["feats"]], "size": enc["size"]}
        images[id(ex.image)] = (ex.image, enc)
    item = (enc, gt, ign, clicks)
    if cache is not None:
        cache[id(ex)] = (*item, ex)
    return item


@torch.no_grad()
def clicks_needed(model: torch.nn.Module, example: AdaptExample, max_side: int = 512, cache: dict | None = None,
                  target_iou: float = 0.85, max_clicks: int = 20) -> float | None:
    """How many clicks ``model`` needs on a finished object: NoC at ``target_iou`` under the standard protocol
    (:func:`~segstudio.engine.click.protocol.next_click`: the first click at the object's most interior point, each
    next one at the largest error *of this model's own answer*, the answer fed back as the previous mask), counted
    as ``max_clicks`` when never reached; ``None`` for an empty mask. Pixels in ``example.ignore`` do not count.

    The clicks follow each model's own errors, not the person's recorded clicks: those answered whichever decoder
    was in use, and replaying them would favour it (a guard that fell back could never switch back). Scored before
    the object joins the training pool, so a model is scored on an object it never trained on (the "test, then
    train" order of prequential evaluation; Dawid, J. R. Stat. Soc. A 1984).
    """
    item = _prepare(model, example, max_side, cache)
    if item is None:
        return None
    enc, gt, ign, _ = item

    def predict(clicks: list[Click], prev: np.ndarray | None) -> np.ndarray:
        g = torch.from_numpy(guidance_maps(clicks, gt.shape, prev))[None]
        return (model.decode_clicks(enc, g)[0, 0] > 0).numpy()

    ious = evaluate_object(predict, gt, max_clicks, ign, stop_iou=target_iou)
    return float(noc(ious, target_iou, max_clicks))


@dataclass
class AdaptGuard:
    """Whether the adapted decoder segments the person's objects with no more clicks than the unadapted one.

    Each finished object is scored by :func:`clicks_needed` (NoC@85 under the click protocol, each model on its own
    errors) with both models *before* it trains the decoder; the adapted decoder is used while its mean over the
    last :data:`~segstudio.engine.click.adapt_policy.KEEP_OBJECTS` scored objects is at most the unadapted model's
    (so a domain where adaptation hurts, e.g. thin cracks, falls back to the shipped model while adaptation goes on,
    and switches back when it catches up).

    Attributes:
        scores: ``[adapted, unadapted]`` clicks-needed pairs, oldest first.
    """

    scores: list = field(default_factory=list)

    def add(self, adapted: float | None, unadapted: float | None) -> None:
        """Record one object's two scores (ignored when either is ``None``)."""
        if adapted is None or unadapted is None:
            return
        self.scores = [*self.scores, [float(adapted), float(unadapted)]][-KEEP_OBJECTS:]

    @property
    def use_adapted(self) -> bool:
        """True until an object is scored, then while the adapted decoder needs no more clicks on average."""
        if not self.scores:
            return True
        a = np.asarray(self.scores, np.float64)
        return bool(a[:, 0].mean() <= a[:, 1].mean())

    def to_json(self) -> dict:
        return {"scores": [[round(x, 4) for x in p] for p in self.scores], "use_adapted": self.use_adapted}

    @classmethod
    def from_json(cls, d: dict | None) -> "AdaptGuard":
        return cls([list(map(float, p)) for p in (d or {}).get("scores", [])])


def adapt_click_decoder(model: torch.nn.Module, examples: list[AdaptExample], seconds: float = ADAPT_SECONDS,
                        max_steps: int = MAX_STEPS, lr: float = LR, max_clicks: int = 6, max_side: int = 512, seed: int = 0,
                        cancelled=None, cache: dict | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Fine-tune the click decoder of ``model`` on finished objects; the model itself is not changed.

    Each step picks an example, builds a click sequence — half the time a prefix of the recorded ``clicks`` (when
    given), otherwise the first click at the object's most interior point and up to ``max_clicks - 1`` more from the
    current decoder's own errors with its previous mask fed back (RITM iterative protocol, no gradient) — and takes one
    Adam step of BCE + soft IoU (:func:`~segstudio.engine.click.train.click_loss`) on the accepted mask. Batch-norm
    statistics stay frozen (eval mode); the image is encoded once per example (downscaled to ``max_side``).

    Args:
        model: a ClickNet (e.g. from :func:`~segstudio.engine.click.session.load_click_model`).
        examples: finished objects; empty masks are skipped.
        seconds: wall-clock budget of the steps (encoding the examples comes on top: a loaded machine must not spend
            it all on encoding); at least one step runs unless cancelled; stops earlier after ``max_steps`` steps.
        lr: Adam learning rate of the decoder. With ``cache``, Adam's state (its moment estimates and step count)
            is kept there and continued by the next call, so the adaptations of a session are one training run
            rather than many restarts, each of whose first steps would move every decoder weight by the full rate in
            its gradient's sign direction (the policy with it won the val sessions: ``adapt_policy.MAX_STEPS``).
        max_clicks: longest simulated click sequence.
        seed: RNG seed of the click simulation.
        cancelled: optional ``cancelled() -> bool``, polled between steps (a worker job's cancel flag).
        cache: optional dict kept by the caller between calls: the prepared encoding of each example (keyed by
            ``id(example)``; the objects of one image share one encoding, under :data:`IMAGES_KEY`), so a growing
            pool of finished objects is encoded once (valid because the encoder and neck are never adapted; use one
            cache per base model), and the optimizer's state under
            :data:`OPTIMIZER_KEY` (a caller that prunes the cache keeps that key: :func:`prune_cache`).

    Returns:
        ``(state, info)``: adapted decoder tensors (:func:`decoder_state` layout) and ``{"steps", "seconds",
        "examples", "loss_first", "loss_last"}``.

    Raises:
        ValueError: no usable example, or an image/mask pair of different shapes or a non-uint8-RGB image.
    """
    t0 = time.monotonic()
    rng = random.Random(seed)
    work = copy.deepcopy(model).eval()
    for n, p in work.named_parameters():
        p.requires_grad_(n.startswith(ADAPTED_PREFIXES))
    params = [p for p in work.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    if cache is not None and OPTIMIZER_KEY in cache:
        try:  # continue the optimizer of the previous adaptation (its moments), not a fresh one
            opt.load_state_dict(cache[OPTIMIZER_KEY])
        except (ValueError, KeyError) as exc:  # another model's optimizer: start afresh
            log.debug("click adaptation: optimizer state not reused: %s", exc)
    prepared = []
    for ex in examples:
        item = _prepare(work, ex, max_side, cache)
        if item is not None:
            prepared.append(item)
    if not prepared:
        raise ValueError("no finished object with a non-empty mask to adapt on")
    losses: list[float] = []
    step = 0
    t_steps = time.monotonic()
    while step < max_steps and (step == 0 or time.monotonic() - t_steps < seconds):
        if cancelled is not None and cancelled():
            break
        enc, gt, ign, rec = rng.choice(prepared)
        prev = np.zeros_like(gt)
        if rec and rng.random() < 0.5:
            k = rng.randint(1, len(rec))
            clicks = rec[:k]
            if k > 1:
                with torch.no_grad():
                    g = torch.from_numpy(guidance_maps(rec[:k - 1], gt.shape))[None]
                    prev = (work.decode_clicks(enc, g)[0, 0] > 0).numpy()
        else:
            clicks = []
            c = next_click(gt, prev, ign)
            if c is None:
                break
            clicks.append(c)
            n_more = rng.randint(0, max_clicks - 1)
            with torch.no_grad():
                for _ in range(n_more):
                    g = torch.from_numpy(guidance_maps(clicks, gt.shape, prev))[None]
                    prev = (work.decode_clicks(enc, g)[0, 0] > 0).numpy()
                    c = next_click(gt, prev, ign)
                    if c is None:
                        break
                    clicks.append(c)
        g = torch.from_numpy(guidance_maps(clicks, gt.shape, prev))[None]
        logits = work.decode_clicks(enc, g)
        loss = _loss(logits, torch.from_numpy(gt)[None, None].float(), torch.from_numpy(~ign)[None, None].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        step += 1
    if cache is not None and step:
        cache[OPTIMIZER_KEY] = copy.deepcopy(opt.state_dict())
    info = {"steps": step, "seconds": round(time.monotonic() - t0, 2), "examples": len(prepared),
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None}
    log.debug("click decoder adapted: %s", info)
    return decoder_state(work), info


# ---------------------------------------------------------------------------------------------------------
# kept with the project
# ---------------------------------------------------------------------------------------------------------
def adapted_path(project_dir: str | Path) -> Path:
    """``<project_dir>/labels/models/click_adapted.safetensors`` (its card: the same stem, ``.json``)."""
    return Path(project_dir) / ADAPTED_RELPATH


def save_adapted(path: str | Path, state: dict[str, torch.Tensor], info: dict | None = None) -> Path:
    """Write the adapted decoder tensors (float32 safetensors) and a ``.json`` card beside them, each atomically.

    Raises:
        ValueError: ``state`` has keys outside :data:`ADAPTED_PREFIXES` (not an adapted decoder).
        OSError: the folder cannot be created or written (``DiskFullError`` when the disk is full).
    """
    from safetensors.torch import save

    from segstudio.io import atomic_write_bytes

    bad = [k for k in state if not k.startswith(ADAPTED_PREFIXES)]
    if bad or not state:
        raise ValueError(f"not an adapted click decoder: {bad[:5] or 'no tensors'}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = save({k: v.detach().float().cpu().contiguous() for k, v in state.items()}, metadata={"format": "pt"})
    atomic_write_bytes(path, data)
    card = {"kind": "click_decoder_adaptation", "method": "Kontogianni et al., ECCV 2020 (decoder only)",
            "prefixes": list(ADAPTED_PREFIXES), **(info or {})}
    atomic_write_bytes(path.with_suffix(".json"), (json.dumps(card, indent=1) + "\n").encode("utf-8"))
    return path


def load_adapted(path: str | Path) -> dict[str, torch.Tensor] | None:
    """The adapted decoder tensors at ``path``, or ``None`` when there are none (never adapted, or reset).

    Raises:
        ValueError: the file is not an adapted click decoder (unreadable or keys outside :data:`ADAPTED_PREFIXES`).
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"{path}: not readable as safetensors: {exc}") from None
    if not state or any(not k.startswith(ADAPTED_PREFIXES) for k in state):
        raise ValueError(f"{path}: not an adapted click decoder")
    return state


def reset_adapted(path: str | Path) -> bool:
    """Delete the adapted weights and their card; True when something was deleted."""
    path = Path(path)
    found = False
    for p in (path, path.with_suffix(".json")):
        if p.is_file():
            p.unlink()
            found = True
    return found
