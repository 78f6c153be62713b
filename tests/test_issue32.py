"""Issue 32: documents announce their own changes; tools see a narrow host; one tool table; no gui circles."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from segstudio.core import IGNORE_INDEX, ClassSpec, Document, DocumentEvent
from segstudio.core.history import make_patch
from segstudio.core.provenance import PROV_CRF, PROV_MODEL

REPO = Path(__file__).resolve().parents[1]
GUI = REPO / "segstudio" / "gui"
CLASSES = ClassSpec(("a", "b"), colors=((255, 0, 0), (0, 255, 0)))


def make_doc(h: int = 20, w: int = 30) -> Document:
    return Document(Path("x.png"), np.zeros((h, w, 3), np.uint8), CLASSES)


def recorder(doc: Document) -> list[DocumentEvent]:
    events: list[DocumentEvent] = []
    doc.subscribe(events.append)
    return events


# -- Document events (core, no Qt) -----------------------------------------------------------------
def test_each_write_path_call_announces_one_event_with_what_changed():
    doc = make_doc()
    events = recorder(doc)
    patch = doc.apply_region(np.pad(np.ones((4, 5), bool), ((2, 14), (3, 22))), 1)
    assert [e.kind for e in events] == ["patch"] and events[0].patch is patch and events[0].doc is doc
    assert events[0].rect == (3, 2, 5, 4) and events[0].by_person  # (x, y, w, h)

    after = doc.labels[0:2, 0:2].copy()
    after[:] = 0
    p2 = doc.apply_patch(make_patch(doc.labels, 0, 0, after), origin=PROV_MODEL)
    assert len(events) == 2 and events[1].patch is p2 and events[1].origin == PROV_MODEL and not events[1].by_person

    undone = doc.undo()  # (the history may hand back its packed copy of the step)
    assert undone.rect == p2.rect and [e.kind for e in events[2:]] == ["undo"] and events[2].patch is undone
    redone = doc.redo()
    assert redone.rect == p2.rect and [e.kind for e in events[3:]] == ["redo"] and events[3].by_person

    doc.set_labels(np.full(doc.shape, IGNORE_INDEX, np.uint8), "predicted")
    assert [e.kind for e in events[4:]] == ["labels"] and events[4].rect is None and not events[4].by_person

    lut = np.arange(256, dtype=np.uint8)
    doc.relabel(CLASSES, lut)
    assert [e.kind for e in events[5:]] == ["relabel"]
    assert len(events) == 6


def test_writes_that_change_nothing_announce_nothing_and_observers_can_leave():
    doc = make_doc()
    events = recorder(doc)
    assert doc.undo() is None and doc.redo() is None
    assert doc.apply_patch(None) is None
    assert doc.apply_region(np.zeros(doc.shape, bool), 1) is None
    assert events == []
    doc.fill(0, 0, 1)
    doc.stroke([(5, 5), (6, 9)], 2, IGNORE_INDEX)
    doc.polygon(np.array([[1, 1], [8, 1], [8, 8]], float), 0)
    assert [e.kind for e in events] == ["patch"] * 3
    doc.unsubscribe(events.append)
    doc.fill(0, 0, 0)
    assert len(events) == 3


def test_a_crf_patch_counts_as_a_persons_request():
    doc = make_doc()
    events = recorder(doc)
    after = np.ones((2, 2), np.uint8)
    doc.apply_patch(make_patch(doc.labels, 0, 0, after), origin=PROV_CRF)
    assert events[0].by_person


# -- the canvas repaints from the events -----------------------------------------------------------
def test_canvas_repaints_and_announces_from_the_documents_events(qtbot):
    from segstudio.gui.canvas import Canvas

    cv = Canvas()
    qtbot.addWidget(cv)
    doc = make_doc()
    cv.set_document(doc)
    rects, edited = [], []
    real = cv.overlay.update_rect
    cv.overlay.update_rect = lambda labels, *r: (rects.append(r), real(labels, *r))
    cv.edited.connect(lambda: edited.append(len(doc.history)))
    patch = doc.fill(0, 0, 1)  # written straight into the document, not through the canvas
    assert rects == [patch.rect] and edited == [1]
    cv.undo()
    assert rects[-1] == patch.rect and edited == [1, 0]
    doc.apply_patch(make_patch(doc.labels, 0, 0, np.ones((2, 2), np.uint8)), origin=PROV_MODEL)
    assert len(rects) == 3 and edited == [1, 0]  # repainted, but a model's fill is not a person's edit
    other = make_doc()
    cv.set_document(other)
    doc.fill(0, 0, 0)  # no longer shown: not observed
    assert len(rects) == 3 and edited == [1, 0]
    cv.current_class = 1
    assert cv.current_class == 1


def test_nobody_emits_edited_on_the_documents_behalf():
    """``edited`` is emitted only by its owner, the canvas (from the shown document's events)."""
    hits = []
    for path in sorted((REPO / "segstudio").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "edited.emit(" in text and path != GUI / "canvas.py":
            hits.append(str(path.relative_to(REPO)))
    assert hits == []
    assert (GUI / "canvas.py").read_text(encoding="utf-8").count("edited.emit(") == 1


# -- the tool table ----------------------------------------------------------------------------------
def test_the_tool_table_drives_tool_bar_menu_and_help(qtbot):
    from qt_helpers import show_window
    from segstudio.gui.help_dialog import MOUSE_HELP, action_shortcuts
    from segstudio.gui.tools import TOOL_TABLE, ToolId, tool_class

    assert [cls.name for cls in TOOL_TABLE] == list(ToolId)
    win = show_window(qtbot, None, active=False)
    rows = action_shortcuts(win)
    for tid in ToolId:
        cls = tool_class(tid)
        acts = [a for a in win.tool_bar.actions() if a.text() == cls.label]
        assert len(acts) == 1 and acts[0] is win.tool_actions[tid] and not acts[0].icon().isNull()
        assert [k.toString() for k in acts[0].shortcuts()] == [cls.shortcut]
        assert sum(1 for _g, text, _k in rows if text == cls.label) == 1, tid
        assert isinstance(win.canvas.tools[tid], cls)
        if cls.mouse_help:
            assert cls.mouse_help in MOUSE_HELP
    menus = [a.text() for a in win.menuBar().actions()]
    assert menus[-2:] == ["&View", "&Help"] and menus[0] == "&File"  # Help stays the last menu
    with pytest.raises(KeyError):
        tool_class("no such tool")


# -- tools see only their host ---------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_tool_modules_never_import_the_canvas_the_window_or_the_state():
    files = sorted((GUI / "tools").glob("*.py"))
    assert {p.stem for p in files} >= {"__init__", "base", "paint", "region", "click"}
    for path in files:
        bad = {m for m in _imports(path) if m.startswith(("segstudio.gui.canvas", "segstudio.gui.main_window",
                                                          "segstudio.gui.state"))}
        assert not bad, f"{path.name} imports {bad}"
    assert not any(m.startswith("PySide6") for m in _imports(REPO / "segstudio" / "engine" / "click" / "cache.py"))


def test_no_import_circle_among_gui_modules():
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_import_graph import ROOT, find_cycles, import_graph

    cycles = [c for c in find_cycles(import_graph(REPO / ROOT)) if any(".gui" in m for m in c)]
    assert cycles == []


# -- controllers receive the state and their widget, never the window -------------------------------
CONTROLLERS = {
    "loop.py": "LabellingLoop", "review.py": "ReviewQueue", "postprocess_preview.py": "PostprocessPreview",
    "project_view.py": "ProjectController", "new_model_dialog.py": "NewModelController",
}


def test_no_module_but_the_window_reads_win_and_controllers_never_touch_a_window():
    import re

    hits = {}
    for path in sorted(GUI.rglob("*.py")):
        if path.name != "main_window.py":
            n = len(re.findall(r"\bwin\.", path.read_text(encoding="utf-8")))
            if n:
                hits[path.name] = n
    assert hits == {}
    for name, cls_name in CONTROLLERS.items():
        tree = ast.parse((GUI / name).read_text(encoding="utf-8"))
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
        reads = [
            n.attr for n in ast.walk(cls)
            if isinstance(n, ast.Attribute) and (
                (isinstance(n.value, ast.Name) and n.value.id in ("win", "window"))
                or (isinstance(n.value, ast.Attribute) and n.value.attr in ("win", "window"))
            )
        ]
        args = [a.arg for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__" for a in f.args.args]
        assert reads == [] and "win" not in args and "window" not in args, (cls_name, reads, args)


def test_rooms_stay_small():
    sizes = {p.relative_to(GUI).as_posix(): len(p.read_text(encoding="utf-8").splitlines()) for p in GUI.rglob("*.py")}
    assert sizes["main_window.py"] <= 350
    assert {k: v for k, v in sizes.items() if v > 700} == {}


def test_the_crash_journal_hears_a_persons_edit_from_the_document_itself(qtbot, tmp_path):
    """The journal observes each open document (not the canvas): an edit of an image that is not shown is
    journalled; a model's fill of pixels is not a person's edit and writes no patch."""
    from PIL import Image

    from qt_helpers import show_window
    from segstudio.io.journal import journal_path_for, read_journal

    for i in range(2):
        Image.fromarray(np.full((16, 20, 3), 40 * i, np.uint8)).save(tmp_path / f"img{i}.png")
    win = show_window(qtbot, None, active=False)
    assert win.open_folder(tmp_path)
    st = win.state
    other = st.load_doc(st.paths[1] if st.current_doc().path == st.paths[0] else st.paths[0])
    assert other is not st.current_doc() and win.canvas.doc is not other
    jp = journal_path_for(other.path)
    other.apply_patch(make_patch(other.labels, 0, 0, np.ones((2, 3), np.uint8)), origin=PROV_MODEL)
    assert not jp.exists()  # a model's pixels: nothing for the journal
    other.fill(5, 5, 1)  # a person's fill, written straight into the (unshown) document
    contents = read_journal(jp)
    assert jp.is_file() and contents.base is not None and contents.base[5, 5] == 1
