"""Atomic file writes: temp file in the same folder, fsync, ``os.replace``; sweeping temps a kill left behind."""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

_TMP_NAME_CHARS = 64
"""Characters of the destination name kept in the temp file's name: a 255-byte file name plus the
temp prefix/suffix would exceed NAME_MAX, so long names are shortened there (only there)."""


TEMP_SUFFIX = ".tmp"
"""Suffix of the temp files of :func:`atomic_write_bytes` (names ``.<name>.<8 random chars>.tmp``)."""

STALE_TEMP_AGE_S = 3600.0
"""Default age (seconds since the last write) before :func:`sweep_stale_temps` removes a temp file: a save
in progress in another process rewrites its temp within seconds, so an hour-old one is left by a killed save."""

_TEMP_RE = re.compile(r"\.(?P<name>.{1,255})\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + r"\Z", re.DOTALL)
"""Exactly the names ``tempfile.mkstemp(prefix=temp_prefix(name), suffix=TEMP_SUFFIX)`` makes: its random part is
8 characters of ``a-z0-9_`` (CPython's ``tempfile._RandomNameSequence``)."""


def temp_prefix(name: str) -> str:
    """The ``mkstemp`` prefix of the temp file that will replace the file called ``name`` (hidden, name shortened)."""
    return f".{name[:_TMP_NAME_CHARS]}."


def is_temp_name(name: str) -> bool:
    """True when ``name`` (a bare file name) has exactly the form of an atomic-save temp file,
    ``.<name>.<8 chars a-z0-9_>.tmp``; ``.foo.tmp`` or ``notes.tmp`` do not."""
    return _TEMP_RE.match(name) is not None


class DiskFullError(OSError):
    """The disk (or quota) filled up during a save; the previous file is untouched and the temp file removed."""


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask is process-wide and not thread-safe


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one.

    The bytes go to a temporary file in the destination folder, are flushed and fsynced, then
    moved over ``path`` with :func:`os.replace` (atomic on POSIX and Windows); the folder is fsynced
    where the OS allows it. On any error the temporary file is removed and the old file is untouched.

    Raises:
        DiskFullError: (an ``OSError`` with ``errno`` ``ENOSPC``/``EDQUOT``/``EFBIG``) when the disk, the
            quota or the file-size limit ran out; the message says so, names the file and how many bytes
            were needed. The temporary file is removed, the previous file untouched.
        OSError: when the folder cannot be written (permissions, read-only...), after cleanup.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp creates 0600 files; give the result the usual permissions (0666 minus umask),
        # or keep those of the file being replaced.
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise DiskFullError(
                exc.errno,
                f"{path}: not saved, the disk is full ({os.strerror(exc.errno)}) while writing {len(data)} bytes; "
                "the previous file is unchanged. Free some space and save again",
            ) from exc
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
    return path


def sweep_stale_temps(folder: str | os.PathLike, older_than_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove the temp files that saves killed mid-way (SIGKILL, power loss) left in ``folder``; returns them.

    Only entries directly inside ``folder`` that are all of these are removed: named exactly like
    :func:`atomic_write_bytes`' temps (:func:`is_temp_name`: ``.<name>.<8 random chars>.tmp``), regular
    files (never symlinks, folders, FIFOs), and not modified for ``older_than_s`` seconds (so a save
    running in another process keeps its temp). The saved files themselves are never touched: a killed
    save left the previous version in place.

    Never raises: a missing or unreadable folder gives ``[]``; a file that cannot be removed (permissions,
    removed meanwhile) is skipped and logged.
    """
    folder = Path(folder)
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not is_temp_name(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < older_than_s:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:  # its save finished (os.replace) or another sweep got it
            continue
        except OSError as exc:
            log.warning("%s: stale temp file not removed (%s)", entry.path, exc)
            continue
        removed.append(Path(entry.path))
    if removed:
        log.info("removed %d stale temp file(s) left by interrupted saves in %s", len(removed), folder)
    return removed
