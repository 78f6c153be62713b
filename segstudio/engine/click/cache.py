"""The click model's shared weights and its cache of image encodings (no Qt; called from GUI-thread code and
from workers).

Click-to-segment encodes an image once (the heavy backbone,
:class:`~segstudio.engine.click.session.ClickSession`) and answers each click with the light decoder. The GUI's
click tool keeps the last few encodings here, keyed by :func:`image_key` (path, shape and pixel hash), so an
image prefetched from disk and the same file later opened share one encoding, and an edited file never gets a
stale one. A leaf module: it imports the interactive model only inside the functions that load or use it.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

_CLICK_MODEL_LOCK = threading.Lock()
_CLICK_MODEL: dict[str, object] = {}


def shared_click_model(path=None):
    """The click model (:func:`segstudio.engine.click.session.load_click_model`, default: the shipped one),
    loaded once per process and shared by every canvas; thread-safe (called from workers)."""
    from segstudio.engine.click.session import default_click_model_path, load_click_model

    key = str(path or default_click_model_path())
    with _CLICK_MODEL_LOCK:
        if key not in _CLICK_MODEL:
            _CLICK_MODEL[key] = load_click_model(key)[0]
        return _CLICK_MODEL[key]


_ADAPTED: dict[tuple, object] = {}


def project_click_model(path=None, adapted_file=None, respect_guard: bool = True):
    """The click model a project uses: :func:`shared_click_model` of ``path`` with the project's adapted decoder
    (:func:`segstudio.engine.click.adapt.load_adapted` of ``adapted_file``, e.g.
    ``labels/models/click_adapted.safetensors``) applied when that file exists; the shared model itself when it does
    not (never adapted, or reset), or when its card says the adapted decoder needs more clicks on the person's objects
    than the shared model (:class:`segstudio.engine.click.adapt.AdaptGuard`; ``respect_guard=False``: the adapted decoder
    all the same, e.g. to go on training it). Loaded once per file version (path, mtime, size); thread-safe.

    An unreadable adapted file is ignored (the shared model is returned; the error is logged).
    """
    import logging
    from pathlib import Path

    base = shared_click_model(path)
    if adapted_file is None:
        return base
    f = Path(adapted_file)
    try:
        st = f.stat()
    except OSError:
        return base
    from segstudio.engine.click.adapt import apply_adapted, load_adapted, load_guard

    if respect_guard and not load_guard(f).use_adapted:
        return base
    key = (str(path), str(f), st.st_mtime_ns, st.st_size)
    with _CLICK_MODEL_LOCK:
        if key in _ADAPTED:
            return _ADAPTED[key]

    try:
        state = load_adapted(f)
        model = base if state is None else apply_adapted(base, state)
    except ValueError as exc:
        logging.getLogger(__name__).warning("click model adaptation %s ignored: %s", f, exc)
        return base
    with _CLICK_MODEL_LOCK:
        for k in [k for k in _ADAPTED if k[:2] == key[:2]]:  # older versions of this file
            del _ADAPTED[k]
        _ADAPTED[key] = model
    return model


def image_key(path, image: np.ndarray) -> tuple:
    """Cache key of an image's click-model encoding: ``(str(path), shape, SHA-1 of the pixels)``.

    Keyed by content, not by file name or array identity: an image prefetched from disk and the same file
    later opened as a :class:`~segstudio.core.Document` share the key, while a file edited or replaced in
    between gets a new one (its old encoding is never served). Hashing costs about 2 ms per megapixel.

    Args:
        path: the image's path (any ``os.PathLike`` or str).
        image: uint8 (H, W, 3) RGB.
    """
    data = memoryview(np.ascontiguousarray(image)).cast("B")
    return str(path), tuple(image.shape), hashlib.sha1(data, usedforsecurity=False).hexdigest()


def connected_to_clicks(mask: np.ndarray, clicks) -> np.ndarray:
    """Keep the parts of a click model's ``mask`` (bool (H, W)) that hold a positive click (8-connected): specks far
    from the clicks are dropped. ``clicks``: objects with ``y``, ``x`` and ``positive``."""
    import cv2

    pos = [(c.y, c.x) for c in clicks if c.positive and 0 <= c.y < mask.shape[0] and 0 <= c.x < mask.shape[1]]
    if not mask.any() or not pos:
        return mask
    _, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = {int(comp[y, x]) for y, x in pos if mask[y, x]}
    return np.isin(comp, list(keep)) & mask if keep else np.zeros_like(mask)


class EncodingCache:
    """An LRU cache of click-model encodings (``ClickSession`` objects) keyed by :func:`image_key`.

    Iterating it gives the keys, oldest first; ``key in cache`` and ``len(cache)`` work as for a dict.

    Args:
        size: how many encodings are kept (the least recently stored or touched one goes first).
    """

    def __init__(self, size: int = 3) -> None:
        self.size = int(size)
        self._sessions: OrderedDict[tuple, object] = OrderedDict()
        self._keys: dict[int, tuple[weakref.ref, tuple]] = {}  # id(image) -> (weak image, image_key)

    def key(self, path, image: np.ndarray) -> tuple:
        """:func:`image_key` of ``image``, hashed once per image array (remembered while the array lives)."""
        entry = self._keys.get(id(image))
        if entry is not None and entry[0]() is image:
            return entry[1]
        key = image_key(path, image)
        self._keys = {i: e for i, e in self._keys.items() if e[0]() is not None}  # drop entries of freed images
        self._keys[id(image)] = (weakref.ref(image), key)
        return key

    def get(self, key: tuple | None):
        """The encoding stored under ``key``, or ``None``."""
        return self._sessions.get(key) if key is not None else None

    def put(self, key: tuple, session) -> None:
        """Store ``session`` under ``key`` as the most recent; the oldest go beyond :attr:`size`."""
        self._sessions[key] = session
        self._sessions.move_to_end(key)
        while len(self._sessions) > self.size:
            self._sessions.popitem(last=False)

    def touch(self, key: tuple) -> None:
        """Mark ``key``'s encoding as the most recently used (the last to be evicted)."""
        self._sessions.move_to_end(key)

    def __contains__(self, key) -> bool:
        return key in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[tuple]:
        return iter(list(self._sessions))


__all__ = ["EncodingCache", "connected_to_clicks", "image_key", "project_click_model", "shared_click_model"]
