"""segstudio.core: paint operations, undo history, Document, ClassSpec, label-map checks, overlays.

Expected results are computed independently in the tests (distance formulas, a plain BFS), never
copied from the implementation.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from segstudio.core import (
    IGNORE_INDEX,
    ClassSpec,
    Document,
    History,
    blend_overlay,
    colorize,
    default_palette,
    flood_fill,
    new_label_map,
    paint_dab,
    paint_stroke,
    validate_label_map,
)

# --------------------------------------------------------------------------------------------
# independent reference implementations


def ref_disc(shape, cy, cx, r):
    """Pixels (integer centres) whose distance to (cy, cx) is <= r."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def ref_capsules(shape, points, r):
    """Pixels within distance r of the polyline through points (closest point on each segment)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    pix = np.stack([yy, xx], axis=-1)
    out = np.zeros(shape, dtype=bool)
    pts = [np.asarray(p, dtype=np.float64) for p in points]
    if len(pts) == 1:
        pts = pts * 2
    for a, b in zip(pts[:-1], pts[1:]):
        ab = b - a
        denom = float(ab @ ab)
        if denom == 0:
            closest = np.broadcast_to(a, pix.shape)
        else:
            t = np.clip(((pix - a) @ ab) / denom, 0, 1)[..., None]
            closest = a + t * ab
        out |= ((pix - closest) ** 2).sum(-1) <= r * r
    return out


def ref_flood(labels, y, x):
    """4-connected component of labels[y, x] containing (y, x), by breadth-first search."""
    h, w = labels.shape
    old = labels[y, x]
    seen = np.zeros((h, w), dtype=bool)
    seen[y, x] = True
    q = deque([(y, x)])
    while q:
        cy, cx = q.popleft()
        for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
            if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and labels[ny, nx] == old:
                seen[ny, nx] = True
                q.append((ny, nx))
    return seen


def random_regions(rng, h, w, k, cell):
    """A label map of blocky regions (upsampled random grid) with a sprinkle of noise pixels."""
    grid = rng.integers(0, k, size=(h // cell + 1, w // cell + 1), dtype=np.uint8)
    lab = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)[:h, :w].copy()
    noise = rng.random((h, w)) < 0.15
    lab[noise] = rng.integers(0, k, size=int(noise.sum()), dtype=np.uint8)
    return lab


def check_patch(patch, before_map, after_map):
    """The patch covers every changed pixel and holds exactly the before/after contents of its box."""
    changed = before_map != after_map
    if not changed.any():
        assert patch is None
        return
    assert patch is not None
    rows, cols = patch.slices
    box = np.zeros_like(changed)
    box[rows, cols] = True
    assert not (changed & ~box).any(), "a changed pixel lies outside the patch box"
    np.testing.assert_array_equal(patch.before, before_map[rows, cols])
    np.testing.assert_array_equal(patch.after, after_map[rows, cols])
    # Cropped to the changed pixels: every border row/column of the box holds a change.
    sub = changed[rows, cols]
    assert sub[0].any() and sub[-1].any() and sub[:, 0].any() and sub[:, -1].any()


# --------------------------------------------------------------------------------------------
# paint


@pytest.mark.parametrize("seed", range(6))
def test_paint_dab_matches_distance_formula(seed):
    rng = np.random.default_rng(seed)
    h, w = 40, 53
    labels = rng.integers(0, 4, size=(h, w), dtype=np.uint8)
    for _ in range(10):
        # Centres anywhere, including past the borders, with fractional coordinates.
        cy, cx = rng.uniform(-5, h + 5), rng.uniform(-5, w + 5)
        r = float(rng.choice([0.5, 1.0, 1.5, 2.7, 4.0, 7.3]))
        value = int(rng.integers(0, 6))
        before = labels.copy()
        patch = paint_dab(labels, cy, cx, r, value)
        disc = ref_disc((h, w), cy, cx, r)
        expected = before.copy()
        expected[disc] = value
        np.testing.assert_array_equal(labels, expected)
        check_patch(patch, before, labels)


def test_paint_dab_integer_centre_shape():
    labels = new_label_map(11, 11, fill=0)
    paint_dab(labels, 5, 5, 3, 7)
    assert (labels == 7).sum() == 29  # lattice points with y^2 + x^2 <= 9
    assert labels[5, 2] == 7 and labels[5, 8] == 7 and labels[2, 5] == 7 and labels[8, 5] == 7
    assert labels[2, 2] == 0 and labels[5, 1] == 0  # corner and just outside


@pytest.mark.parametrize("seed", range(6))
def test_paint_stroke_matches_capsule_union(seed):
    rng = np.random.default_rng(100 + seed)
    h, w = 48, 64
    labels = rng.integers(0, 3, size=(h, w), dtype=np.uint8)
    n = int(rng.integers(2, 6))
    points = [(rng.uniform(-4, h + 4), rng.uniform(-4, w + 4)) for _ in range(n)]
    r = float(rng.uniform(0.6, 5.0))
    before = labels.copy()
    patch = paint_stroke(labels, points, r, 9)
    expected = before.copy()
    expected[ref_capsules((h, w), points, r)] = 9
    np.testing.assert_array_equal(labels, expected)
    check_patch(patch, before, labels)


def test_paint_stroke_horizontal_line_is_a_band():
    labels = new_label_map(20, 40, fill=0)
    paint_stroke(labels, [(10, 5), (10, 30)], 2, 3)
    painted = labels == 3
    # Rows 8..12 between the end caps are fully painted, rows 7 and 13 not at all.
    assert painted[8:13, 5:31].all()
    assert not painted[:8].any() and not painted[13:].any()
    assert not painted[:, :3].any() and not painted[:, 33:].any()


def test_paint_eraser_and_no_op():
    labels = new_label_map(10, 10, fill=2)
    p = paint_dab(labels, 5, 5, 2, IGNORE_INDEX)
    assert p is not None and (labels == IGNORE_INDEX).sum() == 13
    # Painting the same value again changes nothing: no patch.
    before = labels.copy()
    assert paint_dab(labels, 5, 5, 2, IGNORE_INDEX) is None
    np.testing.assert_array_equal(labels, before)


def test_paint_outside_image_changes_nothing():
    labels = new_label_map(10, 10, fill=1)
    assert paint_stroke(labels, [(-20, -20), (-30, -5)], 3, 4) is None
    assert paint_dab(labels, 50, 50, 2, 4) is None
    assert (labels == 1).all()


def test_paint_rejects_bad_arguments():
    labels = new_label_map(8, 8, fill=0)
    with pytest.raises(ValueError, match="radius"):
        paint_dab(labels, 3, 3, 0.2, 1)
    with pytest.raises(ValueError, match="0..255"):
        paint_dab(labels, 3, 3, 2, 256)
    with pytest.raises(ValueError, match="at least one point"):
        paint_stroke(labels, [], 2, 1)
    assert (labels == 0).all()


@pytest.mark.parametrize("seed", range(8))
def test_flood_fill_matches_bfs(seed):
    rng = np.random.default_rng(200 + seed)
    h, w = int(rng.integers(5, 30)), int(rng.integers(5, 30))
    base = random_regions(rng, h, w, k=int(rng.integers(2, 4)), cell=int(rng.integers(1, 5)))
    for _ in range(12):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        value = int((base[y, x] + rng.integers(1, 5)) % 6)
        labels = base.copy()
        patch = flood_fill(labels, y, x, value)
        region = ref_flood(base, y, x)
        expected = base.copy()
        expected[region] = value
        np.testing.assert_array_equal(labels, expected)
        check_patch(patch, base, labels)


def test_flood_fill_spiral_region():
    # A spiral corridor of 0s inside 1s: the fill must follow every turn (runs going back up/down).
    n = 21
    lab = np.ones((n, n), dtype=np.uint8)
    top, left, bottom, right = 1, 1, n - 2, n - 2
    while top <= bottom and left <= right:
        lab[top, left : right + 1] = 0
        lab[top : bottom + 1, right] = 0
        if top + 2 <= bottom:
            lab[bottom, left : right + 1] = 0
        if left + 2 <= right:
            lab[top + 2 : bottom + 1, left] = 0
        top, left, bottom, right = top + 2, left + 2, bottom - 2, right - 2
    base = lab.copy()
    flood_fill(lab, 1, 1, 5)
    expected = base.copy()
    expected[ref_flood(base, 1, 1)] = 5
    np.testing.assert_array_equal(lab, expected)


def test_flood_fill_same_value_and_out_of_bounds():
    labels = np.zeros((4, 5), dtype=np.uint8)
    assert flood_fill(labels, 1, 1, 0) is None
    with pytest.raises(IndexError):
        flood_fill(labels, 4, 0, 1)
    with pytest.raises(IndexError):
        flood_fill(labels, 0, -1, 1)
    assert (labels == 0).all()


def test_flood_fill_fills_ignore_region():
    labels = new_label_map(6, 6)  # all ignore
    labels[:, 3] = 1  # a wall splits it in two
    flood_fill(labels, 0, 0, 2)
    assert (labels[:, :3] == 2).all() and (labels[:, 3] == 1).all() and (labels[:, 4:] == IGNORE_INDEX).all()


# --------------------------------------------------------------------------------------------
# history


def _random_edit(rng, labels):
    h, w = labels.shape
    if rng.random() < 0.6:
        pts = [(rng.uniform(0, h), rng.uniform(0, w)) for _ in range(int(rng.integers(1, 4)))]
        return paint_stroke(labels, pts, float(rng.uniform(0.5, 4)), int(rng.integers(0, 5)))
    return flood_fill(labels, int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(0, 5)))


def test_history_undo_redo_restores_exact_arrays():
    rng = np.random.default_rng(7)
    labels = random_regions(rng, 30, 40, k=4, cell=6)
    hist = History()
    snapshots = [labels.copy()]
    while len(snapshots) < 16:
        p = _random_edit(rng, labels)
        if p is not None:
            hist.push(p)
            snapshots.append(labels.copy())
    assert len(hist) == 15
    for i in range(15, 0, -1):
        assert hist.undo(labels) is not None
        np.testing.assert_array_equal(labels, snapshots[i - 1])
    assert not hist.can_undo and hist.undo(labels) is None
    np.testing.assert_array_equal(labels, snapshots[0])
    for i in range(1, 16):
        assert hist.redo(labels) is not None
        np.testing.assert_array_equal(labels, snapshots[i])
    assert not hist.can_redo and hist.redo(labels) is None
    # Interleaved: undo 3, redo 1.
    for _ in range(3):
        hist.undo(labels)
    hist.redo(labels)
    np.testing.assert_array_equal(labels, snapshots[13])


def test_history_new_edit_clears_redo():
    labels = new_label_map(20, 20, fill=0)
    hist = History()
    hist.push(paint_dab(labels, 5, 5, 3, 1))
    hist.push(paint_dab(labels, 12, 12, 3, 2))
    hist.undo(labels)
    assert hist.can_redo
    after_undo = labels.copy()
    hist.push(paint_dab(labels, 15, 3, 2, 3))
    assert not hist.can_redo
    assert hist.redo(labels) is None
    # The undone stroke (value 2) does not come back.
    assert not (labels == 2).any()
    hist.undo(labels)
    np.testing.assert_array_equal(labels, after_undo)
    hist.push(None)  # ignored
    assert len(hist) == 1


def test_history_memory_grows_with_touched_area_not_map_size():
    rng = np.random.default_rng(3)
    size, radius = 2048, 8
    labels = new_label_map(size, size, fill=0)
    hist = History()
    bound = 0
    for _ in range(50):
        y0, x0 = rng.uniform(radius, size - radius - 20, size=2)
        pts = [(y0, x0), (y0 + rng.uniform(0, 12), x0 + rng.uniform(0, 12))]
        hist.push(paint_stroke(labels, pts, radius, int(rng.integers(1, 5))))
        # Box of the capsule: the points' bounding box grown by the radius on every side (+1 for rounding).
        ph = abs(pts[1][0] - pts[0][0]) + 2 * radius + 2
        pw = abs(pts[1][1] - pts[0][1]) + 2 * radius + 2
        bound += 2 * int(np.ceil(ph)) * int(np.ceil(pw))  # before + after, uint8
    assert len(hist) == 50
    assert 0 < hist.nbytes <= bound
    assert bound <= 50 * 2 * (2 * radius + 2 + 12) ** 2
    assert hist.nbytes < size * size / 50  # far below one copy of the map
    # Undo keeps the bytes (they move to the redo stack); clear drops them.
    hist.undo(labels)
    assert hist.nbytes > 0 and hist.can_redo
    hist.clear()
    assert hist.nbytes == 0 and not hist.can_undo and not hist.can_redo


def test_history_budget_drops_oldest_steps():
    labels = new_label_map(64, 64, fill=0)
    dab = paint_dab(new_label_map(64, 64, fill=0), 8, 8, 5, 1).packed().nbytes  # History stores patches packed
    hist = History(max_bytes=3 * dab)  # room for about three dabs of radius 5
    centres = [(8, 8), (8, 40), (40, 8), (40, 40), (30, 24)]
    snaps = [labels.copy()]
    for i, (y, x) in enumerate(centres):
        hist.push(paint_dab(labels, y, x, 5, i + 1))
        snaps.append(labels.copy())
    assert hist.nbytes <= hist.max_bytes
    kept = len(hist)
    assert 1 <= kept < len(centres)
    for i in range(kept):
        hist.undo(labels)
        np.testing.assert_array_equal(labels, snaps[len(centres) - 1 - i])
    assert hist.undo(labels) is None
    # The oldest strokes could not be undone: they are still there.
    assert (labels == 1).any()


# --------------------------------------------------------------------------------------------
# Document


@pytest.fixture
def doc():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    return Document(path=__import__("pathlib").Path("img.png"), image=image, classes=ClassSpec(("a", "b", "c")))


def test_document_starts_unlabelled(doc):
    assert doc.shape == (24, 32)
    assert doc.labels.shape == (24, 32) and doc.labels.dtype == np.uint8
    assert (doc.labels == IGNORE_INDEX).all()
    assert not doc.dirty and doc.source == "none" and not doc.history.can_undo


def test_document_edit_undo_redo_dirty(doc):
    start = doc.labels.copy()
    p = doc.stroke([(5, 5), (5, 20)], 2, 1)
    assert p is not None and doc.dirty
    after_stroke = doc.labels.copy()
    assert (after_stroke == 1).sum() > 0
    doc.mark_saved()
    assert not doc.dirty and doc.source == "saved"

    doc.fill(20, 30, 2)  # fills the ignore background around the stroke
    after_fill = doc.labels.copy()
    expected = after_stroke.copy()
    expected[ref_flood(after_stroke, 20, 30)] = 2
    np.testing.assert_array_equal(after_fill, expected)
    assert doc.dirty

    doc.mark_saved()
    assert doc.undo() is not None
    assert doc.dirty  # undoing past a save is an unsaved change
    np.testing.assert_array_equal(doc.labels, after_stroke)
    doc.undo()
    np.testing.assert_array_equal(doc.labels, start)
    assert doc.undo() is None
    doc.redo()
    doc.redo()
    np.testing.assert_array_equal(doc.labels, after_fill)
    assert doc.redo() is None


def test_document_no_change_is_not_an_edit(doc):
    doc.set_labels(np.zeros((24, 32), dtype=np.uint8), "saved")  # a person's labels already
    assert doc.fill(0, 0, 0) is None
    assert doc.stroke([(3, 3)], 2, 0) is None
    assert doc.stroke([(3, 3)], 2, IGNORE_INDEX) is not None  # erasing changes values
    doc.undo()
    doc.set_labels(np.full((24, 32), IGNORE_INDEX, dtype=np.uint8), "none")
    assert doc.stroke([(3, 3)], 2, IGNORE_INDEX) is None  # erasing nothing confirms nothing
    assert not doc.dirty and not doc.history.can_undo


def test_document_gesture_over_same_class_prediction_confirms_it(doc):
    """Issue 31.1: brush-to-confirm. Painting a region the model predicted as the same class changes no value,
    but every pixel under the gesture becomes the person's; one undo step, undo restores the provenance."""
    from segstudio.core.provenance import PROV_HUMAN, PROV_MODEL

    doc.set_labels(np.zeros((24, 32), dtype=np.uint8), "predicted")
    before = doc.labels.copy()
    patch = doc.stroke([(5, 5), (5, 20)], 2, 0)
    assert patch is not None and doc.dirty and doc.edits == 1 and doc.history.can_undo
    np.testing.assert_array_equal(doc.labels, before)
    human = doc.provenance.map == PROV_HUMAN
    assert human[5, 5:21].all() and human.sum() >= 16 * 3 and not human[15:].any()
    doc.undo()
    assert (doc.provenance.map == PROV_MODEL).all()
    doc.redo()
    assert (doc.provenance.map == PROV_HUMAN).sum() == human.sum()
    # fill and polygon confirm their whole region
    assert doc.fill(20, 30, 0) is not None and (doc.provenance.map == PROV_HUMAN).all()
    assert doc.fill(20, 30, 0) is None, "confirming confirmed pixels is no edit"
    doc.set_labels(np.zeros((24, 32), dtype=np.uint8), "predicted")
    assert doc.polygon(np.array([[2.0, 2.0], [12.0, 2.0], [12.0, 10.0]]), 0) is not None
    assert (doc.provenance.map == PROV_HUMAN).any() and doc.edits >= 3


def test_document_rejects_bad_class_values(doc):
    with pytest.raises(ValueError, match="class id 3"):
        doc.stroke([(3, 3)], 2, 3)
    with pytest.raises(ValueError, match="class id 7"):
        doc.fill(0, 0, 7)
    assert (doc.labels == IGNORE_INDEX).all() and not doc.dirty
    doc.stroke([(3, 3)], 2, IGNORE_INDEX)  # erasing is allowed (no-op here)


def test_document_set_labels_clears_history(doc):
    doc.stroke([(3, 3)], 2, 1)
    new = np.full((24, 32), 2, dtype=np.uint8)
    doc.set_labels(new, "predicted")
    assert doc.source == "predicted" and not doc.dirty and not doc.history.can_undo
    np.testing.assert_array_equal(doc.labels, new)
    with pytest.raises(ValueError, match="32x24"):
        doc.set_labels(np.zeros((10, 10), dtype=np.uint8), "predicted")
    with pytest.raises(ValueError, match=r"\[5\]"):
        doc.set_labels(np.full((24, 32), 5, dtype=np.uint8), "predicted")
    np.testing.assert_array_equal(doc.labels, new)


def test_document_validates_image_and_labels():
    cs = ClassSpec(("a", "b"))
    with pytest.raises(ValueError, match="uint8"):
        Document(path=None, image=np.zeros((4, 4, 3), dtype=np.float32), classes=cs)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        Document(path=None, image=np.zeros((4, 4), dtype=np.uint8), classes=cs)
    with pytest.raises(ValueError):
        Document(path=None, image=np.zeros((4, 4, 3), dtype=np.uint8), classes=cs, labels=np.zeros((4, 5), np.uint8))


# --------------------------------------------------------------------------------------------
# classes, label maps, overlays


def test_classspec_defaults_and_json_round_trip():
    cs = ClassSpec(("sky", "road", "car"))
    assert cs.num_classes == 3
    # PASCAL VOC colour map: black, dark red, dark green.
    assert cs.colors == ((0, 0, 0), (128, 0, 0), (0, 128, 0))
    back = ClassSpec.from_json(cs.to_json())
    assert back == cs
    shuffled = list(reversed(cs.to_json()))
    assert ClassSpec.from_json(shuffled) == cs
    custom = ClassSpec(("a", "b"), ((1, 2, 3), (250, 251, 252)))
    lut = custom.lut(ignore_color=(9, 9, 9))
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[1]) == (250, 251, 252) and tuple(lut[2]) == (9, 9, 9) and tuple(lut[255]) == (9, 9, 9)


def test_default_palette_distinct():
    pal = default_palette(255)
    assert len(pal) == 255 and len(set(pal)) == 255
    assert pal[:5] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128)]
    with pytest.raises(ValueError):
        default_palette(256)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(names=()), "at least one"),
        (dict(names=("a", "b"), colors=((0, 0, 0),)), "2 names but 1 colours"),
        (dict(names=("a", " ")), "must not be empty"),
        (dict(names=("car", "road", "car")), "repeated class names \\['car'\\]"),
        (dict(names=("a",), colors=((0, 0, 256),)), "colour of class 'a'"),
        (dict(names=("a",), colors=((0, 0),)), "colour of class 'a'"),
        (dict(names=tuple(f"c{i}" for i in range(256))), "at most 255"),
    ],
)
def test_classspec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClassSpec(**kwargs)


@pytest.mark.parametrize(
    "items, match",
    [
        ([], "non-empty list"),
        ({"id": 0}, "non-empty list"),
        ([{"id": 0, "name": "a"}, {"id": 2, "name": "b"}], "without gaps"),
        ([{"name": "a"}], "integer 'id'"),
        ([{"id": 0}], "no 'name'"),
        ([{"id": 0, "name": "a"}, {"id": 0, "name": "b"}], "without gaps"),
    ],
)
def test_classspec_from_json_errors(items, match):
    with pytest.raises(ValueError, match=match):
        ClassSpec.from_json(items)


def test_validate_label_map_names_bad_values():
    lab = np.zeros((5, 6), dtype=np.uint8)
    lab[0, 0] = 11
    lab[1, :3] = 200
    lab[2, 2] = IGNORE_INDEX
    with pytest.raises(ValueError) as ei:
        validate_label_map(lab, 11)
    msg = str(ei.value)
    assert "[11, 200]" in msg and "4 pixels" in msg and "0..10" in msg
    lab[lab != IGNORE_INDEX] = 10
    assert validate_label_map(lab, 11) is lab
    with pytest.raises(ValueError, match="uint8"):
        validate_label_map(lab.astype(np.int32), 11)
    with pytest.raises(ValueError, match="2-D"):
        validate_label_map(np.zeros((2, 2, 1), np.uint8), 11)
    with pytest.raises(ValueError, match="6x5 .* 7x5"):
        validate_label_map(lab, 11, shape=(5, 7))


def test_new_label_map():
    m = new_label_map(3, 4)
    assert m.shape == (3, 4) and m.dtype == np.uint8 and (m == IGNORE_INDEX).all()
    with pytest.raises(ValueError):
        new_label_map(0, 4)


def test_colorize_and_blend_overlay_math():
    cs = ClassSpec(("a", "b"), ((200, 0, 100), (0, 40, 255)))
    image = np.array([[[100, 100, 100], [101, 7, 255], [12, 34, 56]]], dtype=np.uint8)
    labels = np.array([[0, 1, IGNORE_INDEX]], dtype=np.uint8)
    np.testing.assert_array_equal(colorize(labels, cs), [[[200, 0, 100], [0, 40, 255], [0, 0, 0]]])

    out = blend_overlay(image, labels, cs, opacity=0.25)
    # 0.75 * image + 0.25 * colour, rounded half up; the ignore pixel is untouched.
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[125, 75, 100], [76, 15, 255], [12, 34, 56]]])
    np.testing.assert_array_equal(blend_overlay(image, labels, cs, 0.0), image)
    full = blend_overlay(image, labels, cs, 1.0)
    np.testing.assert_array_equal(full[0, :2], [[200, 0, 100], [0, 40, 255]])
    half = blend_overlay(image, labels, cs, 0.5)
    assert tuple(half[0, 1]) == (51, 24, 255)  # 50.5 -> 51, 23.5 -> 24
    with pytest.raises(ValueError, match="opacity"):
        blend_overlay(image, labels, cs, 1.5)
    with pytest.raises(ValueError, match="differ in size"):
        blend_overlay(image, labels[:, :2], cs)
