"""Model versions of an image folder: ``<folder>/labels/models/vNNN/`` (one per fine-tune)."""

from __future__ import annotations

import re
from pathlib import Path

from segstudio.io.layout import WEIGHTS_FILENAME, ProjectLayout

_VERSION = re.compile(r"^v(\d{3,})$")


def versions_dir(folder: str | Path) -> Path:
    """``<folder>/labels/models``."""
    return ProjectLayout(folder).models_dir


def list_versions(folder: str | Path) -> list[Path]:
    """Finished versions (folders holding ``model.safetensors``), oldest first."""
    root = versions_dir(folder)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _VERSION.match(p.name) and (p / WEIGHTS_FILENAME).is_file()]
    return sorted(found, key=lambda p: int(_VERSION.match(p.name).group(1)))


def next_version_dir(folder: str | Path) -> Path:
    """A new, not yet existing ``vNNN`` folder path (numbers never reused, even for failed runs)."""
    root = versions_dir(folder)
    used = [int(m.group(1)) for p in (root.iterdir() if root.is_dir() else []) if (m := _VERSION.match(p.name))]
    return root / f"v{max(used, default=0) + 1:03d}"
