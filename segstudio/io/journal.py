"""Crash-safe edit journal: every finished edit is on disk before the app acknowledges it.

One journal per image, ``<image folder>/labels/.journal/<key>.ssj`` (``key`` = SHA-1 of the image's file
name, so long and non-UTF-8 names are fine). The file is append-only:

* a file header ``b"SSJOURNAL1\\n"``;
* then records, each ``b"REC1" | uint32 payload length | uint32 CRC-32 of payload | payload``
  (little endian). The CRC (zlib's CRC-32) lets :func:`read_journal` detect a record torn by a crash
  or a power cut: reading stops at the first record whose length runs past the end of the file or
  whose checksum does not match, and that tail is dropped (it was never acknowledged);
* payload = ``kind (uint8) | y0 | x0 | h | w (uint32 each) | zlib-compressed uint8 (h, w) pixels``;
  the first record is a *base* (``kind 0``: the whole label map, ``y0 = x0 = 0``) and every later one a
  *patch* (``kind 1``: the current content of the box an edit touched), each followed by its *provenance
  patch* (``kind 2``: who decided each pixel of the same box, :mod:`segstudio.core.provenance`), so a stroke that
  only confirmed a prediction (no value changed) is recovered as the person's too. The base also carries the
  image's file name (``uint16`` length + raw bytes, before the pixels) so recovery can check it.

Each append is flushed and ``fsync``-ed before :meth:`Journal.append_patch` returns. Replay
(:func:`replay`) = base, then each patch written into its box in order; because patches hold the
*resulting* pixels (not deltas), replaying undo/redo edits is as exact as replaying strokes.
After a successful save the journal is deleted (:meth:`Journal.clear`); a journal found when an image is
opened means the app did not save before it ended, and the GUI offers recovery.

Hand-written because no maintained library offers a checksummed append-only record file for numpy
patches; the format is ~40 lines and fully covered by tests (torn tails, bit flips, replay).
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segstudio.io.layout import JOURNAL_DIRNAME, ProjectLayout  # noqa: F401  (JOURNAL_DIRNAME re-exported)

log = logging.getLogger(__name__)

FILE_MAGIC = b"SSJOURNAL1\n"
REC_MAGIC = b"REC1"
_REC_HEAD = struct.Struct("<4sII")  # magic, payload length, crc32
_BOX = struct.Struct("<BIIII")  # kind, y0, x0, h, w
KIND_BASE = 0
KIND_PATCH = 1
KIND_PROV = 2
MAX_RECORD_BYTES = 1 << 31
"""A record claiming more than this is treated as torn (no label map compresses that badly)."""


class JournalError(ValueError):
    """A journal cannot be used (wrong image, size mismatch, no base record); the message says why."""


def journal_path_for(image_path: str | Path) -> Path:
    """``<folder>/labels/.journal/<sha1 of the file name>.ssj`` for ``image_path``."""
    image_path = Path(image_path)
    key = hashlib.sha1(os.fsencode(image_path.name)).hexdigest()[:20]
    return ProjectLayout.of_image(image_path).journal_dir / f"{key}.ssj"


@dataclass
class JournalContents:
    """What :func:`read_journal` found.

    Attributes:
        name: the image file name stored in the base record (bytes, as on disk), or ``None``.
        base: uint8 (H, W) label map of the base record, or ``None`` when there is none.
        patches: ``(y0, x0, pixels uint8 (h, w))`` in append order.
        prov_patches: ``(y0, x0, provenance uint8 (h, w))`` in append order (journals written before provenance
            patches existed have none).
        good_bytes: file offset just after the last intact record (where appending resumes).
        torn: True when a damaged or incomplete tail was dropped.
    """

    name: bytes | None = None
    base: np.ndarray | None = None
    patches: list[tuple[int, int, np.ndarray]] = field(default_factory=list)
    prov_patches: list[tuple[int, int, np.ndarray]] = field(default_factory=list)
    good_bytes: int = 0
    torn: bool = False

    @property
    def num_edits(self) -> int:
        """Edits recorded after the base (the base itself already holds the first one)."""
        return len(self.patches) + (self.base is not None)


def _encode(kind: int, y0: int, x0: int, pixels: np.ndarray, name: bytes = b"") -> bytes:
    h, w = pixels.shape
    body = _BOX.pack(kind, y0, x0, h, w)
    if kind == KIND_BASE:
        body += struct.pack("<H", len(name)) + name
    payload = body + zlib.compress(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(), 1)
    return _REC_HEAD.pack(REC_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes) -> tuple[int, int, int, np.ndarray, bytes]:
    kind, y0, x0, h, w = _BOX.unpack_from(payload, 0)
    off, name = _BOX.size, b""
    if kind == KIND_BASE:
        (n,) = struct.unpack_from("<H", payload, off)
        name = payload[off + 2 : off + 2 + n]
        off += 2 + n
    elif kind not in (KIND_PATCH, KIND_PROV):
        raise ValueError(f"unknown record kind {kind}")
    pixels = np.frombuffer(zlib.decompress(payload[off:]), dtype=np.uint8)
    if pixels.size != h * w:
        raise ValueError(f"record holds {pixels.size} pixels, header says {h}x{w}")
    return kind, y0, x0, pixels.reshape(h, w).copy(), name


def read_journal(path: str | Path) -> JournalContents:
    """Parse a journal file, dropping a torn or corrupted tail.

    Returns:
        :class:`JournalContents` (empty when the file is missing, empty or not a journal).
    """
    path = Path(path)
    out = JournalContents()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return out
    if not data.startswith(FILE_MAGIC):
        out.torn = bool(data)
        return out
    off = len(FILE_MAGIC)
    out.good_bytes = off
    while off < len(data):
        if len(data) - off < _REC_HEAD.size:
            out.torn = True
            break
        magic, n, crc = _REC_HEAD.unpack_from(data, off)
        start, end = off + _REC_HEAD.size, off + _REC_HEAD.size + n
        if magic != REC_MAGIC or n > MAX_RECORD_BYTES or end > len(data) or zlib.crc32(data[start:end]) != crc:
            out.torn = True
            break
        try:
            kind, y0, x0, pixels, name = _decode(data[start:end])
        except (ValueError, struct.error, zlib.error) as exc:  # checksum fine but content wrong: stop here too
            log.warning("%s: unreadable record at byte %d (%s); later records dropped", path, off, exc)
            out.torn = True
            break
        if kind == KIND_BASE:
            out.base, out.name, out.patches, out.prov_patches = pixels, name, [], []
        elif out.base is not None:
            (out.prov_patches if kind == KIND_PROV else out.patches).append((y0, x0, pixels))
        off = end
        out.good_bytes = off
    if out.torn:
        log.warning("%s: dropped a torn tail of %d bytes (an edit in progress when the app stopped)", path, len(data) - out.good_bytes)
    return out


def _apply_patches(target: np.ndarray, patches: list[tuple[int, int, np.ndarray]], what: str) -> np.ndarray:
    """Write each ``(y0, x0, pixels)`` into ``target`` (in place, in order) and return it.

    Raises:
        JournalError: a patch lies outside ``target``.
    """
    H, W = target.shape
    for y0, x0, pixels in patches:
        h, w = pixels.shape
        if y0 + h > H or x0 + w > W:
            raise JournalError(f"journal {what} at ({y0}, {x0}) size {h}x{w} lies outside the {H}x{W} map")
        target[y0 : y0 + h, x0 : x0 + w] = pixels
    return target


def replay(contents: JournalContents, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The label map uint8 (H, W) the journal describes: the base with every patch written in order.

    Raises:
        JournalError: no base record, the base is not ``shape``, or a patch lies outside the map.
    """
    if contents.base is None:
        raise JournalError("the journal has no base record; nothing to recover")
    labels = contents.base.copy()
    if shape is not None and labels.shape != tuple(shape):
        raise JournalError(f"the journal is for a {labels.shape[1]}x{labels.shape[0]} label map, the image is {shape[1]}x{shape[0]}")
    return _apply_patches(labels, contents.patches, "patch")


def replay_provenance(contents: JournalContents, base_provenance: np.ndarray) -> np.ndarray:
    """The provenance map uint8 (H, W) the journal describes: ``base_provenance`` (who decided the base's pixels)
    with every provenance patch written in order.

    Raises:
        JournalError: ``base_provenance`` is not the base's shape, or a patch lies outside the map.
    """
    prov = np.array(base_provenance, dtype=np.uint8, copy=True)
    if contents.base is not None and prov.shape != contents.base.shape:
        raise JournalError(f"base provenance {prov.shape} does not match the journal's {contents.base.shape} label map")
    return _apply_patches(prov, contents.prov_patches, "provenance patch")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Journal:
    """The append-only edit journal of one image.

    Args:
        image_path: the image whose label edits are journaled.

    Use :meth:`start` with the full label map (on the first edit, or after recovery), then
    :meth:`append_patch` after every finished edit; :meth:`clear` after a successful save.
    Every write is fsynced before the method returns.

    Raises:
        OSError: from any method that writes, when the journal folder cannot be written (the caller
            should tell the user that edits are not crash-protected, and go on).
    """

    def __init__(self, image_path: str | Path) -> None:
        self.image_path = Path(image_path)
        self.path = journal_path_for(self.image_path)
        self._fh = None

    @property
    def started(self) -> bool:
        """True once a base record is in this session's file."""
        return self._fh is not None

    def exists(self) -> bool:
        """True when a journal file is on disk (e.g. left by a crash)."""
        return self.path.is_file()

    def read(self) -> JournalContents:
        return read_journal(self.path)

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def start(self, labels: np.ndarray) -> None:
        """Begin a fresh journal whose base is ``labels`` (uint8 (H, W)); any old journal is replaced."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(FILE_MAGIC + _encode(KIND_BASE, 0, 0, labels, os.fsencode(self.image_path.name)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self._fh = open(self.path, "ab")

    def resume(self, contents: JournalContents) -> None:
        """Keep appending to the journal on disk after recovery, cutting off a torn tail first."""
        self.close()
        self._fh = open(self.path, "r+b")
        self._fh.truncate(contents.good_bytes)
        self._fh.seek(contents.good_bytes)
        os.fsync(self._fh.fileno())

    def append_patch(self, y0: int, x0: int, pixels: np.ndarray, provenance: np.ndarray | None = None) -> None:
        """Durably record that the box at ``(y0, x0)`` now holds ``pixels`` (uint8 (h, w)) and, when given, that
        ``provenance`` (uint8 (h, w)) says who decided them (both records in one write and one ``fsync``).

        Raises:
            RuntimeError: before :meth:`start` / :meth:`resume`.
            ValueError: ``provenance`` is not the shape of ``pixels``.
        """
        if self._fh is None:
            raise RuntimeError("Journal.append_patch before start()")
        if provenance is not None and provenance.shape != pixels.shape:
            raise ValueError(f"provenance {provenance.shape} must be the patch's shape {pixels.shape}")
        if pixels.size:
            data = _encode(KIND_PATCH, int(y0), int(x0), pixels)
            if provenance is not None:
                data += _encode(KIND_PROV, int(y0), int(x0), provenance)
            self._write(data)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def clear(self) -> None:
        """Delete the journal (the labels it protected are saved)."""
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def set_aside(self) -> Path | None:
        """Rename the journal to ``<key>.discarded-N.ssj`` (kept, never deleted: recovery declined); returns the new path."""
        self.close()
        if not self.path.is_file():
            return None
        n = 1
        while (dst := self.path.with_name(f"{self.path.stem}.discarded-{n}.ssj")).exists():
            n += 1
        os.replace(self.path, dst)
        return dst
