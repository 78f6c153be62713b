"""Click to segment (:class:`ClickTool`): clicks on an object → the click model's mask → one undo step.

The model's weights and its cache of image encodings are the engine's (:mod:`segstudio.engine.click.cache`);
this module holds the GUI side: the clicks, the mask preview, the encode / prefetch / decode jobs.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem

from segstudio.core import IGNORE_INDEX, Document, Patch
from segstudio.engine.click import adapt_policy
from segstudio.engine.click.cache import EncodingCache, connected_to_clicks, image_key, project_click_model, shared_click_model
from segstudio.gui.tools.base import Tool, ToolHost, ToolId
from segstudio.gui.workers import Job

log = logging.getLogger(__name__)


class _ClickToolFilter(QObject):
    """Routes to a :class:`ClickTool`, while it is the canvas's tool, what the canvas does not forward to tools:
    right-button presses on the viewport (negative clicks; the canvas would pan) and Enter / Backspace while
    clicks are pending (the window's "Close polygon" shortcut would take Enter first)."""

    _KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Backspace)

    def __init__(self, tool: ClickTool) -> None:
        super().__init__(tool.host.viewport())
        self.tool = tool

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        tool, cv = self.tool, self.tool.host
        if cv.active_tool is not tool or cv.doc is None:
            return False
        t = event.type()
        if t in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick) \
                and event.button() == Qt.MouseButton.RightButton:
            if t != QEvent.Type.MouseButtonRelease:
                p = cv.mapToScene(event.position().toPoint())
                tool.add_click(p.y() - 0.5, p.x() - 0.5, positive=False)
            return True
        if t == QEvent.Type.ShortcutOverride and event.key() in self._KEYS and tool.clicks:
            event.accept()  # deliver it as a key press to the canvas (→ ClickTool.key), not to a shortcut
            return True
        return False


class ClickTool(Tool):
    """Click to segment: left click adds a positive click (on the object), right click (or Shift + left
    click) a negative one; the class-agnostic click model (:mod:`segstudio.models.clicknet`, trained as in
    RITM, Sofiiuk et al., ICIP 2022) shows the object mask after each click; Enter writes it into the
    current class as one undo step; Backspace removes the last click; Esc drops them all.

    The image is encoded once, in a worker, when the tool is switched on or an image is shown while it is
    on (:class:`segstudio.engine.click.session.ClickSession`); each click then only runs the light decoder,
    also in a worker. The previous mask is fed back with every click. When the first click falls on pixels
    already of the current class (e.g. a prediction), that region is the starting mask, so clicks correct it;
    its pixels the final mask drops become unlabelled on Enter.

    **Prefetch.** Once the tool has been switched on in this canvas (:attr:`used`), every image shown is
    encoded in a worker even while another tool is on, and once the shown image's encoding is ready the
    *next* image — the one Next / Right would open (:meth:`ToolHost.next_image_path <segstudio.gui.tools.base.ToolHost.next_image_path>`, i.e. the project state's
    :meth:`~segstudio.gui.state.ProjectState.next_path`) — is read and encoded in a worker too, so opening
    it needs no new encode. A canvas on which the tool was never switched on encodes nothing. Encodings are
    kept in an LRU cache of :attr:`CACHE` images (previous, current, next) keyed by :func:`~segstudio.engine.click.cache.image_key` (path,
    shape and pixel hash: an edited or replaced file is encoded anew, never served stale).

    **Learning from the user's objects** (issue 34; Kontogianni et al., ECCV 2020). Every object applied with
    Enter is kept (the last :attr:`ADAPT_KEEP` of the folder) and the click decoder is adapted on them in a worker
    (:func:`~segstudio.engine.click.adapt.adapt_click_decoder`, :attr:`ADAPT_SECONDS` s, encoder frozen so the cached
    encodings stay valid); the adapted weights are saved with the project
    (``labels/models/click_adapted.safetensors``) and used for the folder's images from then on, also after a
    restart. :meth:`reset_adaptation` deletes them. :attr:`adapt_online` switches it off.

    Attributes:
        clicks: the clicks of the object in progress.
        mask: bool (H, W) current object mask, or ``None`` before the first answer.
        model_path: weights to load (``None``: the shipped model).
        used: the tool has been switched on (with an image shown) on this canvas.
        encodes: how many images this tool has encoded (shown + prefetched).
        hits: how many times a shown image's encoding was found in the cache (prefetched or kept).
        adapt_online: adapt the click decoder after each applied object.
        adaptations: how many adaptation jobs have finished.
    """

    name = ToolId.CLICK
    label = "Click to segment (left: object, right / Shift+left: not object, Enter: apply)"
    shortcut = "C"
    mouse_help = ("click to segment: left click on the object, right click (or Shift + left) where it is not, "
                  "Enter applies, Backspace removes the last click")
    CACHE = 3
    JOB_PREDICT = "click:predict"
    JOB_PREFETCH = "click:prefetch"
    JOB_ADAPT = "click:adapt"
    ADAPT_KEEP = adapt_policy.KEEP_OBJECTS
    ADAPT_SECONDS = adapt_policy.ADAPT_SECONDS

    def __init__(self, host: ToolHost) -> None:
        super().__init__(host)
        self.clicks: list = []
        self.mask: np.ndarray | None = None
        self.model_path = None
        self.used = False
        self.encodes = 0
        self.hits = 0
        self._doc: Document | None = None
        self._base: np.ndarray | None = None  # the existing region the clicks correct
        self.encodings = EncodingCache(self.CACHE)  # the engine's LRU of image encodings (segstudio.engine.click.cache)
        self._announce = False  # say "ready" when the encoding the person waits for arrives
        self._prefetched: dict[str, tuple[tuple, tuple]] = {}  # path -> (file stat, image_key) of prefetches
        self._prefetch_again = False
        self._prefetch_path = None
        self._hit_doc: Document | None = None
        self._dirty = False
        self._item: QGraphicsPixmapItem | None = None
        self.adapt_online = True
        self.adaptations = 0
        self._finished: list = []  # AdaptExample of the objects applied in _finished_folder
        self._finished_folder = None
        self._adapt_cache: dict = {}
        self._adapt_again = False
        self._adapt_stop = {"stop": False}  # replaced (and the old one set) by reset_adaptation
        self._filter = _ClickToolFilter(self)
        host.viewport().installEventFilter(self._filter)
        host.installEventFilter(self._filter)

    # -- sessions ---------------------------------------------------------------------------
    def cache_key(self, doc: Document | None) -> tuple | None:
        """:func:`~segstudio.engine.click.cache.image_key` of ``doc``'s image (hashed once per image array), or
        ``None`` for no document."""
        return None if doc is None else self.encodings.key(doc.path, doc.image)

    def session(self, doc: Document | None = None):
        """The encoded :class:`~segstudio.engine.click.session.ClickSession` of ``doc`` (default: the shown
        one), or ``None`` while it is being computed."""
        k = self.cache_key(doc or self.host.doc)
        return self.encodings.get(k)

    def _store(self, k: tuple, session) -> None:
        self.encodings.put(k, session)

    def ensure(self, quiet: bool = False) -> None:
        """Start encoding the shown image in a worker, unless cached or already running; once it is encoded,
        prefetch the next image (:meth:`prefetch`). ``quiet``: no status-bar message (tool not on)."""
        doc = self.host.doc
        k = self.cache_key(doc)
        if k is None:
            return
        if k in self.encodings:
            self.encodings.touch(k)  # the shown image's encoding is the last to be evicted
            if doc is not self._hit_doc:
                self._hit_doc = doc
                self.hits += 1
            self.prefetch()
            return
        name = f"click:encode:{k}"
        if self.host.jobs.running(name):
            return
        if self.host.jobs.running(self.JOB_PREFETCH) and self._prefetch_path == doc.path:
            if not quiet:  # being prefetched: its end hands the encoding over (or encodes anew if the file changed)
                self._announce = True
                self.host.hint.emit("click-to-segment: encoding the image…")
            return
        image, path, adapted = doc.image, self.model_path, self.adapted_file()

        def work(job: Job):
            from segstudio.engine.click.session import ClickSession

            job.report(0, 1, "encoding the image for click-to-segment")
            return k, ClickSession(project_click_model(path, adapted), image)

        self.host.jobs.start(name, work, lambda payload: self._on_session(*payload))
        if not quiet:
            self._announce = True
            self.host.hint.emit("click-to-segment: encoding the image…")

    def _on_session(self, k: tuple, session) -> None:
        self.encodes += 1
        self._store(k, session)
        if self._ready(k):
            self.prefetch()

    def _ready(self, k: tuple) -> bool:
        """An encoding ``k`` arrived: when it is the shown image's, say so and answer pending clicks (True)."""
        if k != self.cache_key(self.host.doc):
            return False
        self._hit_doc = self.host.doc
        if self.host.active_tool is self and self._announce:  # only when the person is waiting for it
            self._announce = False
            self.host.hint.emit("click-to-segment ready: left click = object, right click = not object, Enter = apply")
        if self.clicks:
            self._request()
        return True

    def prefetch(self) -> None:
        """Encode the next image (:meth:`ToolHost.next_image_path <segstudio.gui.tools.base.ToolHost.next_image_path>`) in a worker, once the tool has been
        used and the shown image is encoded; nothing when there is no next image, its encoding is cached,
        or a prefetch runs (that one checks again when it ends). The file is read and hashed
        (:func:`~segstudio.engine.click.cache.image_key`) in the worker; an image the project already has open is used as it is. An
        unreadable file is skipped quietly (opening it reports why)."""
        if not self.used:
            return
        if self.host.jobs.running(self.JOB_PREFETCH):
            self._prefetch_again = True
            return
        path = self.host.next_image_path()
        current = self.cache_key(self.host.doc)
        if path is None or current is None or current not in self.encodings:
            return
        doc = self.host.loaded_document(path)
        if doc is not None:
            stat, key, image = None, self.cache_key(doc), doc.image
            if key in self.encodings:
                return
        else:
            try:
                st = path.stat()
            except OSError:
                return  # gone: opening it will say why
            stat, key, image = (st.st_mtime_ns, st.st_size), None, None
            seen = self._prefetched.get(str(path))
            if seen is not None and seen[0] == stat and seen[1] in self.encodings:
                return
        known, model_path, adapted = set(self.encodings), self.model_path, self.adapted_file()

        def work(job: Job):
            from segstudio.engine.click.session import ClickSession
            from segstudio.io import ImageReadError, read_image

            job.report(0, 1, f"click-to-segment: prefetching {path.name}")
            try:
                img = image if image is not None else read_image(path)
            except ImageReadError as exc:  # opening that image will say so; a prefetch stays quiet
                log.info("click-to-segment: not prefetching %s: %s", path, exc)
                return None, None
            k = key if key is not None else image_key(path, img)
            if k in known:
                return k, None
            return k, ClickSession(project_click_model(model_path, adapted), img)

        def on_result(payload) -> None:
            k, session = payload
            if k is None:
                return
            if stat is not None:
                self._prefetched = {str(path): (stat, k)}
            if session is not None:
                self.encodes += 1
                self._store(k, session)
                log.debug("click-to-segment: prefetched %s", path)
                if self._ready(k):  # the user already moved to it: now prefetch the one after it
                    self._prefetch_again = True

        def on_done() -> None:
            self._prefetch_path = None
            doc = self.host.doc
            if doc is not None and self.cache_key(doc) not in self.encodings:
                self.ensure(quiet=self.host.active_tool is not self)  # moved on to an image it did not cover
            elif self._prefetch_again:
                self._prefetch_again = False
                self.prefetch()

        self._prefetch_again = False
        self._prefetch_path = path
        self.host.jobs.start(self.JOB_PREFETCH, work, on_result, on_done)

    # -- clicks -----------------------------------------------------------------------------
    def press(self, y: float, x: float) -> None:
        shift = bool(QGuiApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.add_click(y, x, positive=not shift)

    def add_click(self, y: float, x: float, positive: bool = True) -> bool:
        """Add a click at image position ``(y, x)`` (float px, pixel centres at integers) and ask the model.

        Returns False (with a status message) outside the image or with no image shown.
        """
        from segstudio.engine.click.protocol import Click

        doc = self.host.doc
        if doc is None:
            return False
        iy, ix = int(round(y)), int(round(x))
        h, w = doc.shape
        if not (0 <= iy < h and 0 <= ix < w):
            return False
        if doc is not self._doc:
            self.cancel()
            self._doc = doc
        if not self.clicks and positive:
            value = self.value()
            if 0 <= value < doc.classes.num_classes and doc.labels[iy, ix] == value:
                import cv2

                _, comp = cv2.connectedComponents((doc.labels == value).astype(np.uint8), connectivity=8)
                self._base = comp == comp[iy, ix]
                self.mask = self._base.copy()
        self.clicks.append(Click(iy, ix, bool(positive)))
        self._request()
        self._show()
        return True

    def _request(self) -> None:
        """Run the decoder for the current clicks in a worker (once the image is encoded); a click that
        arrives while it runs is answered right after."""
        doc = self._doc
        session = self.session(doc)
        if session is None:
            self.ensure()
            return
        if self.host.jobs.running(self.JOB_PREDICT):
            self._dirty = True
            return
        clicks, prev = list(self.clicks), (None if self.mask is None else self.mask.copy())
        self._dirty = False

        def work(job: Job):
            return session.predict(clicks, prev)

        self.host.jobs.start(self.JOB_PREDICT, work, lambda m: self._on_mask(doc, clicks, m), self._on_done)

    def _on_mask(self, doc: Document, clicks: list, mask: np.ndarray) -> None:
        if doc is not self._doc or clicks != self.clicks[: len(clicks)]:
            return  # the clicks were dropped or belong to another image
        self.mask = mask = connected_to_clicks(mask, clicks)
        self._show()
        self.host.status.emit(f"click-to-segment: {int(mask.sum())} px from {len(clicks)} click(s); Enter applies")

    def _on_done(self) -> None:
        if self._dirty and self.clicks:
            self._request()

    @property
    def busy(self) -> bool:
        """True while the answer to the last click is not shown yet."""
        return bool(self.clicks) and (self._dirty or self.host.jobs.running(self.JOB_PREDICT) or self.session(self._doc) is None)

    def commit(self) -> Patch | None:
        """Write the mask into the current class as one undo step (pixels of the corrected starting region
        it drops become unlabelled) and end the object. Returns the patch, or ``None``."""
        doc, mask, base = self._doc, self.mask, self._base
        if doc is None or mask is None or doc is not self.host.doc:
            self.host.status.emit("click on the object first (and wait for its mask)")
            return None
        value = self.value()
        if not self.check_value(doc, value):
            return None
        from segstudio.core.history import make_patch

        region = mask if base is None else (mask | base)
        clicks = list(self.clicks)
        self.cancel()
        if not region.any():
            return None
        r0, r1 = np.flatnonzero(region.any(1))[[0, -1]]
        c0, c1 = np.flatnonzero(region.any(0))[[0, -1]]
        after = doc.labels[r0 : r1 + 1, c0 : c1 + 1].copy()
        if base is not None:
            after[base[r0 : r1 + 1, c0 : c1 + 1] & ~mask[r0 : r1 + 1, c0 : c1 + 1]] = IGNORE_INDEX
        after[mask[r0 : r1 + 1, c0 : c1 + 1]] = value
        footprint = (int(r0), int(c0), region[r0 : r1 + 1, c0 : c1 + 1])  # confirmed, changed or not
        patch = doc.apply_patch(make_patch(doc.labels, int(r0), int(c0), after), touched=footprint)
        if self.adapt_online and mask.any():
            self._learn(doc, mask, clicks)
        return patch

    # -- learning from the applied objects (online adaptation) -------------------------------
    def adapted_file(self):
        """The open project's adapted click decoder (``<folder>/labels/models/click_adapted.safetensors``), or
        ``None`` when no project folder is open (then nothing is adapted)."""
        folder = getattr(getattr(self.host, "state", None), "folder", None)
        if folder is None:
            return None
        from segstudio.engine.click.adapt import adapted_path

        return adapted_path(folder)

    def _learn(self, doc: Document, mask: np.ndarray, clicks: list) -> None:
        """Keep an applied object and adapt the decoder on the kept ones in a worker (again when one runs)."""
        from segstudio.engine.click.adapt import AdaptExample, prune_cache

        f = self.adapted_file()
        if f is None:
            return
        if f != self._finished_folder:
            self._finished, self._adapt_cache, self._finished_folder = [], {}, f
        ignore = doc.labels == IGNORE_INDEX if (doc.labels == IGNORE_INDEX).any() else None
        self._finished = [*self._finished, AdaptExample(doc.image, mask.copy(), clicks, ignore)][-self.ADAPT_KEEP:]
        self._adapt_cache = prune_cache(self._adapt_cache, self._finished)
        self._start_adapt()

    def _start_adapt(self) -> None:
        if self.host.jobs.running(self.JOB_ADAPT):
            self._adapt_again = True
            return
        examples, f, model_path, cache = list(self._finished), self._finished_folder, self.model_path, self._adapt_cache
        if not examples or f is None:
            return
        seconds, stop = self.ADAPT_SECONDS, self._adapt_stop

        def work(job: Job):
            from segstudio.engine.click.adapt import adapt_click_decoder, guard_new_examples, load_guard, save_adapted

            job.report(0, 1, "click-to-segment: learning from your objects")
            # continue from the project's adapted decoder, whether or not the guard lets it answer clicks
            start = project_click_model(model_path, f, respect_guard=False)
            guard = load_guard(f)
            # test, then train: each new object first scores both decoders (NoC@85, each on its own errors)
            guard_new_examples(guard, start, shared_click_model(model_path), examples, cache)
            state, info = adapt_click_decoder(start, examples, seconds=seconds, cache=cache,
                                              cancelled=lambda: job.cancel_token.cancelled or stop["stop"])
            if job.cancel_token.cancelled or stop["stop"] or not info["steps"]:
                return None
            save_adapted(f, state, {**info, "objects_kept": len(examples), "guard": guard.to_json()})
            return f, project_click_model(model_path, f), info

        def on_result(payload) -> None:
            if payload is None:
                return
            f_done, model, info = payload
            if stop["stop"]:  # reset while it ran: what it saved goes too
                from segstudio.engine.click.adapt import reset_adapted

                reset_adapted(f_done)
                return
            self.adaptations += 1
            self._use_model(f_done, model)
            log.info("click-to-segment adapted on %d object(s): %s", len(examples), info)

        def on_done() -> None:
            if self._adapt_again:
                self._adapt_again = False
                self._start_adapt()

        self._adapt_again = False
        self.host.jobs.start(self.JOB_ADAPT, work, on_result, on_done)

    def _use_model(self, adapted_file, model) -> None:
        """Answer clicks on the cached images with ``model`` (the same encodings: encoder and neck are never
        adapted) while ``adapted_file`` is still the open project's."""
        if adapted_file != self.adapted_file():
            return
        for k in self.encodings:
            session = self.encodings.get(k)
            if session is not None:
                session.model = model

    def reset_adaptation(self) -> bool:
        """Forget what the click model learnt in the shown image's project: delete its adapted decoder and answer
        with the shipped (or :attr:`model_path`) model again. True when adapted weights were deleted."""
        from segstudio.engine.click.adapt import reset_adapted

        f = self.adapted_file()
        if f is None:
            return False
        self._adapt_stop["stop"] = True  # a running adaptation stops and its result is dropped
        self._adapt_stop = {"stop": False}
        self._adapt_again = False
        if f == self._finished_folder:
            self._finished, self._adapt_cache = [], {}
        deleted = reset_adapted(f)
        self._use_model(f, shared_click_model(self.model_path))
        self.host.status.emit("click-to-segment: adaptation reset" if deleted else "click-to-segment: nothing adapted yet")
        return deleted

    def undo_click(self) -> None:
        """Remove the last click (the mask is recomputed; with no click left everything is dropped)."""
        if not self.clicks:
            return
        self.clicks.pop()
        if not self.clicks:
            self.cancel()
            return
        self.mask = None if self._base is None else self._base.copy()
        self._request()
        self._show()

    def key(self, key: int) -> bool:  # type: ignore[override]
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.clicks:
            self.commit()
            return True
        if key == Qt.Key.Key_Backspace and self.clicks:
            self.undo_click()
            return True
        return False

    # -- view -------------------------------------------------------------------------------
    def _show(self) -> None:
        """Draw the mask (current class colour, half transparent) and the clicks (green +, red −)."""
        if self._item is None:
            self._item = QGraphicsPixmapItem()
            self._item.setZValue(50)
            self.host.scene().addItem(self._item)
        doc = self._doc
        if doc is None or not self.clicks or doc is not self.host.doc:
            self._item.hide()
            return
        h, w = doc.shape
        rgba = np.zeros((h, w, 4), np.uint8)
        if self.mask is not None:
            v = self.value()
            color = doc.classes.colors[v] if 0 <= v < doc.classes.num_classes else (255, 255, 0)
            rgba[self.mask] = (*color, 140)
        r = max(2, int(round(3 / max(self.host.transform().m11(), 1e-3))))
        for c in self.clicks:
            rgba[max(c.y - r, 0) : c.y + r + 1, max(c.x - r, 0) : c.x + r + 1] = (0, 220, 0, 255) if c.positive else (230, 0, 0, 255)
        self._item.setPixmap(QPixmap.fromImage(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()))
        self._item.show()

    # -- life cycle -------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        return False  # a pending object is not painted yet: undo of earlier edits may go ahead

    def activate(self, document_changed: bool = False) -> None:
        """Switched on: encode the shown image and say when it is ready. When only the shown image changed, encode
        it quietly (the message of whoever changed it, e.g. the review queue's, stays on the status bar)."""
        self.used = True
        if self._doc is not self.host.doc:
            self.cancel()
        self._announce = not document_changed
        self.ensure(quiet=document_changed)

    def document_shown(self) -> None:
        if self.used:  # used in this session: keep the shown (and next) image encoded for a switch back
            self.ensure(quiet=True)

    def cancel(self) -> None:
        self.clicks, self.mask, self._base, self._doc, self._dirty = [], None, None, None, False
        if self._item is not None:
            self._item.hide()

    def finish(self) -> None:
        if self._doc is not self.host.doc:
            self.cancel()

    def deactivate(self) -> None:
        self.cancel()


__all__ = ["ClickTool", "connected_to_clicks", "image_key", "shared_click_model"]
