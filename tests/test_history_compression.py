"""History stores patches packed (zlib of before and of after ^ before): undo/redo must stay exact."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segstudio.core import ClassSpec, Document, History, Patch, merge_patches
from segstudio.core.history import make_patch
from segstudio.core.labels import IGNORE_INDEX, new_label_map
from segstudio.core.paint import flood_fill, paint_dab, paint_stroke


def _random_map(rng, h, w, kind):
    if kind == "noise":  # incompressible before
        return rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    labels = np.zeros((h, w), np.uint8)
    for _ in range(6):  # a few flat rectangles: compressible, like a prediction
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        labels[y0 : y0 + rng.integers(1, h + 1), x0 : x0 + rng.integers(1, w + 1)] = rng.integers(0, 12)
    return labels


def _random_edit(rng, labels):
    """One random edit of ``labels`` in place; returns its Patch (or None)."""
    h, w = labels.shape
    kind = rng.integers(0, 4)
    value = int(rng.choice([0, 1, 5, 10, IGNORE_INDEX]))
    if kind == 0:
        n = int(rng.integers(1, 8))
        pts = np.stack([rng.uniform(-5, h + 5, n), rng.uniform(-5, w + 5, n)], axis=1)
        return paint_stroke(labels, pts, float(rng.uniform(0.5, 12)), value)
    if kind == 1:
        return flood_fill(labels, int(rng.integers(0, h)), int(rng.integers(0, w)), value)
    if kind == 2:
        return paint_dab(labels, float(rng.uniform(0, h)), float(rng.uniform(0, w)), float(rng.uniform(0.5, 6)), value)
    # an arbitrary box of arbitrary new values (every byte value, like a CRF result written over a box)
    y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
    bh, bw = int(rng.integers(1, h - y0 + 1)), int(rng.integers(1, w - x0 + 1))
    after = labels[y0 : y0 + bh, x0 : x0 + bw].copy()
    sel = rng.random(after.shape) < rng.random()
    after[sel] = rng.integers(0, 256, size=int(sel.sum()), dtype=np.uint8)
    return make_patch(labels, y0, x0, after)


def _check_round_trip(seed: int, h: int, w: int, steps: int, map_kind: str, max_bytes: int = 1 << 30) -> None:
    rng = np.random.default_rng(seed)
    labels = _random_map(rng, h, w, map_kind)
    hist = History(max_bytes=max_bytes)
    past = [labels.copy()]  # states reachable by undo (the last is the current one)
    future: list[np.ndarray] = []  # states reachable by redo (the last is the next one)
    for _ in range(steps):
        patch = _random_edit(rng, labels)
        if patch is not None:
            raw_before, raw_after = patch.before.copy(), patch.after.copy()
            hist.push(patch)
            stored = hist._undo[-1]
            assert stored.is_packed and stored.slices == patch.slices and stored.rect == patch.rect
            np.testing.assert_array_equal(stored.before, raw_before)
            np.testing.assert_array_equal(stored.after, raw_after)
            past.append(labels.copy())
            future.clear()
            assert not hist.can_redo
        # sometimes undo a few steps in the middle of editing, and redo some of them
        if rng.random() < 0.25 and len(hist):
            for _ in range(int(rng.integers(1, len(hist) + 1))):
                assert hist.undo(labels) is not None
                future.append(past.pop())
                np.testing.assert_array_equal(labels, past[-1])
            for _ in range(int(rng.integers(0, len(future) + 1))):
                assert hist.redo(labels) is not None
                past.append(future.pop())
                np.testing.assert_array_equal(labels, past[-1])
    assert hist.nbytes == sum(p.nbytes for p in hist._undo + hist._redo)
    kept = len(hist)
    assert kept <= len(past) - 1 and hist.can_redo == bool(future)
    for i in range(kept):
        assert hist.undo(labels) is not None
        future.append(past.pop())
        np.testing.assert_array_equal(labels, past[-1])
    assert hist.undo(labels) is None
    while future:
        assert hist.redo(labels) is not None
        np.testing.assert_array_equal(labels, future.pop())
    assert hist.redo(labels) is None


@pytest.mark.parametrize("map_kind", ["flat", "noise"])
@pytest.mark.parametrize("seed", range(4))
def test_random_edits_undo_redo_exact(seed, map_kind):
    _check_round_trip(seed, 97, 131, 60, map_kind)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    h=st.integers(1, 80),
    w=st.integers(1, 80),
    steps=st.integers(1, 25),
    map_kind=st.sampled_from(["flat", "noise"]),
    budget=st.sampled_from([1 << 30, 400, 2000]),
)
def test_property_undo_redo_exact(seed, h, w, steps, map_kind, budget):
    """Any sequence of edits, interleaved undos/redos and a tight memory budget: every state is restored exactly."""
    _check_round_trip(seed, h, w, steps, map_kind, budget)


def test_packed_patch_matches_raw_and_is_immutable():
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, size=(37, 53), dtype=np.uint8)
    after = before.copy()
    after[5:20, 7:30] = 200
    raw = Patch(3, 4, before, after)
    packed = raw.packed()
    assert packed.packed() is packed and not raw.is_packed and packed.is_packed
    assert (packed.y0, packed.x0, packed.shape, packed.slices, packed.rect) == (3, 4, (37, 53), raw.slices, (4, 3, 53, 37))
    np.testing.assert_array_equal(packed.before, before)
    np.testing.assert_array_equal(packed.after, after)
    assert packed.before.dtype == np.uint8 and packed.after.shape == (37, 53)
    assert not packed.before.flags.writeable and not packed.after.flags.writeable  # stored steps cannot be corrupted
    assert packed.nbytes < raw.nbytes
    with pytest.raises(AttributeError):
        packed.y0 = 1
    with pytest.raises(AttributeError):
        raw.before = after
    for clone in (pickle.loads(pickle.dumps(packed)), copy.deepcopy(packed), copy.copy(raw)):
        np.testing.assert_array_equal(clone.before, before)
        np.testing.assert_array_equal(clone.after, after)
    with pytest.raises(ValueError):
        Patch(0, 0, before, after[:5])


def test_long_stroke_step_is_stored_small():
    """The P4 case: a long 32-px stroke's step costs far less than its raw bounding box."""
    labels = new_label_map(1024, 1024, fill=0)
    labels[:512] = 3
    pts = np.stack([np.linspace(100, 480, 33), np.linspace(120, 500, 33)], axis=1)
    patch = paint_stroke(labels, pts, 16.0, 7)
    hist = History()
    hist.push(patch)
    assert hist.nbytes * 10 < patch.nbytes
    hist.undo(labels)
    assert not (labels == 7).any()
    hist.redo(labels)
    np.testing.assert_array_equal(labels[patch.slices], patch.after)


def test_merge_patches_of_packed_and_raw_patches():
    labels = new_label_map(64, 64, fill=1)
    orig = labels.copy()
    a = paint_dab(labels, 20, 20, 6, 2)
    b = paint_dab(labels, 24, 26, 6, 3)
    merged = merge_patches(labels, [a.packed(), b])
    labels[merged.slices] = merged.before
    np.testing.assert_array_equal(labels, orig)


def test_document_undo_redo_with_packed_history():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, size=(90, 120, 3), dtype=np.uint8)
    doc = Document(path=None, image=image, classes=ClassSpec(("a", "b", "c", "d")))
    states = [doc.labels.copy()]
    for i in range(12):
        pts = rng.uniform(0, 90, size=(5, 2))
        if doc.stroke(pts, 4.0, i % 4) is not None:
            states.append(doc.labels.copy())
    while doc.undo() is not None:
        states.pop()
        np.testing.assert_array_equal(doc.labels, states[-1])
    assert len(states) == 1
