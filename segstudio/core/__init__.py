"""Pure-numpy heart of SegStudio: label maps, classes, paint operations and undo history.

Nothing in this package imports torch or Qt (checked by import-linter).
"""

from segstudio.core.labels import (
    IGNORE_INDEX,
    ClassSpec,
    blend_overlay,
    colorize,
    default_palette,
    new_label_map,
    validate_label_map,
)
from segstudio.core.history import History, Patch, merge_patches
from segstudio.core.paint import dab_mask, flood_fill, paint_dab, paint_stroke
from segstudio.core.document import Document, DocumentEvent

__all__ = [
    "IGNORE_INDEX",
    "ClassSpec",
    "Document",
    "DocumentEvent",
    "History",
    "Patch",
    "blend_overlay",
    "colorize",
    "dab_mask",
    "default_palette",
    "flood_fill",
    "merge_patches",
    "new_label_map",
    "paint_dab",
    "paint_stroke",
    "validate_label_map",
]
