"""The images a person set aside for validation: ``labels/validation.txt`` of an image folder (one file name a line).

Every other corrected image trains the next model version (issue 29: no image is withheld behind the person's
back); the images listed here never train and draw the fine-tune's validation curve
(:func:`segstudio.engine.finetune.user_validation_split`). The GUI's Edit ▸ Set aside for validation toggles an image.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.layout import LABELS_DIRNAME, VALIDATION_LIST_FILENAME


def validation_list_path(folder: str | Path) -> Path:
    """``folder/labels/validation.txt``."""
    return Path(folder) / LABELS_DIRNAME / VALIDATION_LIST_FILENAME


def read_validation_list(folder: str | Path) -> set[str]:
    """File names set aside for validation in image folder ``folder`` (empty when there is no list).

    Raises:
        ValueError: the list is not UTF-8 text (the message names the file and what to do).
        OSError: it cannot be read (permissions).
    """
    path = validation_list_path(folder)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no list (or no labels/ folder at all)
        return set()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: validation list is not UTF-8 text ({exc.reason}); write one image file name a line") from exc
    return {line.strip() for line in text.splitlines() if line.strip()}


def set_validation(folder: str | Path, name: str, aside: bool) -> set[str]:
    """Add (``aside``) or remove image file ``name`` from ``folder``'s validation list, written atomically (the file
    is removed when the list becomes empty). Returns the new list.

    Raises:
        ValueError: ``name`` is empty or holds a path separator or a line break; the list is not UTF-8 text.
    """
    if not name or any(c in name for c in "/\\\n\r"):
        raise ValueError(f"not an image file name: {name!r}")
    names = read_validation_list(folder)
    names = names | {name} if aside else names - {name}
    path = validation_list_path(folder)
    if names:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, "".join(f"{n}\n" for n in sorted(names)).encode("utf-8"))
    elif path.exists():
        path.unlink()
    return names
