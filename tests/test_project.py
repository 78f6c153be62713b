"""Project file, provenance maps (core + files), class mapping, relabelling on disk, activity clock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core import IGNORE_INDEX, ClassSpec, Document
from segstudio.core.document import SOURCE_PREDICTED, SOURCE_SAVED
from segstudio.core.history import History
from segstudio.core.provenance import PROV_CRF, PROV_HUMAN, PROV_MODEL, PROV_NONE, provenance_counts, validate_provenance
from segstudio.io import label_path_for, load_classes, read_index_png, save_labels
from segstudio.io.project import (
    PROJECT_FILENAME,
    SCHEMA_VERSION,
    ActivityClock,
    ModelVersion,
    Project,
    ProjectError,
    relabel_label_files,
)
from segstudio.io.provenance_files import load_provenance, provenance_path_for, save_provenance
from segstudio.core.class_mapping import class_lut, match_classes

CLASSES = ClassSpec(("sky", "road", "car"))


def make_doc(h=40, w=50, classes=CLASSES):
    return Document(Path("/nonexistent/img.png"), np.zeros((h, w, 3), np.uint8), classes)


# -- provenance in the document -------------------------------------------------------------------
def test_provenance_follows_prediction_edits_undo_redo():
    doc = make_doc()
    assert (doc.provenance.map == PROV_NONE).all()
    pred = np.ones((40, 50), np.uint8)
    pred[:5] = IGNORE_INDEX
    doc.set_labels(pred.copy(), SOURCE_PREDICTED)
    assert (doc.provenance.map[:5] == PROV_NONE).all() and (doc.provenance.map[5:] == PROV_MODEL).all()
    before = doc.provenance.map.copy()

    doc.stroke([(20, 10), (20, 40)], 3, 2)  # car over road
    changed = doc.labels != pred
    assert changed.sum() > 50
    assert (doc.provenance.map[changed] == PROV_HUMAN).all()
    assert (doc.provenance.map[~changed] == before[~changed]).all(), "unchanged pixels keep their origin"
    assert doc.edits == 1
    after_stroke = doc.provenance.map.copy()

    # Painting road over predicted road changes no pixel but confirms it (issue 31: brush-to-confirm): the pixels
    # under the brush are the person's, one edit, one undo step; undo gives the model's provenance back.
    labels_before = doc.labels.copy()
    assert doc.stroke([(30, 10)], 2, 1) is not None and doc.edits == 2
    np.testing.assert_array_equal(doc.labels, labels_before)
    assert doc.provenance.map[30, 10] == PROV_HUMAN and after_stroke[30, 10] == PROV_MODEL
    doc.undo()
    np.testing.assert_array_equal(doc.provenance.map, after_stroke)
    # Painting it again over pixels a person already decided changes nothing at all: no edit.
    doc.redo()
    assert doc.stroke([(30, 10)], 2, 1) is None and doc.edits == 2
    doc.undo()

    # A CRF result recorded as a patch stamps "crf" on the pixels it changed, and is not a human edit.
    from segstudio.core.history import make_patch

    crf = doc.labels.copy()
    crf[35:, :] = 0
    patch = make_patch(doc.labels, 0, 0, crf)
    doc.apply_patch(patch, origin=PROV_CRF)
    assert (doc.provenance.map[35:] == PROV_CRF).all() and doc.edits == 2

    doc.undo()
    np.testing.assert_array_equal(doc.provenance.map, after_stroke)
    doc.undo()
    np.testing.assert_array_equal(doc.provenance.map, before)
    doc.redo()
    np.testing.assert_array_equal(doc.provenance.map, after_stroke)
    # A new edit drops the redo step (as the label history does).
    doc.fill(0, 0, 0)
    assert doc.redo() is None
    assert provenance_counts(doc.provenance.map)["human"] > changed.sum()

    # Saved labels without a provenance file: a person made them.
    doc.set_labels(pred.copy(), SOURCE_SAVED)
    assert (doc.provenance.map[5:] == PROV_HUMAN).all() and (doc.provenance.map[:5] == PROV_NONE).all()


def test_provenance_history_trimmed_with_label_history():
    doc = make_doc()
    doc.history = History(max_bytes=1)  # keeps only the newest step
    doc.set_labels(np.zeros((40, 50), np.uint8), SOURCE_PREDICTED)
    doc.stroke([(5, 5)], 2, 1)
    doc.stroke([(30, 30)], 2, 2)
    assert len(doc.history) == 1 and len(doc.provenance._undo) == 1
    doc.undo()
    assert doc.undo() is None
    assert doc.provenance.map[5, 5] == PROV_HUMAN and doc.provenance.map[30, 30] == PROV_MODEL


def test_validate_provenance_errors():
    with pytest.raises(ValueError, match="uint8"):
        validate_provenance(np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError, match="values \\[7\\]"):
        validate_provenance(np.full((3, 3), 7, np.uint8))
    with pytest.raises(ValueError, match="3x3"):
        validate_provenance(np.zeros((3, 3), np.uint8), (4, 4))


def test_provenance_file_round_trip(tmp_path):
    img = tmp_path / "a.png"
    prov = np.random.default_rng(0).integers(0, 4, (30, 20)).astype(np.uint8)
    assert load_provenance(img, (30, 20)) is None
    out = save_provenance(img, prov)
    assert out == provenance_path_for(img) and out.parent.name == "provenance"
    np.testing.assert_array_equal(load_provenance(img, (30, 20)), prov)
    with pytest.raises(ValueError, match="a.png"):
        load_provenance(img, (31, 20))
    with pytest.raises(ValueError):
        save_provenance(img, np.full((3, 3), 9, np.uint8))
    np.testing.assert_array_equal(load_provenance(img, (30, 20)), prov), "a refused save leaves the old file"


# -- project file -------------------------------------------------------------------------------
def test_project_round_trip_and_summary(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name)
    save_labels(tmp_path / "c.png", np.zeros((8, 8), np.uint8), CLASSES)
    proj = Project.load(tmp_path)  # no file yet: a new project
    assert proj.images == {} and not proj.path.exists()
    proj.sync_images(sorted(tmp_path.glob("*.png")))
    assert proj.images["a.png"].status == "unlabelled"
    assert proj.images["c.png"].status == "corrected", "labels saved outside the project count as a person's"
    proj.set_status("a.png", "predicted")
    proj.set_status("b.png", "reviewed")
    proj.add_effort("a.png", 12.5, 3)
    proj.add_effort("a.png", 2.5, 1)
    proj.add_effort("b.png", 5.0, 7)
    proj.images["a.png"].provenance = {"none": 10, "model": 60, "human": 30, "crf": 0}
    proj.images["b.png"].provenance = {"none": 0, "model": 0, "human": 50, "crf": 50}
    proj.classes = CLASSES
    proj.last_image = "b.png"
    proj.add_version(ModelVersion("v001", "labels/models/v001/model.safetensors", "/x/default.safetensors", "2026-01-01T00:00:00+00:00", {"images": 2}, {"val": {"miou": 0.5}}))
    proj.current_version = "v001"
    proj.save()
    raw = json.loads((tmp_path / PROJECT_FILENAME).read_text())
    assert raw["schema_version"] == SCHEMA_VERSION

    back = Project.load(tmp_path)
    assert back.images == proj.images and back.classes == CLASSES and back.versions == proj.versions
    assert back.current_version == "v001" and back.last_image == "b.png"
    assert back.version("v001").val_miou == 0.5 and back.version("v001").resolve(tmp_path).parts[-2] == "v001"
    s = back.summary()
    assert s.images == 3 and s.by_status == {"unlabelled": 0, "predicted": 1, "corrected": 1, "reviewed": 1}
    assert s.seconds == pytest.approx(20.0) and s.strokes == 11
    pct = s.provenance_percent()
    assert pct["model"] == pytest.approx(100 * 60 / 190) and pct["crf"] == pytest.approx(100 * 50 / 190)
    assert sum(pct.values()) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="status"):
        back.set_status("a.png", "done")
    with pytest.raises(ValueError, match=">= 0"):
        back.add_effort("a.png", -1)


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "cannot read"),
        ("[]", "JSON object"),
        ('{"schema_version": 99}', "newer SegStudio"),
        ('{"schema_version": 1, "images": {"a.png": {"status": "finished"}}}', r"images\['a.png'\].status"),
        ('{"schema_version": 1, "images": {"a.png": {"seconds": -3}}}', "seconds"),
        ('{"schema_version": 1, "images": {"a.png": {"provenance": {"alien": 3}}}}', "provenance"),
        ('{"schema_version": 1, "classes": [{"id": 3, "name": "x"}]}', "'classes'"),
        ('{"schema_version": 1, "versions": [{"name": 1}]}', r"versions\[0\]"),
    ],
)
def test_project_validation_errors(tmp_path, content, match):
    (tmp_path / PROJECT_FILENAME).write_text(content)
    with pytest.raises(ProjectError, match=match) as err:
        Project.load(tmp_path)
    assert PROJECT_FILENAME in str(err.value)


def test_project_save_is_atomic_and_keeps_old_file_on_error(tmp_path, monkeypatch):
    proj = Project(tmp_path)
    proj.set_status("a.png", "predicted")
    proj.save()
    old = (tmp_path / PROJECT_FILENAME).read_text()
    proj.set_status("a.png", "reviewed")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        proj.save()
    assert (tmp_path / PROJECT_FILENAME).read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == [PROJECT_FILENAME], "no temp file left behind"


# -- classes --------------------------------------------------------------------------------------
def test_class_lut_and_match():
    model = ClassSpec(("sky", "road", "car", "tree"))
    project = ClassSpec(("car", "road", "bike"))
    lut = class_lut(model, project)
    np.testing.assert_array_equal(lut[[0, 1, 2, 3, IGNORE_INDEX, 7]], [IGNORE_INDEX, 1, 0, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX])
    m = match_classes(model, project)
    assert not m.same and m.matched == ("car", "road") and m.model_only == ("sky", "tree") and m.project_only == ("bike",)
    assert "each class it knows keeps what it learnt" in m.notice() and "bike" in m.notice()
    assert match_classes(project, project).same and match_classes(project, project).notice() == ""
    assert "another order" in match_classes(ClassSpec(("road", "car", "bike")), project).notice()


def test_relabel_label_files(tmp_path):
    rng = np.random.default_rng(1)
    maps = {}
    for name in ("a", "b"):
        Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / f"{name}.png")
        lab = rng.integers(0, 3, (10, 12)).astype(np.uint8)
        lab[0, 0] = IGNORE_INDEX
        save_labels(tmp_path / f"{name}.png", lab, CLASSES)
        maps[name] = lab
    new = ClassSpec(("car", "sky"))  # road deleted, car first
    lut = class_lut(CLASSES, new)
    files = relabel_label_files(tmp_path, lut, new)
    assert len(files) == 2
    for name, lab in maps.items():
        got = read_index_png(label_path_for(tmp_path / f"{name}.png"))
        np.testing.assert_array_equal(got[lab == 2], 0)
        np.testing.assert_array_equal(got[lab == 0], 1)
        np.testing.assert_array_equal(got[lab == 1], IGNORE_INDEX)
        assert got[0, 0] == IGNORE_INDEX
    assert load_classes(tmp_path / "labels" / "classes.json") == new


def test_relabel_refuses_bad_map_and_changes_nothing(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "b.png")
    save_labels(tmp_path / "a.png", np.zeros((4, 4), np.uint8), CLASSES)
    save_labels(tmp_path / "b.png", np.full((4, 4), 2, np.uint8), CLASSES)
    before = {p: p.read_bytes() for p in (tmp_path / "labels").iterdir()}
    lut = np.arange(256, dtype=np.uint8)  # identity, but the new list has only 2 classes: id 2 is invalid
    with pytest.raises(ValueError, match="b.png"):
        relabel_label_files(tmp_path, lut, ClassSpec(("sky", "road")))
    assert {p: p.read_bytes() for p in (tmp_path / "labels").iterdir()} == before, "old files untouched, no temp files"


def test_document_relabel():
    doc = make_doc()
    doc.set_labels(np.full((40, 50), 2, np.uint8), SOURCE_PREDICTED)
    doc.stroke([(3, 3)], 2, 0)
    new = ClassSpec(("car", "sky"))
    doc.relabel(new, class_lut(CLASSES, new))
    assert doc.classes == new and doc.labels[20, 20] == 0 and doc.labels[3, 3] == 1
    assert doc.undo() is None, "history of old ids is dropped"
    with pytest.raises(ValueError):
        doc.relabel(ClassSpec(("only",)), np.arange(256, dtype=np.uint8))
    assert doc.classes == new


# -- activity clock ---------------------------------------------------------------------------------
def test_activity_clock_caps_idle_gaps():
    t = [100.0]
    clock = ActivityClock(idle_s=30, now=lambda: t[0])
    assert clock.tick() == 0.0  # first event starts it
    t[0] += 4
    assert clock.tick() == 4.0
    t[0] += 600  # the user went for lunch
    assert clock.tick() == 30.0
    t[0] += 2
    assert clock.stop() == 2.0 and not clock.running
    t[0] += 50
    assert clock.stop() == 0.0
    clock.start()
    t[0] += 1.5
    assert clock.tick() == 1.5
    with pytest.raises(ValueError):
        ActivityClock(idle_s=0)


def test_provenance_steps_are_stored_packed_and_undo_exactly():
    """Provenance undo steps are compressed like the label history's, and restore every state exactly."""
    from segstudio.core.history import Patch
    from segstudio.core.provenance import PROV_HUMAN, PROV_MODEL, ProvenanceMap

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, (512, 512), dtype=np.uint8)
    prov = ProvenanceMap(labels.shape)
    prov.reset(labels, PROV_MODEL)
    states, raw = [prov.map.copy()], 0
    for _ in range(30):
        y0, x0 = (int(v) for v in rng.integers(0, 400, 2))
        before = labels[y0 : y0 + 100, x0 : x0 + 100].copy()
        after = before.copy()
        after[rng.random(after.shape) < 0.3] = 7
        prov.record(Patch(y0, x0, before, after), PROV_HUMAN)
        raw += 2 * before.nbytes
        states.append(prov.map.copy())
    assert all(step.is_packed for step in prov._undo)
    assert prov.nbytes < raw / 3
    for want in reversed(states[:-1]):
        prov.undo()
        np.testing.assert_array_equal(prov.map, want)
    for want in states[1:]:
        prov.redo()
        np.testing.assert_array_equal(prov.map, want)
