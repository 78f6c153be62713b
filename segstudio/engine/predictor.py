"""``Predictor``: image(s) in, probabilities / label maps out, on the best device.

Three ways in:

* :meth:`Predictor.predict` / :meth:`Predictor.predict_proba` / :meth:`Predictor.predict_logits` for one
  image (or a same-size list), used by the GUI and :func:`segstudio.engine.evaluate`;
* :meth:`Predictor.predict_many` for a folder or any iterable of paths / arrays: a prefetch thread decodes
  the next images while the model runs, consecutive same-size images are stacked into batches;
* sliding-window inference (:meth:`Predictor.predict_tiled`), chosen automatically for images above
  ``max_pixels`` and as the first fallback when the device runs out of memory.

Optional horizontal-flip test-time augmentation (``tta=True``, ``segstudio predict/evaluate --tta``): every
forward pass also runs on the mirrored input and the two logit maps are averaged (:meth:`Predictor._run_model`),
so it composes with tiling, ``scale``, the out-of-memory fallbacks and every output (labels, probabilities,
logits, the uncertainty maps and CRF / morphology computed from them). Cost and gain: ``docs/benchmarks.md``
(``python -m bench tta``).

What makes it faster than a plain ``model(x)`` loop (figures in ``docs/benchmarks.md``, ``python -m bench
predict_folder``): ``torch.inference_mode``; convolution + batch-norm folding (``torch.nn.utils.fusion``);
channels_last memory format (on CPU this routes depthwise/1×1 convolutions to oneDNN instead of the slow
im2col path; on CUDA to tensor-core kernels); a channels-last argmax (the reduction over classes runs over
contiguous memory, ~7× faster on CPU); batching; decode overlapped with compute; float16 autocast (AMP) on
CUDA; optional ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from segstudio.core.labels import mirror_permutation
from segstudio.data.transforms import to_model_input
from segstudio.engine.checkpoint import LoadedModel
from segstudio.engine.devices import resolve_device
from segstudio.engine.tiling import tile_starts, tile_weight_map

log = logging.getLogger(__name__)

OUTPUTS = ("labels", "proba", "logits")
"""What :meth:`Predictor.predict_many` yields per image."""


AUTO_SCALE_BELOW = 0.75
"""``scale="auto"`` shrinks an image only when the factor it computes is below this (see :meth:`Predictor.scale_for`)."""


def parse_scale(scale: float | str) -> float | str:
    """Validate an inference scale: a number in ``(0, 4]`` (float) or ``"auto"`` (also as a string of a number).

    Raises:
        ValueError: anything else, with what is accepted.
    """
    if isinstance(scale, str):
        if scale.strip().lower() == "auto":
            return "auto"
        try:
            scale = float(scale)
        except ValueError:
            raise ValueError(f"scale must be a number in (0, 4] or 'auto', got {scale!r}") from None
    s = float(scale)
    if not (0.0 < s <= 4.0) or math.isnan(s):
        raise ValueError(f"scale must be a number in (0, 4] or 'auto', got {scale!r}")
    return s


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``torch.cuda.OutOfMemoryError`` and any ``RuntimeError`` whose message says "out of memory"."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def fuse_conv_bn(model: torch.nn.Module) -> tuple[torch.nn.Module, int]:
    """A copy of ``model`` (in eval mode) with every ``Conv2d → BatchNorm2d`` pair inside an ``nn.Sequential`` folded.

    Folding uses :func:`torch.nn.utils.fusion.fuse_conv_bn_eval` (the BN affine map ``y = γ (x - μ)/σ + β``
    merged into the conv weights and bias, Ioffe & Szegedy 2015 eq. in Alg. 2 applied at inference); the BN
    becomes ``nn.Identity``. Results agree with the unfused model to float32 rounding (~1e-5). The input
    model is not modified.

    Returns:
        ``(fused copy, number of pairs folded)``.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    n = 0
    for mod in model.modules():
        if not isinstance(mod, torch.nn.Sequential):
            continue
        items = list(mod._modules.items())
        for (ka, a), (kb, b) in zip(items[:-1], items[1:]):
            if (
                type(a) is torch.nn.Conv2d
                and type(b) is torch.nn.BatchNorm2d
                and b.track_running_stats
                and b.running_mean is not None
                and a.out_channels == b.num_features
            ):
                mod._modules[ka] = fuse_conv_bn_eval(a, b)
                mod._modules[kb] = torch.nn.Identity()
                n += 1
    return model, n


def fast_argmax(logits: torch.Tensor) -> torch.Tensor:
    """Class index uint8 (N, H, W) of logits (N, K, H, W), K <= 256.

    On CPU the reduction runs on a channels-last copy (classes contiguous in memory), several times
    faster than ``argmax(1)`` over the strided class axis; results are identical.
    """
    if logits.device.type == "cpu":
        logits = logits.contiguous(memory_format=torch.channels_last)
    return logits.argmax(1).to(torch.uint8)


class Prediction(NamedTuple):
    """One result of :meth:`Predictor.predict_many`.

    Attributes:
        index: position of the input in the iterable, 0-based.
        output: ``"labels"`` → uint8 (H, W); ``"proba"`` → float32 (K, H, W) summing to 1 over K;
            ``"logits"`` → float32 (K, H, W). ``None`` when ``error`` is set.
        image: the decoded uint8 (H, W, 3) RGB image (``None`` when it could not be read).
        error: the exception raised while reading this input (``errors="yield"`` only), else ``None``.
    """

    index: int
    output: np.ndarray | None
    image: np.ndarray | None
    error: Exception | None = None


class Predictor:
    """Run a loaded model on RGB images.

    Uses ``torch.inference_mode``, conv/BN folding and channels_last; on CUDA float16 autocast (AMP).
    Images above ``max_pixels`` go through sliding-window inference. When the device runs out of memory
    the predictor falls back to sliding windows with smaller tiles, then (from a GPU) to the CPU; each
    fallback appends a human-readable line to :attr:`notices` and calls ``on_notice`` (the GUI shows it).

    Args:
        loaded: model + card from :func:`segstudio.engine.load_checkpoint`. Its model is not modified
            (the predictor runs a folded copy; with ``fuse_bn=False`` the model itself is moved to ``device``).
        device: ``auto``, ``cpu``, ``cuda``...
        channels_last: run convolutions in NHWC memory format (default on: faster on CPU and CUDA).
        amp: float16 autocast; default on for CUDA, ignored on CPU.
        fuse_bn: fold batch norms into the preceding convolutions (default on).
        compile: wrap the model with ``torch.compile`` (default off; first calls pay the compile time,
            see ``docs/benchmarks.md`` for whether it pays off).
        tile_size: ``(h, w)`` or one int, pixels, of sliding-window tiles.
        tile_overlap: fraction of a tile shared with its neighbour, in ``[0, 1)`` (default 0.25, MONAI's default).
        tile_weights: ``"gaussian"`` (default) or ``"constant"``; see :func:`~segstudio.engine.tiling.tile_weight_map`.
        tile_align: tile offsets are multiples of this many pixels (default 32, a multiple of the total stride
            of every model in the zoo); see :func:`~segstudio.engine.tiling.tile_starts`.
        max_pixels: images with more pixels than this are predicted tile by tile (default 2048²); ``None`` never.
        on_notice: called with each notice string (from the thread that runs the prediction).
        lazy: defer :meth:`prepare` (BN folding, device move, compile) to the first prediction, so a GUI can
            build the predictor on its thread and pay for the preparation on the worker (default off).
        scale: inference scale: the image is resized by this factor (``0 < scale <= 4``; bilinear with
            anti-aliasing) before the model runs, and the logits are resized back (bilinear) to the image's
            size, so every output keeps the input's (H, W). ``1.0`` (default) = as is; ``"auto"`` = see
            :meth:`scale_for` (shrinks photos much larger than the model's training images).
        tta: horizontal-flip test-time augmentation (default off): each model input (whole image, tile or
            rescaled image) is also predicted mirrored left-right, the mirrored logits are flipped back and the
            two are averaged before anything else (tile blending, resizing back, softmax, argmax). About 2×
            the model time; see :meth:`_run_model` for why logits, not probabilities, are averaged.

    Raises:
        ValueError: unavailable device, bad tiling options or a bad ``scale``.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "auto",
        *,
        channels_last: bool = True,
        amp: bool | None = None,
        fuse_bn: bool = True,
        compile: bool = False,
        tile_size: int | tuple[int, int] = 1024,
        tile_overlap: float = 0.25,
        tile_weights: str = "gaussian",
        tile_align: int = 32,
        max_pixels: int | None = 2048 * 2048,
        on_notice: Callable[[str], None] | None = None,
        lazy: bool = False,
        scale: float | str = 1.0,
        tta: bool = False,
    ) -> None:
        self.loaded = loaded
        self.scale = parse_scale(scale)
        self.tta = bool(tta)
        self.device = resolve_device(device)
        self.classes = loaded.classes
        perm = mirror_permutation(self.classes.names)
        self._mirror = None if perm is None else torch.tensor(perm)
        self.channels_last = bool(channels_last)
        self.amp = (self.device.type == "cuda") if amp is None else bool(amp) and self.device.type == "cuda"
        th, tw = (tile_size, tile_size) if isinstance(tile_size, int) else tuple(tile_size)
        if tile_align < 1 or th < 2 * tile_align or tw < 2 * tile_align:
            raise ValueError(f"tile_size must be >= 2 * tile_align ({tile_align}) px, got {tile_size}")
        if not 0.0 <= tile_overlap < 1.0:
            raise ValueError(f"tile_overlap must be in [0, 1), got {tile_overlap}")
        tile_weight_map(2, 2, tile_weights)  # validates the mode
        self.tile_size = (int(th), int(tw))
        self.tile_overlap = float(tile_overlap)
        self.tile_weights = tile_weights
        self.tile_align = int(tile_align)
        self.max_pixels = max_pixels
        self.notices: list[str] = []
        self.on_notice = on_notice
        self._local = threading.local()  # per-thread tile-progress callback, see tile_progress()
        self._fuse_bn, self._compile = bool(fuse_bn), bool(compile)
        self._prepare_lock = threading.Lock()
        self._model: torch.nn.Module | None = None
        self._runner_fn: Callable | None = None
        self._weights: dict[tuple[int, int], torch.Tensor] = {}
        if not lazy:
            self.prepare()

    def prepare(self) -> "Predictor":
        """Fold conv/BN pairs (a copy), move to the device, channels_last, compile: once, thread-safe.

        Called by the constructor unless ``lazy=True``; then the first prediction calls it on whatever thread
        predicts (the GUI builds its predictor lazily so that this ~0.2 s of work runs on the worker thread).
        Returns ``self``.
        """
        with self._prepare_lock:
            if self._model is None:
                model = self.loaded.model
                if self._fuse_bn:
                    model, n = fuse_conv_bn(model)
                    log.debug("folded %d conv/batch-norm pairs", n)
                placed = self._place(model.eval(), self.device)
                self._runner_fn = torch.compile(placed) if self._compile else placed
                self._model = placed
        return self

    @property
    def prepared(self) -> bool:
        """Whether :meth:`prepare` has run (the model is folded and on its device)."""
        return self._model is not None

    @property
    def model(self) -> torch.nn.Module:
        """The prepared inference model (``eval()``, BN folded unless ``fuse_bn=False``, on ``self.device``)."""
        return self.prepare()._model

    @property
    def _runner(self) -> Callable:
        return self.prepare()._runner_fn

    # ------------------------------------------------------------------ internals
    def _place(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        model = model.to(device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _notice(self, text: str) -> None:
        log.warning("%s", text)
        self.notices.append(text)
        if self.on_notice is not None:
            self.on_notice(text)

    def _run_model(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        """The forward boundary: normalised float32 (N, 3, H, W) on CPU → float32 logits (N, K, H, W) on ``device``.

        Every model call goes through here (tests inject out-of-memory errors at this point).

        With ``tta`` (horizontal-flip test-time augmentation: the "Flip" inference strategy of DeepLab v3,
        Chen et al. 2017, and v3+, ECCV 2018; ``ttach``'s ``HorizontalFlip``):
        ``z = (f(x) + flip(f(flip(x)))) / 2`` with ``flip`` mirroring the width axis. The two passes run one
        after the other, so peak activation memory is that of one pass. Logits are averaged, not
        probabilities, because everything downstream of this boundary is defined on logits (tile blending,
        resizing back from ``scale``, :meth:`predict_logits`): averaging here keeps one linear pipeline, so
        TTA of a tiled or rescaled prediction is exactly the mean of the plain pipeline and the same pipeline
        run with the mirrored model ``flip ∘ f ∘ flip``, and ``predict_proba`` stays the softmax of
        ``predict_logits``. The softmax of the logit mean is the normalised geometric mean of the two
        probability maps (mmsegmentation averages the probabilities instead, ``ttach`` the raw outputs);
        ``python -m bench tta`` measures both merges (``docs/benchmarks.md``). Classes that a mirror turns into
        each other (``left_mirror`` ↔ ``right_mirror``, :func:`segstudio.core.labels.mirror_permutation`) swap
        their logit channels in the mirrored pass.
        """
        x = x.to(device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = self.amp and device.type == "cuda"
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            out = self._runner(x)["out"].float()
            if not self.tta:
                return out
            xf = torch.flip(x, dims=(3,))
            if self.channels_last:
                xf = xf.contiguous(memory_format=torch.channels_last)
            mirrored = torch.flip(self._runner(xf)["out"].float(), dims=(3,))
            if self._mirror is not None:  # a mirrored left part is a right part: its logits change channel
                mirrored = mirrored[:, self._mirror]
            return (out + mirrored) * 0.5

    @staticmethod
    def _reduce(logits: torch.Tensor, output: str) -> torch.Tensor:
        """Logits on any device → the requested output on CPU: uint8 labels or float32 proba/logits."""
        if output == "labels":
            return fast_argmax(logits).cpu()
        if output == "proba":
            return torch.softmax(logits, dim=1).cpu()
        return logits.cpu()

    def _switch_to_cpu(self, why: str) -> None:
        self._notice(f"{why}; predicting on the CPU from now on (slower).")
        self._model = self._place(self.model, torch.device("cpu"))
        self._runner_fn = self._model  # a compiled graph is tied to the old device
        self.device = torch.device("cpu")
        self.amp = False
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _infer(self, x: torch.Tensor, output: str, allow_tiles: bool = True) -> torch.Tensor:
        """Normalised (N, 3, H, W) CPU batch → output on CPU, with the out-of-memory fallback chain.

        Batch → one image at a time → sliding window with halving tiles (down to 128 px) → CPU.
        """
        try:
            return self._reduce(self._run_model(x, self.device), output)
        except Exception as exc:  # noqa: BLE001  (only out-of-memory is handled; others re-raised)
            if not is_out_of_memory(exc):
                raise
            err = exc
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        n, _, h, w = x.shape
        if n > 1:
            self._notice(f"out of memory on {self.device} with a batch of {n}; predicting one image at a time")
            return torch.cat([self._infer(x[i : i + 1], output, allow_tiles) for i in range(n)])
        if allow_tiles and max(h, w) > 128:
            tile = min(max(self.tile_size), max(h, w))
            tile = max(128, (tile // 2 + 31) // 32 * 32)
            self._notice(f"out of memory on {self.device} for a {w}x{h} image; predicting in {tile}x{tile} tiles")
            return self._tiled(x[0], output, (tile, tile))[None]
        if self.device.type != "cpu":
            self._switch_to_cpu(f"out of memory on {self.device} even for {w}x{h} tiles")
            return self._infer(x, output, allow_tiles=False)
        raise MemoryError(
            f"out of memory predicting a {w}x{h} image on the CPU; close other programs or use a smaller tile_size"
        ) from err

    def _weight(self, h: int, w: int) -> torch.Tensor:
        key = (h, w)
        if key not in self._weights:
            self._weights[key] = tile_weight_map(h, w, self.tile_weights)
        return self._weights[key]

    def _tiled(self, x: torch.Tensor | np.ndarray, output: str, tile: tuple[int, int] | None = None) -> torch.Tensor:
        """Sliding-window prediction of one image → output (K or -, H, W) on CPU.

        ``x`` is a normalised float32 (3, H, W) CPU tensor or a uint8 (H, W, 3) image; an image is normalised
        tile by tile, so no float copy of the whole image is made. Tiles are visited row by row. Weighted logits are accumulated in a float32 band buffer (K, ≤ 2·tile_h, W)
        on the CPU; rows no later tile touches are normalised by the weight sum and reduced (argmax / softmax)
        at once, so besides the output only the band is held. Out-of-memory inside a tile re-enters the
        fallback chain with smaller tiles.
        """
        is_image = isinstance(x, np.ndarray)
        h, w = x.shape[:2] if is_image else x.shape[1:]
        th, tw = tile or self.tile_size
        th, tw = min(th, h), min(tw, w)
        align = min(self.tile_align, th // 2, tw // 2) or 1
        ys, xs = tile_starts(h, th, self.tile_overlap, align), tile_starts(w, tw, self.tile_overlap, align)
        on_tile, n_tiles, done_tiles = getattr(self._local, "on_tile", None), len(ys) * len(xs), 0
        out: torch.Tensor | None = None
        acc: torch.Tensor | None = None  # (K, rows, W) weighted logit sums for image rows [lo, lo + rows)
        wsum = torch.zeros(0, w)
        lo = 0

        def flush(upto: int) -> None:
            nonlocal acc, wsum, lo, out
            if acc is None or upto <= lo:
                return
            k = upto - lo
            if out is None:
                shape = (h, w) if output == "labels" else (acc.shape[0], h, w)
                out = torch.empty(shape, dtype=torch.uint8 if output == "labels" else torch.float32)
            for r in range(0, k, 128):  # in chunks of rows: the temporaries stay small
                r1 = min(k, r + 128)
                block = (acc[:, r:r1] / wsum[r:r1]).unsqueeze(0)
                out[..., lo + r : lo + r1, :] = self._reduce(block, output)[0]
            acc, wsum, lo = acc[:, k:], wsum[k:], upto

        for y0 in ys:
            flush(y0)
            th_i = min(th, h - y0)  # the last row/column of tiles is clipped to the image
            need = y0 + th_i - lo
            for x0 in xs:
                tw_i = min(tw, w - x0)
                weight = self._weight(th_i, tw_i)
                if is_image:
                    crop = self._input(x[y0 : y0 + th_i, x0 : x0 + tw_i])[None]
                else:
                    crop = x[:, y0 : y0 + th_i, x0 : x0 + tw_i][None]
                logits = self._infer(crop, "logits")[0]
                if acc is None:
                    acc = torch.zeros(logits.shape[0], need, w)
                    wsum = torch.zeros(need, w)
                elif acc.shape[1] < need:
                    grow = need - acc.shape[1]
                    acc = torch.cat([acc, acc.new_zeros(acc.shape[0], grow, w)], dim=1)
                    wsum = torch.cat([wsum, wsum.new_zeros(grow, w)], dim=0)
                r = y0 - lo
                acc[:, r : r + th_i, x0 : x0 + tw_i].addcmul_(logits, weight)
                wsum[r : r + th_i, x0 : x0 + tw_i] += weight
                done_tiles += 1
                if on_tile is not None:
                    on_tile(done_tiles, n_tiles)
        flush(h)
        assert out is not None
        return out

    @contextlib.contextmanager
    def tile_progress(self, fn: Callable[[int, int], None] | None):
        """Within the ``with`` block, sliding-window predictions made by *this thread* call ``fn(done, total)``
        after each tile (the GUI's progress bar for large images; other threads sharing the predictor are not
        affected). ``fn`` may raise (e.g. ``Cancelled``) to stop the prediction between tiles."""
        prev = getattr(self._local, "on_tile", None)
        self._local.on_tile = fn
        try:
            yield self
        finally:
            self._local.on_tile = prev

    def _alone(self, h: int, w: int) -> bool:
        """Whether an (h, w) image is predicted on its own (sliding windows or a scale other than 1)."""
        return self._needs_tiles(h, w) or self.scale_for(h, w) != 1.0

    def _needs_tiles(self, h: int, w: int) -> bool:
        return self.max_pixels is not None and h * w > self.max_pixels

    def _input(self, image: np.ndarray) -> torch.Tensor:
        return to_model_input(image, self.loaded.mean, self.loaded.std)

    # ------------------------------------------------------------------ public API
    def predict_logits(self, images: list[np.ndarray]) -> torch.Tensor:
        """Logits float32 (N, K, H, W) on CPU for N uint8 (H, W, 3) RGB images of equal size.

        Images above ``max_pixels`` are predicted with sliding windows (blended logits).

        Raises:
            ValueError: images of different sizes or not uint8 RGB.
        """
        if len({im.shape for im in images}) != 1:
            raise ValueError("predict_logits needs images of one size; call predict() per image instead")
        return self._predict_arrays(images, "logits")

    def training_image_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of the model's training images from its card (``training_data.image_size`` or
        ``image_size``), or ``None`` when the card does not say."""
        card = self.loaded.card or {}
        size = (card.get("training_data") or {}).get("image_size") or card.get("image_size")
        if not size or len(size) != 2:
            return None
        return int(size[0]), int(size[1])

    def scale_for(self, h: int, w: int) -> float:
        """The inference scale used for an (h, w) image.

        A number given as ``scale`` is used as is. ``"auto"``: ``s = sqrt(train_H * train_W / (h * w))`` (the
        factor that gives the image the pixel count of the model's training images, so objects appear at the
        scale the model learned), used only when ``s < AUTO_SCALE_BELOW`` (the image is much larger) and
        clipped to ``>= 1/16``; otherwise, and when the card has no training image size, ``1.0``. Never enlarges.
        """
        if self.scale != "auto":
            return float(self.scale)
        size = self.training_image_size()
        if size is None or h * w <= 0:
            return 1.0
        s = math.sqrt(size[0] * size[1] / (h * w))
        return max(s, 1.0 / 16) if s < AUTO_SCALE_BELOW else 1.0

    def _predict_arrays(self, images: list[np.ndarray], output: str) -> torch.Tensor:
        h, w = images[0].shape[:2]
        s = self.scale_for(h, w)
        if s != 1.0:
            return self._predict_scaled(images, output, s)
        return self._predict_native(images, output)

    def _predict_scaled(self, images: list[np.ndarray], output: str, s: float) -> torch.Tensor:
        """Resize by ``s`` (bilinear, anti-aliased), predict logits, resize them back to (H, W), reduce."""
        import torch.nn.functional as F

        h, w = images[0].shape[:2]
        sh, sw = max(1, round(h * s)), max(1, round(w * s))
        outs = []
        for im in images:  # one at a time: the full-size logits are K × H × W floats each
            x = F.interpolate(self._input(im)[None], size=(sh, sw), mode="bilinear", antialias=s < 1, align_corners=False)
            logits = self._tiled(x[0], "logits")[None] if self._needs_tiles(sh, sw) else self._infer(x, "logits")
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            outs.append(self._reduce(logits, output))
        return torch.cat(outs)

    def _predict_native(self, images: list[np.ndarray], output: str) -> torch.Tensor:
        h, w = images[0].shape[:2]
        if self._needs_tiles(h, w):
            return torch.stack([self._tiled(im, output) for im in images])
        return self._infer(torch.stack([self._input(im) for im in images]), output)

    def predict_tiled(self, image: np.ndarray, output: str = "labels", tile_size: int | tuple[int, int] | None = None):
        """Sliding-window prediction of one uint8 (H, W, 3) image, whatever its size.

        Args:
            output: ``"labels"`` → uint8 (H, W); ``"proba"`` → float32 (K, H, W); ``"logits"`` → float32 (K, H, W).
            tile_size: overrides the predictor's ``tile_size`` for this call.

        Peak memory: the model's activations for one tile, plus float32 band buffers of about
        K × tile_h × W × 4 bytes (twice that while the band grows), plus the output (H × W bytes for labels,
        K × H × W × 4 for probabilities or logits). The image is normalised tile by tile. Measured figures:
        ``docs/benchmarks.md`` (P5).

        Raises:
            ValueError: unknown output, or not a uint8 RGB image.
        """
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        tile = None if tile_size is None else ((tile_size, tile_size) if isinstance(tile_size, int) else tuple(tile_size))
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
        return self._tiled(image, output, tile).numpy()

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Softmax probabilities float32 (K, H, W) of one uint8 (H, W, 3) RGB image."""
        return self._predict_arrays([image], "proba")[0].numpy()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label map uint8 (H, W) (argmax over classes) of one uint8 (H, W, 3) RGB image."""
        return self._predict_arrays([image], "labels")[0].numpy()

    def predict_many(
        self,
        items: Iterable[str | Path | np.ndarray],
        batch_size: int | None = None,
        output: str = "labels",
        prefetch: int = 4,
        errors: str = "raise",
    ) -> Iterator[Prediction]:
        """Predict a sequence of image files or uint8 (H, W, 3) arrays, in order, as a generator.

        A background thread decodes files (:func:`segstudio.io.read_image`) and normalises them while the
        model runs on earlier ones; consecutive images of one size are stacked into batches of up to
        ``batch_size`` (a size change or a large image ends the batch). Images above ``max_pixels`` are
        predicted alone with sliding windows.

        Args:
            items: paths or arrays (any iterable, consumed lazily).
            batch_size: largest batch, >= 1; ``None``: 4 on a GPU, 1 on the CPU (on the CPU, batching gave no
                speed-up in ``python -m bench predict_folder``: the convolutions already fill the cores, and a
                batch only delays the first result and multiplies the activation memory).
            output: ``"labels"``, ``"proba"`` or ``"logits"`` (see :class:`Prediction`).
            prefetch: decoded images held ahead of the model, >= 1.
            errors: ``"raise"`` (an unreadable file stops the run with its ``ImageReadError``) or ``"yield"``
                (it is yielded as a :class:`Prediction` with ``error`` set and the run goes on; so is an image
                the model fails on, after its batch is retried one image at a time).

        Yields:
            :class:`Prediction` ``(index, output, image, error)``, one per input, in input order.

        Raises:
            ValueError: bad arguments; segstudio.io.ImageReadError: unreadable file with ``errors="raise"``.
        """
        from segstudio.io import read_image

        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else 4
        if batch_size < 1 or prefetch < 1:
            raise ValueError(f"batch_size and prefetch must be >= 1, got {batch_size}, {prefetch}")
        if errors not in ("raise", "yield"):
            raise ValueError(f"errors must be 'raise' or 'yield', got {errors!r}")

        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()
        done = object()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def producer() -> None:
            try:
                for i, item in enumerate(items):
                    try:
                        image = item if isinstance(item, np.ndarray) else read_image(item)
                        # a large image is normalised tile by tile later (no whole-image float copy)
                        x = None if self._alone(*image.shape[:2]) else self._input(image)
                        rec = (i, image, x, None)
                    except Exception as exc:  # noqa: BLE001  (handed to the consumer, which decides)
                        rec = (i, None, None, exc)
                    if not put(rec):
                        return
            except Exception as exc:  # noqa: BLE001  (the iterable itself failed)
                put((-1, None, None, exc))
            put(done)

        thread = threading.Thread(target=producer, name="segstudio-prefetch", daemon=True)
        thread.start()

        def run(batch: list) -> Iterator[Prediction]:
            _, image0, x0, _ = batch[0]
            h, w = image0.shape[:2]
            try:
                if self._alone(h, w):
                    res = self._predict_arrays([image0], output)
                else:
                    res = self._infer(torch.stack([b[2] for b in batch]), output)
            except Exception as exc:  # noqa: BLE001  (errors="yield": one bad image must not end the run)
                if errors == "raise":
                    raise
                if len(batch) > 1:  # find which image failed
                    for b in batch:
                        yield from run([b])
                else:
                    yield Prediction(batch[0][0], None, image0, exc)
                return
            for (i, image, _, _), r in zip(batch, res):
                yield Prediction(i, r.numpy(), image)

        try:
            batch: list = []
            while True:
                rec = q.get()
                if rec is done:
                    break
                i, image, x, exc = rec
                if exc is not None:
                    if i < 0 or errors == "raise":
                        raise exc
                    if batch:
                        yield from run(batch)
                        batch = []
                    yield Prediction(i, None, None, exc)
                    continue
                big = self._alone(*image.shape[:2])
                if batch and (big or batch[0][1].shape != image.shape or len(batch) >= batch_size):
                    yield from run(batch)
                    batch = []
                batch.append(rec)
                if big:
                    yield from run(batch)
                    batch = []
            if batch:
                yield from run(batch)
        finally:
            stop.set()
            thread.join(timeout=5)
