"""Atomic file writes: temp file in the same folder, fsync, ``os.replace``."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

_TMP_NAME_CHARS = 64
"""Characters of the destination name kept in the temp file's name: a 255-byte file name plus the
temp prefix/suffix would exceed NAME_MAX, so long names are shortened there (only there)."""


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:_TMP_NAME_CHARS]}.", suffix=".tmp", dir=path.parent)
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
