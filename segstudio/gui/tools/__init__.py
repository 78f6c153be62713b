"""Labelling tools as small classes: each turns press / move / release on its host (the canvas) into
``segstudio.core`` edits of the shown :class:`~segstudio.core.Document`, one undo step per gesture.

Rooms: :mod:`~segstudio.gui.tools.base` (:class:`ToolId`, the :class:`ToolHost` protocol — exactly what a tool
may use of the canvas —, :class:`ToolJobs`, :class:`Tool`), :mod:`~segstudio.gui.tools.paint` (brush,
eraser, superpixel brush, flood fill), :mod:`~segstudio.gui.tools.region` (polygon, lasso, GrabCut) and
:mod:`~segstudio.gui.tools.click` (click to segment; the click model's encoding cache is the engine's,
:mod:`segstudio.engine.click.cache`).

:data:`TOOL_TABLE` is the one list of tools: their id, label, shortcut, help text and icon are attributes of
each class, read by the tool bar, the Tools menu and the shortcuts help. Heavy work (SLIC superpixels, GrabCut,
the click model) runs in a worker through :class:`ToolJobs`; its result is applied on the GUI thread.
"""

from __future__ import annotations

from segstudio.engine.click.cache import connected_to_clicks, image_key
from segstudio.gui.tools.base import Tool, ToolHost, ToolId, ToolJobs
from segstudio.gui.tools.click import ClickTool
from segstudio.gui.tools.paint import (
    SUPERPIXEL_PREVIEW_MAX_PIXELS,
    BrushTool,
    EraserTool,
    FillTool,
    StrokeTool,
    SuperpixelTool,
)
from segstudio.gui.tools.region import GrabCutTool, LassoTool, PolygonTool, ShapeTool

TOOL_TABLE: tuple[type[Tool], ...] = (
    BrushTool, EraserTool, FillTool, PolygonTool, LassoTool, SuperpixelTool, GrabCutTool, ClickTool,
)
"""Every tool class, in tool-bar order: one per :class:`ToolId` (each carries its label, shortcut, help and icon)."""

TOOL_BRUSH = ToolId.BRUSH
TOOL_ERASER = ToolId.ERASER
TOOL_FILL = ToolId.FILL
TOOL_POLYGON = ToolId.POLYGON
TOOL_LASSO = ToolId.LASSO
TOOL_SUPERPIXEL = ToolId.SUPERPIXEL
TOOL_GRABCUT = ToolId.GRABCUT
TOOL_CLICK = ToolId.CLICK
TOOLS = tuple(cls.name for cls in TOOL_TABLE)
"""The tool ids, in tool-bar order."""


def tool_class(tool: ToolId | str) -> type[Tool]:
    """The class of tool ``tool`` (a :class:`ToolId` or its string).

    Raises:
        KeyError: no such tool.
    """
    for cls in TOOL_TABLE:
        if cls.name == tool:
            return cls
    raise KeyError(tool)


def make_tools(host: ToolHost) -> dict[str, Tool]:
    """One instance of every tool of :data:`TOOL_TABLE` for ``host``, keyed by :class:`ToolId`."""
    return {cls.name: cls(host) for cls in TOOL_TABLE}


__all__ = [
    "TOOL_TABLE", "TOOLS", "TOOL_BRUSH", "TOOL_CLICK", "TOOL_ERASER", "TOOL_FILL", "TOOL_GRABCUT", "TOOL_LASSO",
    "TOOL_POLYGON", "TOOL_SUPERPIXEL", "SUPERPIXEL_PREVIEW_MAX_PIXELS", "BrushTool", "ClickTool", "EraserTool",
    "FillTool", "GrabCutTool", "LassoTool", "PolygonTool", "ShapeTool", "StrokeTool", "SuperpixelTool", "Tool",
    "ToolHost", "ToolId", "ToolJobs", "connected_to_clicks", "image_key", "make_tools", "tool_class",
]
