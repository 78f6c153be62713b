"""Issue 17: one source of truth for the open project (``segstudio.gui.state.ProjectState``).

A regression test per numbered item of the issue, each driving the real window (pytest-qt, offscreen) through
the same public calls a user's clicks make, with tiny ``simple_cnn`` checkpoints (a prediction takes
milliseconds) on 32×40 images; and a property-style test (hypothesis) of random open-folder / class edit /
model switch / paint / predict / save / undo sequences on two folders, checked against the per-pixel
provenance of every saved label file.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from segstudio.core import IGNORE_INDEX, ClassSpec
from segstudio.core.provenance import PROV_CRF, PROV_HUMAN, PROV_MODEL
from segstudio.engine import finetune_config, load_checkpoint
from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, new_card, save_checkpoint
from segstudio.io import label_path_for, load_classes, read_index_png, save_classes
from segstudio.io.project import ModelVersion, Project
from segstudio.io.provenance_files import provenance_path_for
from segstudio.models import get_model
from qt_helpers import show_window

from test_gui import drag  # real mouse events on the canvas viewport

STREET = ClassSpec(("Sky", "Building", "Road", "Car"), ((128, 128, 128), (128, 0, 0), (128, 64, 128), (64, 0, 128)))
EM = ClassSpec(("membrane", "cell"))
SKY, CAR = 0, 3


def _checkpoint(root, name: str, classes: ClassSpec, favourite: int):
    """A 1-layer simple_cnn whose classifier bias makes it predict class ``favourite`` on every pixel."""
    torch.manual_seed(0)
    model = get_model("simple_cnn", classes.num_classes, depth=1, width=4).eval()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[favourite] = 5.0
    return save_checkpoint(root / name, model, new_card("simple_cnn", classes, {"depth": 1, "width": 4}, name=name))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "sky": _checkpoint(root, "street-sky", STREET, SKY),
        "car": _checkpoint(root, "street-car", STREET, CAR),
        "em": _checkpoint(root, "em-cell", EM, 1),
    }


def _images(folder, n: int, seed: int):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture()
def dialogs(monkeypatch):
    """Every QMessageBox the app shows is recorded instead of blocking (questions are answered Yes)."""
    shown = []
    for name in ("warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(lambda *a, _n=name, **k: shown.append((_n, str(a[2] if len(a) > 2 else a)))))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: shown.append(("question", str(a[2]))) or QMessageBox.StandardButton.Yes))
    return shown


def answer(win, **answers):
    """Replace the window's questions (``win.state.prompts``) by fixed answers, recording each question asked."""
    asked = []
    prompts = getattr(getattr(win, "state", None), "prompts", None)
    for name, value in answers.items():
        def fn(*a, _name=name, _value=value, **k):
            asked.append(_name)
            return _value(*a) if callable(_value) else _value

        if prompts is not None:
            setattr(prompts, name, fn)
    return asked


def make_window(qtbot, model_path=None):
    return show_window(qtbot, load_checkpoint(model_path) if model_path is not None else None, active=False)


def idle(qtbot, win, timeout=60_000):
    qtbot.waitUntil(lambda: win.job is None, timeout=timeout)


def paint(win, y0, x0, y1, x1):
    """A brush stroke with real mouse events (image coordinates); returns the bool mask it changed."""
    before = win.current_doc().labels.copy()
    drag(win.canvas, [(x0, y0), ((x0 + x1) / 2, (y0 + y1) / 2), (x1, y1)])
    return win.current_doc().labels != before


# -- 1. class edit ------------------------------------------------------------------------------------------
def test_class_edit_moves_current_class_resets_predictions_and_recolours_renamed(qtbot, tmp_path, models, dialogs):
    """Rename Sky→membrane, Building→cell, delete Road and Car, while painting with Car (id 3).

    Before: the canvas kept painting id 3 (invisible strokes; "label map holds values [4]" on save), the
    predicted Sky pixels became "membrane" labels, and membrane kept Sky's grey. (Issue 31: the prediction is
    carried to the renamed class, and stays a prediction.)"""
    folder = _images(tmp_path / "a", 2, 0)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    doc = win.current_doc()
    assert doc.source == "predicted" and (doc.labels == SKY).all()
    win.pick_class(CAR)
    assert win.canvas.current_class == CAR
    win.class_panel.set_class_visible(1, False)  # Building hidden: id 1 will be "cell"
    assert win.canvas.overlay.hidden_classes == {1}

    new = ClassSpec(("membrane", "cell"), (STREET.colors[0], STREET.colors[1]))  # renamed, colours left as they were
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[[SKY, 1]] = [0, 1]
    assert win.project_ctl.apply_classes(new, lut, True, "rename 2, delete 2")
    idle(qtbot, win)
    assert win.classes.names == ("membrane", "cell")
    assert win.canvas.current_class in (0, 1), "the canvas paints with a class that exists"
    assert win.class_panel.legend.currentRow() == win.canvas.current_class
    assert not win.canvas.overlay.hidden_classes and not win.class_panel.hidden, "a hidden id may be another class now"
    # Issue 31: a rename keeps the id's lineage, so the street model's predicted Sky shows as membrane now, and it
    # is still a prediction (model provenance), never a label a person gave.
    assert (doc.labels == 0).all() and (doc.provenance.map == PROV_MODEL).all()
    # A renamed class gets a colour that contrasts with the others and with grey (EM images are grey).
    membrane = np.array(win.classes.colors[0])
    assert tuple(membrane) != STREET.colors[0] and np.abs(membrane - 128).max() > 90
    assert tuple(win.classes.colors[1]) != STREET.colors[1]

    win.pick_class(1)
    painted = paint(win, 4, 4, 20, 30)
    assert painted.sum() > 30 and (doc.labels[painted] == 1).all()
    win.state.autosave()  # leaving the image: only the person's pixels are saved
    assert not [d for d in dialogs if d[0] == "critical"], dialogs
    saved = read_index_png(label_path_for(doc.path))
    assert set(np.unique(saved).tolist()) <= {0, 1, IGNORE_INDEX}
    np.testing.assert_array_equal(saved != IGNORE_INDEX, doc.provenance.map == PROV_HUMAN)
    assert (saved[painted] == 1).all() and not (saved == 0).any(), "the carried prediction is not saved as a label"
    assert load_classes(folder / "labels" / "classes.json").names == ("membrane", "cell")
    win.close()


# -- 2. model switch ----------------------------------------------------------------------------------------
def test_model_switch_repredicts_or_marks_stale_and_tells_why(qtbot, tmp_path, models, dialogs):
    """Before: the overlay kept the previous model's prediction; with a model of other classes Ctrl+P raised a
    ValueError in the result slot while the status bar said "predicted 1 image(s)"."""
    folder = _images(tmp_path / "a", 2, 1)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    doc = win.current_doc()
    assert (doc.labels == SKY).all()

    win.set_model(load_checkpoint(models["car"]), "street-car")  # same classes: re-predicted at once
    idle(qtbot, win)
    assert (win.current_doc().labels == CAR).all(), "the overlay follows the model in use"

    win.set_model(load_checkpoint(models["em"]), "em-cell")  # membrane/cell: nothing maps onto Sky..Car
    idle(qtbot, win)
    assert win.classes.names == STREET.names, "the project's classes stay the folder's"
    assert "stale" in win.windowTitle(), win.windowTitle()
    assert "none of the project's classes" in win.status_text.text()
    win.predict_current()  # Ctrl+P
    idle(qtbot, win)
    assert not win.status_text.text().startswith("predicted"), win.status_text.text()
    assert "none of the project's classes" in win.status_text.text()
    assert (win.current_doc().labels == CAR).all() and win.current_doc().classes.names == STREET.names
    win.files.setCurrentRow(1)  # an image never predicted: not predicted by the unfitting model either
    idle(qtbot, win)
    assert win.current_doc().source == "none"
    win.close()


# -- 3. a new folder ----------------------------------------------------------------------------------------
def test_new_folder_takes_its_own_model_and_classes_and_resets_docks(qtbot, tmp_path, models, dialogs):
    """Before: folder B (an EM project) was predicted with folder A's street model and kept A's versions."""
    a = _images(tmp_path / "a", 2, 2)
    save_checkpoint(a / "labels" / "models" / "v001", load_checkpoint(models["car"]).model,
                    dict(load_checkpoint(models["car"]).card, name="a/v001"))
    b = _images(tmp_path / "b", 2, 3)
    Project(b, classes=EM, versions=[ModelVersion("em-cell", str(models["em"]))], current_version="em-cell").save()
    c = _images(tmp_path / "c", 1, 4)

    win = make_window(qtbot, models["sky"])
    win.open_folder(a)
    idle(qtbot, win)
    assert win.model.path.parent.name == "v001", "a folder's own newest version"
    win.loop.training_panel.title.setText("Fine-tuning v001…")  # leftovers a new folder must clear
    win.open_folder(b)
    idle(qtbot, win)
    assert win.model.path == models["em"], "B's project file names its model"
    assert win.classes.names == EM.names
    assert (win.current_doc().labels == 1).all(), "predicted by B's model"
    combo = win.model_panel.model_combo
    assert not any(combo.itemText(i).startswith("a/") for i in range(combo.count())), "A's versions left the picker"
    tree = win.project_ctl.versions.tree
    names = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert "v001" not in names and "em-cell" in names
    assert win.loop.training_panel.state == "idle" and "No training" in win.loop.training_panel.title.text()
    assert win.loop.metrics.result is None

    # C says nothing about its model: the user is asked (here: the street model), nothing is inherited silently.
    pick = lambda folder, labels, why: next(i for i, t in enumerate(labels) if "street-sky" in t)  # noqa: E731
    asked = answer(win, choose_model=pick)
    win.open_folder(c)
    idle(qtbot, win)
    assert asked == ["choose_model"]
    assert win.model.path == models["sky"] and win.classes.names == STREET.names

    # D has saved EM classes and nothing else: the bundled model whose classes fit (the ISBI-2012 U-Net).
    d = _images(tmp_path / "d", 1, 9)
    save_classes(d / "labels" / "classes.json", EM)
    win.open_folder(d)
    idle(qtbot, win)
    assert win.model.path == DEFAULT_MODEL_DIR / "isbi2012_unet.safetensors" and win.classes.names == EM.names
    assert win.current_doc().source == "predicted" and asked == ["choose_model"]
    win.close()


def test_a_failed_job_reaches_the_status_bar_never_a_success_message(qtbot, tmp_path, models, dialogs):
    folder = _images(tmp_path / "a", 2, 12)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    win.save_current()

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    win.state.train_fn = boom
    assert win.finetune()
    idle(qtbot, win)
    assert win.status_text.text() == "fine-tune failed: disk on fire"
    assert win.loop.training_panel.state == "failed" and win.model.path == models["sky"]
    win.close()


# -- 4. read-only folder ------------------------------------------------------------------------------------
def _unwritable(folder):
    (folder / "labels").write_text("not a folder")  # nothing can be saved under labels/ (root ignores chmod)
    return folder


def test_read_only_folder_detected_at_open_no_modal_per_image_edits_saved_on_quit(qtbot, tmp_path, models, dialogs):
    """Before: no warning at open, a critical dialog at every image change, and on quit the edits were gone."""
    ro = _unwritable(_images(tmp_path / "ro", 3, 5))
    before = {p.name: p.read_bytes() for p in ro.iterdir()}
    elsewhere = tmp_path / "rescue"
    win = make_window(qtbot, models["sky"])
    asked = answer(win, read_only_folder="view", unsaved_on_quit="save elsewhere", pick_folder=elsewhere)
    win.open_folder(ro)
    idle(qtbot, win)
    assert asked == ["read_only_folder"], "detected when the folder is opened"
    assert "read-only" in win.windowTitle()
    win.pick_class(CAR)
    painted = paint(win, 3, 3, 25, 30)
    for row in (1, 2, 0, 1):
        win.files.setCurrentRow(row)
        idle(qtbot, win)
    assert not [d for d in dialogs if d[0] in ("critical", "warning")], dialogs
    win.close()
    assert asked == ["read_only_folder", "unsaved_on_quit", "pick_folder"]
    saved = read_index_png(elsewhere / "labels" / "img0.png")
    np.testing.assert_array_equal(saved != IGNORE_INDEX, painted)
    assert {p.name: p.read_bytes() for p in ro.iterdir()} == before, "nothing written into the read-only folder"

    # The other answer: a separate labels folder; Ctrl+S saves there.
    work = tmp_path / "labels-of-ro"
    win2 = make_window(qtbot, models["sky"])
    answer(win2, read_only_folder="separate", pick_folder=work)
    win2.open_folder(ro)
    idle(qtbot, win2)
    win2.pick_class(CAR)
    paint(win2, 3, 3, 25, 30)
    win2.save_current()
    assert (work / "labels" / "img0.png").is_file() and not dialogs
    win2.close()


# -- 5. quit during fine-tune; cancelled versions ---------------------------------------------------------
def test_quit_during_finetune_asks_and_cancelled_version_is_marked(qtbot, tmp_path, models, dialogs):
    """Before: closing the window during a fine-tune did not ask, and the cancelled run's checkpoint was listed
    in the Versions dock like a finished version."""
    folder = _images(tmp_path / "a", 3, 6)
    win = make_window(qtbot, models["sky"])
    win.finetune_config = finetune_config(max_steps=100_000, batch_size=2, crop_size=(24, 24), holdout_fraction=0.0)
    win.open_folder(folder)
    idle(qtbot, win)
    for row in (0, 1):
        win.files.setCurrentRow(row)
        idle(qtbot, win)
        win.save_current()  # accept the predictions as labels
    panel = win.loop.training_panel

    assert win.finetune()
    qtbot.waitUntil(lambda: panel.last_checkpoint is not None, timeout=120_000)
    win.cancel_job()
    idle(qtbot, win)
    v001 = folder / "labels" / "models" / "v001"
    assert json.loads((v001 / "cancelled.json").read_text())["status"] == "cancelled"
    tree = win.project_ctl.versions.tree
    items = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    items += [it.child(j) for it in items for j in range(it.childCount())]
    assert any(it.text(0) == "v001 (cancelled)" for it in items), [it.text(0) for it in items]
    assert win.model.path == models["sky"]

    assert win.finetune()
    qtbot.waitUntil(lambda: panel.last_checkpoint is not None and panel.last_checkpoint.parent.name == "v002", timeout=120_000)
    asked = answer(win, ask_yes_no=False)
    win.close()
    assert asked == ["ask_yes_no"] and win.isVisible() and win.job is not None, "No: the window and the run go on"
    asked = answer(win, ask_yes_no=True)
    win.close()
    assert asked == ["ask_yes_no"] and not win.isVisible()
    assert (folder / "labels" / "models" / "v002" / "cancelled.json").is_file()


# -- 6. predict folder counts failures ----------------------------------------------------------------------
def test_predict_folder_counts_failures_and_marks_unreadable_files(qtbot, tmp_path, models, dialogs):
    """Before: "predicted 6 image(s)" when 3 of 6 could not be read, and no marker in the image list."""
    folder = _images(tmp_path / "f", 3, 7)
    (folder / "x1.png").write_text("this is not a PNG")
    (folder / "x2.png").write_bytes(b"")
    (folder / "x3.png").write_bytes((folder / "img0.png").read_bytes()[:60])  # truncated
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    win.predict_folder()
    idle(qtbot, win)
    text = win.status_text.text()
    assert "predicted 3" in text and "failed 3" in text, text
    marks = {win.files.item(i).text().split()[-1]: win.files.item(i).text().startswith("⚠") for i in range(win.files.count())}
    assert marks == {"img0.png": False, "img1.png": False, "img2.png": False, "x1.png": True, "x2.png": True, "x3.png": True}
    win.close()


# -- 7. leaving an image does not save an unreviewed prediction -------------------------------------------
def test_leaving_an_image_saves_only_what_a_person_painted(qtbot, tmp_path, models, dialogs):
    """Before: one stroke, then the next image, and the whole prediction was saved as training labels."""
    folder = _images(tmp_path / "a", 3, 8)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    names = [p.name for p in win.paths]
    win.pick_class(CAR)
    painted = paint(win, 5, 5, 20, 25)
    assert painted.sum() > 30
    win.files.setCurrentRow(1)  # autosave of image 0
    idle(qtbot, win)
    saved = read_index_png(label_path_for(folder / names[0]))
    np.testing.assert_array_equal(saved != IGNORE_INDEX, painted)
    assert (saved[painted] == CAR).all()
    prov = read_index_png(provenance_path_for(folder / names[0]))
    np.testing.assert_array_equal(prov == PROV_HUMAN, painted)
    assert not label_path_for(folder / names[1]).exists(), "an untouched prediction is not saved"
    win.files.setCurrentRow(0)  # still shown as a prediction around the stroke
    doc0 = win.current_doc()
    assert (doc0.labels[~painted] == SKY).all() and (doc0.labels[painted] == CAR).all()
    win.files.setCurrentRow(2)
    idle(qtbot, win)
    win.save_current()  # Ctrl+S accepts the whole image
    assert (read_index_png(label_path_for(folder / names[2])) == SKY).all()
    win.close()
    assert not label_path_for(folder / names[1]).exists()


def close_as_if_crashed(win, folder):
    """Close ``win`` (which saves and clears the crash journal), then put the folder back as a crash would leave
    it: the journal as it was before closing, no label or provenance files of the images."""
    journal_dir = folder / "labels" / ".journal"
    kept = {f.name: f.read_bytes() for f in journal_dir.iterdir()}
    win.close()
    for f in (folder / "labels").glob("img*.png"):
        f.unlink()
    for f in (folder / "labels" / "provenance").glob("*.png"):
        f.unlink()
    for name, data in kept.items():
        (journal_dir / name).write_bytes(data)


def test_recovered_edits_keep_the_prediction_a_prediction(qtbot, tmp_path, models, dialogs, monkeypatch):
    """A crash after one stroke on a predicted image: the journal's base holds the whole map (prediction +
    stroke). Before: recovery made every pixel a human label, so the next autosave saved the prediction."""
    import segstudio.gui.main_window as mw

    folder = _images(tmp_path / "a", 2, 13)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    win.pick_class(CAR)
    painted = paint(win, 4, 4, 22, 30)
    win.pick_class(1)
    painted |= paint(win, 25, 5, 28, 35)  # a second stroke: a journal patch after the base
    close_as_if_crashed(win, folder)

    monkeypatch.setattr(mw, "ask_recover", lambda *a: True)
    win2 = make_window(qtbot, models["sky"])
    win2.open_folder(folder)
    idle(qtbot, win2)
    doc = win2.current_doc()
    assert doc.dirty and "restored" in win2.status_text.text()
    np.testing.assert_array_equal(doc.provenance.map == PROV_HUMAN, painted)
    win2.files.setCurrentRow(1)  # autosave
    idle(qtbot, win2)
    saved = read_index_png(label_path_for(doc.path))
    np.testing.assert_array_equal(saved != IGNORE_INDEX, painted)
    win2.close()


def test_a_confirming_stroke_after_the_journal_base_is_recovered_as_the_persons(qtbot, tmp_path, models, dialogs, monkeypatch):
    """A stroke that changes pixels (it starts the journal), then a Sky stroke over predicted sky (changes no value,
    confirms: issue 31), then a crash. Before: recovery marked human only the pixels whose value differed from the
    journal's base, so the confirmation was lost; the journal now carries each edit's provenance."""
    import segstudio.gui.main_window as mw

    folder = _images(tmp_path / "a", 2, 19)
    win = make_window(qtbot, models["sky"])
    win.open_folder(folder)
    idle(qtbot, win)
    doc = win.current_doc()
    win.canvas.set_brush_radius(2)
    win.pick_class(CAR)
    changed = paint(win, 3, 3, 8, 12)
    assert changed.any()
    win.pick_class(SKY)
    before = doc.provenance.map.copy()
    assert paint(win, 22, 20, 27, 35).sum() == 0  # same class as the prediction, away from the car: no change ...
    confirmed = (doc.provenance.map == PROV_HUMAN) & (before != PROV_HUMAN)
    assert confirmed.sum() > 20  # ... but the pixels are the person's now
    human = doc.provenance.map == PROV_HUMAN
    close_as_if_crashed(win, folder)

    monkeypatch.setattr(mw, "ask_recover", lambda *a: True)
    win2 = make_window(qtbot, models["sky"])
    win2.open_folder(folder)
    idle(qtbot, win2)
    doc2 = win2.current_doc()
    assert doc2.dirty and "restored" in win2.status_text.text()
    np.testing.assert_array_equal(doc2.provenance.map == PROV_HUMAN, human)
    win2.close()


def test_prediction_filling_an_edited_image_is_journalled_as_model_pixels(qtbot, tmp_path, models, dialogs, monkeypatch):
    """A stroke on an unpredicted image, then Ctrl+P fills the other pixels (one undoable step), then a crash.

    Before: the fill was not in the crash journal, so recovery brought back the stroke on an unlabelled image.
    Now recovery restores the filled pixels too, as the model's (an autosave still writes only the stroke)."""
    import segstudio.gui.main_window as mw

    folder = _images(tmp_path / "a", 2, 17)
    win = make_window(qtbot, models["sky"])
    win.state.set_predictor(None)  # nothing is predicted on open: the stroke goes onto an unlabelled image
    win.open_folder(folder)
    idle(qtbot, win)
    doc = win.current_doc()
    assert (doc.labels == IGNORE_INDEX).all()
    win.pick_class(CAR)
    painted = paint(win, 4, 4, 22, 30)
    assert painted.sum() > 30 and doc.dirty
    win.state.make_predictor()
    assert win.state.predict_current()
    idle(qtbot, win)
    assert doc.dirty and (doc.labels[painted] == CAR).all() and (doc.labels[~painted] == SKY).all()
    np.testing.assert_array_equal(doc.provenance.map == PROV_MODEL, ~painted)
    close_as_if_crashed(win, folder)

    monkeypatch.setattr(mw, "ask_recover", lambda *a: True)
    win2 = make_window(qtbot, models["sky"])
    win2.state.set_predictor(None)
    win2.open_folder(folder)
    doc = win2.current_doc()  # recovered synchronously at open, before any new prediction could arrive
    assert doc.dirty and "restored" in win2.status_text.text()
    assert (doc.labels[painted] == CAR).all() and (doc.labels[~painted] == SKY).all(), "the filled pixels are restored"
    np.testing.assert_array_equal(doc.provenance.map == PROV_HUMAN, painted)
    np.testing.assert_array_equal(doc.provenance.map == PROV_MODEL, ~painted)
    idle(qtbot, win2)
    win2.files.setCurrentRow(1)  # autosave: the filled pixels are a prediction, not labels
    idle(qtbot, win2)
    saved = read_index_png(label_path_for(doc.path))
    np.testing.assert_array_equal(saved != IGNORE_INDEX, painted)
    win2.close()


# -- property: random sessions on two folders ---------------------------------------------------------------
STEPS = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("goto"), st.integers(0, 1)),
    st.tuples(st.just("paint"), st.integers(0, 24), st.integers(0, 30), st.integers(0, 3)),
    st.tuples(st.just("confirm"), st.integers(0, 24), st.integers(0, 30)),  # paint over a same-class prediction
    st.tuples(st.just("model"), st.sampled_from(["sky", "car", "em"])),
    st.tuples(st.just("classes"), st.sampled_from(["rename", "delete", "add"])),
    st.tuples(st.just("predict"), st.just(0)),
    st.tuples(st.just("save"), st.just(0)),
    st.tuples(st.just("undo"), st.just(0)),
)
# Every session opens a folder first and ends with Ctrl+S, so every example saves at least once (asserted).
ACTIONS = st.builds(
    lambda first, middle, last: [first, *middle, last],
    st.tuples(st.just("open"), st.sampled_from(["a", "b"])),
    st.lists(STEPS, min_size=2, max_size=10),
    st.tuples(st.just("save"), st.just(0)),
)
SESSIONS = int(__import__("os").environ.get("SEGSTUDIO_SESSIONS", "200"))
"""Examples of the nightly (``-m slow``) run of the property test; the default run has 12."""


def _disc_mask(shape, y0, x0, y1, x1, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.array([y1 - y0, x1 - x0], float)
    t = np.clip(((yy - y0) * d[0] + (xx - x0) * d[1]) / max(float(d @ d), 1e-9), 0, 1)
    return (yy - (y0 + t * d[0])) ** 2 + (xx - (x0 + t * d[1])) ** 2 <= (r + 1.5) ** 2


def _stroke(win, y, x):
    """A brush stroke (y, x) → (y + 5, x + 7) through the canvas; returns the exact pixels under it."""
    from segstudio.core.paint import stroke_mask

    doc = win.current_doc()
    win.canvas.begin_stroke(y, x)
    win.canvas.continue_stroke(y + 5, x + 7)
    win.canvas.end_stroke()
    res = stroke_mask(doc.shape, [(y, x), (y + 5, x + 7)], win.canvas.brush_radius)
    under = np.zeros(doc.shape, bool)
    if res is not None:
        y0, x0, m = res
        under[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]] = m
    return under


def _session(qtbot, root, models, actions):
    """Run one random session; check the invariants on the way and on every saved file; returns the files saved."""
    folders = {"a": _images(root / "a", 2, 10), "b": _images(root / "b", 2, 11)}
    save_classes(folders["b"] / "labels" / "classes.json", EM)  # B is an EM folder
    win = make_window(qtbot, models["sky"])
    answer(win, choose_model=0, ask_yes_no=True)
    painted: dict = {}  # image path -> bool mask of every pixel a stroke may have touched
    accepted: set = set()  # images saved with Ctrl+S (the whole image accepted)
    entries = {}
    renames = added = 0
    try:
        for act in actions:
            kind = act[0]
            if kind == "open":
                win.open_folder(folders[act[1]])
            elif win.current_doc() is None:
                continue
            elif kind == "goto":
                win.files.setCurrentRow(act[1])
            elif kind in ("paint", "confirm"):
                doc = win.current_doc()
                y, x = act[1], act[2]
                if kind == "paint":
                    win.pick_class(min(act[3], win.classes.num_classes - 1))
                else:  # the class already shown under the stroke's start (a prediction, most often)
                    v = int(doc.labels[min(y, doc.shape[0] - 1), min(x, doc.shape[1] - 1)])
                    if v >= win.classes.num_classes:
                        continue
                    win.pick_class(v)
                labels_before = doc.labels
                under = _stroke(win, y, x)
                if doc.labels is labels_before and win.current_doc() is doc:
                    # brush-to-confirm: every pixel under the stroke is the person's, changed or not
                    assert (doc.provenance.map[under] == PROV_HUMAN).all(), (act, actions)
                    assert (doc.labels[under] == win.canvas.current_class).all()
                mask = _disc_mask(doc.shape, y, x, y + 5, x + 7, win.canvas.brush_radius)
                painted[doc.path] = painted.get(doc.path, np.zeros(doc.shape, bool)) | mask
            elif kind == "model":
                if act[1] not in entries:
                    entries[act[1]] = load_checkpoint(models[act[1]])
                win.set_model(entries[act[1]], act[1])
            elif kind == "classes":
                old = win.classes
                snap = {p: (d.labels.copy(), d.provenance.map == PROV_MODEL) for p, d in win.docs.items()}
                if act[1] == "rename":
                    renames += 1
                    new, lut = ClassSpec((f"renamed{renames}",) + old.names[1:], old.colors), np.arange(256, dtype=np.uint8)
                elif act[1] == "delete" and old.num_classes > 1:
                    new = ClassSpec(old.names[1:], old.colors[1:])
                    lut = np.full(256, IGNORE_INDEX, np.uint8)
                    lut[1 : old.num_classes] = np.arange(old.num_classes - 1)
                else:  # a fresh name each time (add, delete, add must not repeat a name: class names are unique)
                    added += 1
                    new, lut = ClassSpec(old.names + (f"extra{added}",)), np.arange(256, dtype=np.uint8)
                lut[IGNORE_INDEX] = IGNORE_INDEX
                relabel = not np.array_equal(lut[: old.num_classes], np.arange(old.num_classes))
                win.project_ctl.apply_classes(new, lut, relabel, act[1], confirm=False)
                if act[1] != "delete":  # a rename or an added class: every shown prediction keeps its class
                    for p, (labels, model_px) in snap.items():
                        d = win.docs[p]
                        np.testing.assert_array_equal(d.labels[model_px], labels[model_px], err_msg=str(actions))
                        assert (d.provenance.map[model_px] == PROV_MODEL).all(), actions
            elif kind == "predict":
                win.predict_current()
            elif kind == "save":
                if win.save_current():
                    accepted.add(win.current_doc().path)
            elif kind == "undo":
                win.canvas.undo()
            idle(qtbot, win)
    finally:
        win.close()
    saved = []
    for folder in folders.values():
        files = sorted((folder / "labels").glob("img*.png"))
        if not files:
            continue
        classes = load_classes(folder / "labels" / "classes.json")
        for lp in files:
            image = folder / lp.name
            labels = read_index_png(lp)
            prov = read_index_png(provenance_path_for(image))
            labelled = labels != IGNORE_INDEX
            assert ((labels < classes.num_classes) | ~labelled).all(), (lp, np.unique(labels), classes.names)
            if image not in accepted:  # only a person's pixels: never an unreviewed prediction
                assert np.isin(prov[labelled], [PROV_HUMAN, PROV_CRF]).all(), (lp, actions)
                human = prov == PROV_HUMAN
                assert not (human & ~painted.get(image, np.zeros_like(human))).any(), (lp, actions)
            saved.append(lp)
    assert accepted and saved, f"every session saves at least once: {actions}"
    return saved


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=ACTIONS)
def test_random_sessions_save_only_valid_ids_that_a_person_painted_or_accepted(qtbot, tmp_path_factory, models, actions):
    _session(qtbot, tmp_path_factory.mktemp("session"), models, actions)


@pytest.mark.slow
@settings(max_examples=SESSIONS, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=ACTIONS)
def test_random_sessions_nightly(qtbot, tmp_path_factory, models, actions):
    """The same property with many more sessions (``pytest -m slow``; ``SEGSTUDIO_SESSIONS`` sets the count)."""
    _session(qtbot, tmp_path_factory.mktemp("session"), models, actions)


def test_contrasting_colour_avoids_used_colours_and_grey():
    from segstudio.gui.state import contrasting_color

    used = [(230, 25, 75), (60, 180, 75)]
    c = np.array(contrasting_color(used))
    assert all(np.abs(c - np.array(u)).sum() > 100 for u in used) and np.abs(c - 128).max() > 90
