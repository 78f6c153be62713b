"""SegStudio: a desktop app and headless engine for semantic segmentation.

Layers (see ``../shared/ARCHITECTURE.md``): ``core`` (numpy only) <- ``io`` <- ``models``/``data``/
``losses``/``metrics`` <- ``engine`` <- ``cli`` / ``gui`` (the only package that imports Qt).
"""

__version__ = "0.1.0"
