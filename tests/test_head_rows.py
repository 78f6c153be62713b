"""A class edit carries through the model's class mapping into the next fine-tune (issue 31 item 2): each class
inherits the classifier row of its name or former name (:func:`segstudio.io.project.head_rows`,
:func:`segstudio.engine.checkpoint.copy_head_rows`), a class the model never had starts fresh."""

from __future__ import annotations

import pytest
import torch

from helpers import TINY_UNET
from segstudio.engine import CheckpointError
from segstudio.engine.checkpoint import copy_head_rows, load_state_into
from segstudio.io.project import head_rows
from segstudio.models import get_model, list_models


# -- the pure mapping ---------------------------------------------------------------------------------------------------
def test_head_rows_same_rename_reorder_add_delete_unrelated():
    old = ("road", "car", "tree")
    assert head_rows(old, old, None) == [0, 1, 2]
    assert head_rows(old, ("tree", "road", "car"), {}) == [2, 0, 1]  # reorder
    assert head_rows(old, ("road", "vehicle", "tree"), {"car": "vehicle"}) == [0, 1, 2]  # rename in place
    assert head_rows(old, ("road", "vehicle", "tree"), None) == [0, None, 2]  # the rename unknown: a new class
    assert head_rows(old, ("road", "vehicle", "tree", "sky"), {"car": "vehicle"}) == [0, 1, 2, None]  # rename + add
    assert head_rows(old, ("tree", "road"), {}) == [2, 0]  # delete car (and reorder)
    assert head_rows(old, ("a", "b", "c"), {}) == [None, None, None]  # unrelated, same count
    assert head_rows((), ("a",), None) == [None] and head_rows(old, (), None) == []


def test_head_rows_own_name_wins_and_a_merge_takes_the_first():
    # an alias whose target answers to its own old name does not steal that class's row
    assert head_rows(("a", "b"), ("b",), {"a": "b"}) == [1]
    # car and truck both renamed into vehicle: the first of them in the old order
    assert head_rows(("truck", "car"), ("vehicle",), {"car": "vehicle", "truck": "vehicle"}) == [0]
    # an alias to a class that is not in the new list reaches nothing
    assert head_rows(("a",), ("x",), {"a": "gone"}) == [None]


def test_head_rows_refuses_repeated_names():
    with pytest.raises(ValueError, match="old class names repeat"):
        head_rows(("a", "a"), ("a",), None)
    with pytest.raises(ValueError, match="new class names repeat"):
        head_rows(("a",), ("a", "a"), None)


# -- copying rows into a model ------------------------------------------------------------------------------------------
def _unet(k: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_model("unet", k, **TINY_UNET).eval()


def _head(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith("classifier.")}


def test_load_state_into_with_rows_moves_rows_keeps_body_and_fresh_rows():
    old = _unet(3, seed=1)
    new = _unet(4, seed=2)
    init = _head(new)
    fresh = load_state_into(new, old.state_dict(), head_rows=[2, None, 0, 1])
    assert sorted(fresh) == ["classifier.bias", "classifier.weight"]  # a class is new: the head is fresh
    sd, od = new.state_dict(), old.state_dict()
    for k in ("classifier.weight", "classifier.bias"):
        for i, j in enumerate([2, None, 0, 1]):
            assert torch.equal(sd[k][i], od[k][j] if j is not None else init[k][i]), (k, i)
    body = [k for k in od if not k.startswith("classifier.")]
    assert body and all(torch.equal(sd[k], od[k]) for k in body)
    # every class mapped (a delete + reorder): nothing is fresh
    assert load_state_into(_unet(2, seed=3), old.state_dict(), head_rows=[2, 0]) == []


@pytest.mark.filterwarnings("ignore:.*meta parameter:UserWarning")  # meta tensors: shapes only, no values to copy
@pytest.mark.parametrize("name", list_models())
def test_rows_cover_exactly_the_class_dependent_keys_of_every_architecture(name):
    """11 → 3 classes with rows: the keys assembled (fresh, as a class is new) are exactly those whose shape depends
    on the class count; a reorder of the same count loads without error and leaves nothing fresh."""
    with torch.device("meta"):
        src, dst, same = (get_model(name, k, pretrained=False) for k in (11, 3, 11))
    sd_src, sd_dst = src.state_dict(), dst.state_dict()
    differing = {k for k in sd_dst if sd_dst[k].shape != sd_src[k].shape}
    assert set(load_state_into(dst, sd_src, head_rows=[4, None, 0])) == differing
    assert load_state_into(same, sd_src, head_rows=list(range(10, -1, -1))) == []


def test_a_reordered_class_by_class_head_is_the_same_function_permuted():
    """A class × class tensor (FCN's upscore, GCN's refinement) is mapped on both dims."""

    class Net(torch.nn.Module):
        def __init__(self, k):
            super().__init__()
            self.body = torch.nn.Conv2d(3, 6, 1)
            self.classifier = torch.nn.Sequential(torch.nn.Conv2d(6, k, 1), torch.nn.ConvTranspose2d(k, k, 4, stride=2))

        def forward(self, x):
            return self.classifier(self.body(x))

    torch.manual_seed(0)
    old, new = Net(3), Net(3)
    perm = [1, 2, 0]
    new.load_state_dict({k: v for k, v in old.state_dict().items() if k.startswith("body.")}, strict=False)
    assert copy_head_rows(new, old.state_dict(), perm) == [f"classifier.{m}.{p}" for m in (0, 1) for p in ("weight", "bias")]
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        assert torch.allclose(new(x), old(x)[:, perm], atol=1e-6)


def test_copy_head_rows_errors_name_the_key():
    old = _unet(3, seed=1).state_dict()
    with pytest.raises(CheckpointError, match="outside the checkpoint's 3 classes"):
        copy_head_rows(_unet(2, seed=0), old, [0, 3])
    with pytest.raises(CheckpointError, match="classifier.weight"):
        copy_head_rows(_unet(2, seed=0), {**old, "classifier.weight": torch.zeros(3, 5, 1, 1)}, [0, 1])
